import SpoolLogTesting
import Testing
@testable import Spool

/// The engine is abandoned (no clean close: no final sync, no marker, in-memory state dropped)
/// at various points and reopened; everything durable must be restored exactly.
@Suite struct SpoolEngineCrashTests {
    @Test func reopeningRestoresRunsTasksAndBufferedEvents() async throws {
        let h = try EngineHarness(durability: .sync)
        let idle = try await h.start("idle")
        let busy = try await h.start("busy")
        _ = try await h.pollWorkflowTask()                              // one of them is started
        let started = try #require(h.engine.listWorkflowExecutions().first { (try? h.describe($0.execution).pendingWorkflowTask?.started) == true })
        try await h.engine.signalWorkflowExecution(execution: started.execution, signalName: "buffered", input: .binary([1]))
        let closed = try await h.start("closed")
        try await h.engine.terminateWorkflowExecution(execution: closed)
        let before = try await h.snapshot()

        try await h.crashAndReopen()
        expectSameState(before, try await h.snapshot())
        #expect(try h.describe(started.execution).bufferedEventCount == 1)
        // The scheduled (not started) task is back on its queue, and only it.
        let other = [idle, busy].first { $0.workflowID != started.execution.workflowID }!
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.workflowExecution == other)
        #expect(try await h.pollWorkflowTask() == nil)
        // The current run of each workflow id survives too.
        await #expect { try await h.start("idle") } throws: { isSpoolError($0, .workflowExecutionAlreadyStarted) }
        _ = try await h.start("closed")
    }

    @Test func aTaskAppendedButNotDispatchedBeforeTheCrashIsDispatchedOnOpen() async throws {
        let h = try EngineHarness(durability: .sync, injectingFaults: true)
        let run = try await h.start()
        let task = try #require(try await h.pollWorkflowTask())
        h.crashAfterNextAppend()
        await #expect { try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [scheduleActivity()]) }
            throws: { isSpoolError($0, .storage) }
        try await h.crashAndReopen()
        #expect(try await h.eventTypes(run).last == .activityTaskScheduled)
        let activity = try #require(try await h.pollActivityTask())
        #expect(activity.taskToken.scheduledEventID == 5)
        #expect(activity.attempt == 1)
    }

    @Test func aStartAppendedButNotDispatchedIsDispatchedOnOpen() async throws {
        let h = try EngineHarness(durability: .sync, injectingFaults: true)
        h.crashAfterNextAppend()
        await #expect { try await h.start("w") } throws: { isSpoolError($0, .storage) }
        try await h.crashAndReopen()
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.workflowExecution.workflowID == "w")
        #expect(task.history.count == 3)
    }

    @Test func aStartedWorkflowTaskStaysStartedAndTimesOutAfterReopen() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start()
        let task = try #require(try await h.pollWorkflowTask())
        try await h.crashAndReopen()
        #expect(try h.describe(run).pendingWorkflowTask?.started == true)
        #expect(try await h.pollWorkflowTask() == nil)
        // A worker that survived the crash may still complete it with its token.
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(1)))])
        try await h.crashAndReopen()
        // And a started task whose worker is gone times out on schedule.
        let second = try await h.start("second")
        _ = try #require(try await h.pollWorkflowTask())
        try await h.crashAndReopen()
        await h.advance(.seconds(10))
        // The retry is transient (attempt 2): WorkflowTaskTimedOut is the last event written.
        #expect(try await h.eventTypes(second).suffix(2) == [.workflowTaskStarted, .workflowTaskTimedOut])
        #expect(try h.describe(second).pendingWorkflowTask?.attempt == 2)
        #expect(try await h.pollWorkflowTask() != nil)
    }

    @Test func aTimerDueWhileDownFiresOnceAtOpen() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(5)))])
        await h.engine.abandon()
        h.clock.advance(by: .seconds(3600))
        try await h.crashAndReopen()
        await h.engine.fireDueTimers()
        await h.engine.fireDueTimers()
        #expect(try await h.eventTypes(run).filter { $0 == .timerFired }.count == 1)
        try await h.crashAndReopen()
        await h.advance(.seconds(3600))
        #expect(try await h.eventTypes(run).filter { $0 == .timerFired }.count == 1)
        guard case .timerFired(let fired) = try await h.history(run)[5].attributes else { Issue.record("fired"); return }
        #expect(fired.startedEventID == 5)
    }

    @Test func anActivityInRetryBackoffResumesWithItsHeartbeatDetails() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity(retry: RetryPolicy(initialInterval: .seconds(10)))])
        let first = try #require(try await h.pollActivityTask())
        try await h.engine.recordActivityTaskHeartbeat(taskToken: first.taskToken, details: .binary([7, 7]))
        try await h.engine.respondActivityTaskFailed(taskToken: first.taskToken, failure: Failure(message: "flaky"))
        try await h.crashAndReopen()
        #expect(try await h.pollActivityTask() == nil)
        await h.advance(.seconds(10))
        let second = try #require(try await h.pollActivityTask())
        #expect(second.attempt == 2)
        #expect(second.heartbeatDetails == .binary([7, 7]))
        // A started attempt survives too, with its start-to-close timer.
        try await h.crashAndReopen()
        await h.advance(.seconds(30))
        let pending = try #require(try h.describe(run).pendingActivities.first)
        #expect(pending.attempt == 3)
        #expect(pending.lastFailure?.timeoutType == .startToClose)
    }

    @Test func aCleanCloseRestoresTheSameState() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity(), .startTimer(.init(timerID: "t", startToFireTimeout: .seconds(50)))])
        let before = try await h.snapshot()
        try await h.closeAndReopen()
        expectSameState(before, try await h.snapshot())
        #expect(try await h.pollActivityTask() != nil)
        _ = run
    }

    /// Many workflows of one activity driven step by step, with the engine killed every few
    /// steps (sometimes between an append and its dispatch). Every run must still complete,
    /// with one ActivityTaskStarted and one ActivityTaskCompleted, contiguous event ids, and a
    /// history that only ever grew across the crashes.
    @Test func workflowsCompleteDespiteCrashesAtManyPoints() async throws {
        let h = try EngineHarness(durability: .sync, injectingFaults: true)
        let count = 12
        for index in 0..<count { try await h.start("w\(index)") }
        var random = SplitMix64(seed: 42)
        var seen: [String: [HistoryEvent]] = [:]
        var crashes = 0
        for step in 0..<400 {
            if h.engine.listWorkflowExecutions(status: .running).isEmpty { break }
            if random.next() % 7 == 0 {
                if random.next() % 2 == 0 { h.crashAfterNextAppend() }
                else { try await h.crashAndReopen(); crashes += 1 }
            }
            do {
                if let task = try await h.pollWorkflowTask() {
                    let scheduled = task.history.contains { $0.eventType == .activityTaskScheduled }
                    let done = task.history.contains { $0.eventType == .activityTaskCompleted }
                    let commands: [Command] = done ? [.completeWorkflowExecution(.init())] : scheduled ? [] : [scheduleActivity(startToClose: .seconds(20))]
                    try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: commands)
                } else if let activity = try await h.pollActivityTask() {
                    try await h.engine.respondActivityTaskCompleted(taskToken: activity.taskToken, result: .binary([UInt8(step % 256)]))
                } else {
                    await h.advance(.seconds(30))       // time out what the crashes left started
                }
            } catch let error as SpoolError where error.code == .storage || error.code == .staleTaskToken {
                if error.code == .storage { try await h.crashAndReopen(); crashes += 1 }
            }
            for info in h.engine.listWorkflowExecutions() {
                let history = try await h.history(info.execution)
                let previous = seen[info.execution.workflowID] ?? []
                #expect(Array(history.prefix(previous.count)) == previous, "history of \(info.execution.workflowID) was rewritten")
                seen[info.execution.workflowID] = history
            }
        }
        #expect(crashes > 3)
        let runs = h.engine.listWorkflowExecutions()
        #expect(runs.count == count)
        for info in runs {
            #expect(info.status == .completed, "\(info.execution.workflowID) is \(info.status)")
            let history = try await h.history(info.execution)
            #expect(history.map(\.eventID) == Array(1...Int64(history.count)))
            #expect(history.filter { $0.eventType == .activityTaskScheduled }.count == 1)
            #expect(history.filter { $0.eventType == .activityTaskStarted }.count == 1)
            #expect(history.filter { $0.eventType == .activityTaskCompleted }.count == 1)
        }
    }
}
