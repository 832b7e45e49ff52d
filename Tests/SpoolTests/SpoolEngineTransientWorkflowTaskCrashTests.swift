import Testing
@testable import Spool

/// A run whose workflow task keeps failing, killed (no clean close) between any two steps while
/// a transient attempt is scheduled, in backoff, started or completing: after reopen it goes on
/// and ends with the history it would have had without the kill.
@Suite struct SpoolEngineTransientWorkflowTaskCrashTests {
    /// Temporal's history for the script: attempt 1 fails (written), attempt 2 fails (transient,
    /// not written), attempt 3 completes with a timer (its Scheduled and Started written then),
    /// and the signal that arrived while it ran follows, with a normal task (attempt 1).
    static let expected: [EventType] = [
        .workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskFailed,
        .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted, .timerStarted,
        .workflowExecutionSignaled, .workflowTaskScheduled,
    ]

    @Test(arguments: [-1, 0, 1, 2, 3, 4, 5])
    func aTransientAttemptInFlightCompletesAfterAKill(killAfter: Int) async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start()
        func step(_ index: Int) async throws {
            if index == killAfter { try await h.crashAndReopen() }
        }
        let first = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskFailed(taskToken: first.taskToken, failure: Failure(message: "panic"))
        try await step(0)
        let second = try #require(try await h.pollWorkflowTask())
        #expect(second.attempt == 2)
        try await step(1)
        try await h.engine.respondWorkflowTaskFailed(taskToken: second.taskToken, failure: Failure(message: "panic"))
        try await step(2)
        #expect(try h.describe(run).pendingWorkflowTask?.attempt == 3)
        await h.advance(.seconds(1))
        let third = try #require(try await h.pollWorkflowTask())
        #expect(third.attempt == 3 && third.startedEventID == 6)
        try await step(3)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "late")
        try await step(4)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: third.taskToken,
                                                        commands: [.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(5)))],
                                                        identity: "worker")
        try await step(5)

        let history = try await h.history(run)
        #expect(history.map(\.eventType) == Self.expected)
        #expect(history.map(\.eventID) == Array(1...10))
        #expect(Array(history[4...5]) == Array(third.history[4...5]))
        guard case .workflowTaskScheduled(let transient) = history[4].attributes,
              case .workflowTaskCompleted(let completed) = history[6].attributes,
              case .workflowTaskScheduled(let next) = history[9].attributes else { Issue.record("attributes"); return }
        #expect(transient.attempt == 3 && next.attempt == 1)
        #expect(completed.scheduledEventID == 5 && completed.startedEventID == 6)

        // And the run goes on to its end.
        let fourth = try #require(try await h.pollWorkflowTask())
        #expect(fourth.attempt == 1 && fourth.previousStartedEventID == 6 && fourth.startedEventID == 11)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: fourth.taskToken, commands: [.completeWorkflowExecution(.init())])
        #expect(try h.describe(run).executionInfo.status == .completed)
        try await h.crashAndReopen()
        #expect(try await h.history(run).count == 13)
    }

    /// The append of a transient attempt's failure, and then of its completion, reaches the disk
    /// but the call fails (the process dies before acting on it): after reopen each is there.
    @Test func aTransientFailureAndCompletionDurableBeforeTheCrashAreKept() async throws {
        let h = try EngineHarness(durability: .sync, injectingFaults: true)
        let run = try await h.start()
        let first = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskFailed(taskToken: first.taskToken, failure: Failure(message: "panic"))
        let second = try #require(try await h.pollWorkflowTask())
        h.crashAfterNextAppend()
        await #expect { try await h.engine.respondWorkflowTaskFailed(taskToken: second.taskToken, failure: Failure(message: "panic")) }
            throws: { isSpoolError($0, .storage) }
        try await h.crashAndReopen()
        #expect(try h.describe(run).pendingWorkflowTask?.attempt == 3)
        #expect(try await h.eventTypes(run).count == 4)
        await h.advance(.seconds(1))
        let third = try #require(try await h.pollWorkflowTask())
        #expect(third.attempt == 3 && third.startedEventID == 6)
        h.crashAfterNextAppend()
        await #expect {
            try await h.engine.respondWorkflowTaskCompleted(taskToken: third.taskToken, commands: [.completeWorkflowExecution(.init())],
                                                            identity: "worker")
        } throws: { isSpoolError($0, .storage) }
        try await h.crashAndReopen()
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskFailed, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskCompleted, .workflowExecutionCompleted])
        #expect(Array(history[4...5]) == Array(third.history[4...5]))
    }
}
