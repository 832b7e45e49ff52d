import SpoolLog
import Testing
@testable import Spool

@Suite struct SpoolEngineClientTests {
    @Test func aSecondStartWhileARunIsOpenIsRejectedByDefault() async throws {
        let h = try EngineHarness()
        let first = try await h.start("w")
        await #expect { try await h.start("w") } throws: { isSpoolError($0, .workflowExecutionAlreadyStarted) }
        let existing = try await h.engine.startWorkflowExecution(.init(workflowID: "w", workflowType: "order", taskQueue: "q",
                                                                       workflowIDConflictPolicy: .useExisting))
        #expect(existing == StartWorkflowExecutionResponse(runID: first.runID, started: false))
        #expect(h.engine.listWorkflowExecutions().count == 1)
    }

    @Test func runIDsAreRandomUUIDs() async throws {
        let h = try EngineHarness()
        var ids = Set<String>()
        for index in 0..<50 { ids.insert(try await h.start("w\(index)").runID) }
        #expect(ids.count == 50)
        for id in ids {
            #expect(id.count == 36)
            #expect(Array(id)[14] == "4")
        }
    }

    @Test func terminateExistingReplacesTheOpenRun() async throws {
        for policy in [(WorkflowIDReusePolicy.terminateIfRunning, WorkflowIDConflictPolicy.fail),
                       (.allowDuplicate, .terminateExisting)] {
            let h = try EngineHarness()
            let first = try await h.start("w")
            let second = try await h.start("w", reuse: policy.0, conflict: policy.1)
            #expect(second.runID != first.runID)
            #expect(try h.describe(first).executionInfo.status == .terminated)
            #expect(try h.describe(second).executionInfo.status == .running)
            #expect(try await h.eventTypes(first).last == .workflowExecutionTerminated)
            // The first run's queued task is dropped: only the second run's task is handed out.
            let task = try #require(try await h.pollWorkflowTask())
            #expect(task.workflowExecution == second)
            #expect(try await h.pollWorkflowTask() == nil)
        }
    }

    @Test func reusePoliciesDecideAfterTheRunClosed() async throws {
        let h = try EngineHarness()
        let completed = try await h.start("done")
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init())])
        await #expect { try await h.start("done", reuse: .allowDuplicateFailedOnly) } throws: { isSpoolError($0, .workflowExecutionAlreadyStarted) }
        await #expect { try await h.start("done", reuse: .rejectDuplicate) } throws: { isSpoolError($0, .workflowExecutionAlreadyStarted) }
        let again = try await h.start("done", reuse: .allowDuplicate)
        #expect(again.runID != completed.runID)

        let terminated = try await h.start("killed")
        try await h.engine.terminateWorkflowExecution(execution: terminated, reason: "test")
        let retried = try await h.start("killed", reuse: .allowDuplicateFailedOnly)
        #expect(retried.runID != terminated.runID)
    }

    @Test func operationsOnClosedOrUnknownRunsFail() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        try await h.engine.terminateWorkflowExecution(execution: run)
        await #expect { try await h.engine.signalWorkflowExecution(execution: run, signalName: "s") } throws: { isSpoolError($0, .notFound) }
        await #expect { try await h.engine.terminateWorkflowExecution(execution: run) } throws: { isSpoolError($0, .notFound) }
        await #expect {
            try await h.engine.requestCancelWorkflowExecution(execution: WorkflowExecution(workflowID: "nope"))
        } throws: { isSpoolError($0, .notFound) }
        #expect(throws: SpoolError.self) { try h.engine.describeWorkflowExecution(execution: WorkflowExecution(workflowID: "nope")) }
        await #expect { try await h.engine.startWorkflowExecution(.init(workflowID: "", workflowType: "t", taskQueue: "q")) }
            throws: { isSpoolError($0, .invalidArgument) }
    }

    @Test func terminatingDuringAStartedTaskFailsItAndWritesBufferedEvents() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let task = try #require(try await h.pollWorkflowTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s")
        try await h.engine.terminateWorkflowExecution(execution: run, reason: "stop", identity: "admin")
        let history = try await h.history(run)
        #expect(history[3...].map(\.eventType) == [.workflowTaskFailed, .workflowExecutionSignaled, .workflowExecutionTerminated])
        guard case .workflowTaskFailed(let failed) = history[3].attributes,
              case .workflowExecutionTerminated(let terminated) = history[5].attributes else { Issue.record("failed"); return }
        // As Temporal's TerminateWorkflow: the history service fails the task, the caller terminates.
        #expect(failed.cause == .forceCloseCommand && failed.identity == "history-service" && failed.failure == nil)
        #expect(failed.scheduledEventID == 2 && failed.startedEventID == 3)
        #expect(terminated.identity == "admin" && terminated.reason == "stop")
        await #expect { try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: []) }
            throws: { isSpoolError($0, .staleTaskToken) }
    }

    @Test func listFiltersByStatusAndType() async throws {
        let h = try EngineHarness()
        let a = try await h.start("a", type: "order")
        let b = try await h.start("b", type: "refund")
        _ = try await h.start("c", type: "order")
        try await h.engine.terminateWorkflowExecution(execution: b)
        #expect(Set(h.engine.listWorkflowExecutions(status: .running).map(\.execution.workflowID)) == ["a", "c"])
        #expect(h.engine.listWorkflowExecutions(status: .terminated).map(\.execution) == [b])
        #expect(Set(h.engine.listWorkflowExecutions(workflowType: "order").map(\.execution.workflowID)) == ["a", "c"])
        #expect(h.engine.listWorkflowExecutions(status: .running, workflowType: "refund").isEmpty)
        #expect(h.engine.listWorkflowExecutions(namespace: "other").isEmpty)
        #expect(try h.describe(a).executionInfo.type == "order")
    }

    @Test func historyIsReadByPage() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        for index in 0..<5 { try await h.engine.signalWorkflowExecution(execution: run, signalName: "s\(index)") }
        var ids: [Int64] = []
        var token: [UInt8]? = nil
        var pages = 0
        repeat {
            let page = try await h.engine.getWorkflowExecutionHistory(execution: WorkflowExecution(workflowID: "wf"),
                                                                      maximumPageSize: 3, nextPageToken: token)
            ids += page.history.map(\.eventID)
            token = page.nextPageToken
            pages += 1
        } while token != nil
        #expect(ids == Array(1...7))
        #expect(pages == 3)
        await #expect { try await h.engine.getWorkflowExecutionHistory(execution: run, nextPageToken: [9, 9]) }
            throws: { isSpoolError($0, .invalidPageToken) }
    }

    @Test func longPollReturnsWhenNewEventsArrive() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let first = try await h.engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true)
        #expect(first.history.count == 2)
        let token = try #require(first.nextPageToken)
        let engine = h.engine
        let poll = Task { try await engine.getWorkflowExecutionHistory(execution: run, nextPageToken: token, waitNewEvent: true) }
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "wake")
        let page = try await poll.value
        #expect(page.history.map(\.eventType) == [.workflowExecutionSignaled])
        #expect(page.nextPageToken != nil)

        let closeWaiter = Task {
            try await engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true, historyEventFilterType: .closeEvent)
        }
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "not the end")
        try await h.engine.terminateWorkflowExecution(execution: run)
        let close = try await closeWaiter.value
        #expect(close.history.map(\.eventType) == [.workflowExecutionTerminated])
        #expect(close.nextPageToken == nil)
    }

    @Test func aCancelledLongPollReturnsAtOnce() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let token = try #require(try await h.engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true).nextPageToken)
        let engine = h.engine
        let poll = Task { try await engine.getWorkflowExecutionHistory(execution: run, nextPageToken: token, waitNewEvent: true) }
        while h.clock.sleeperCount == 0 { await Task.yield() }
        poll.cancel()
        let page = try await poll.value
        #expect(page.history.isEmpty)
        #expect(page.nextPageToken == token)
    }

    @Test func longPollTimesOutOnTheEngineClock() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let token = try #require(try await h.engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true).nextPageToken)
        let engine = h.engine
        let poll = Task { try await engine.getWorkflowExecutionHistory(execution: run, nextPageToken: token, waitNewEvent: true,
                                                                       timeout: .seconds(30)) }
        while h.clock.sleeperCount == 0 { await Task.yield() }
        h.clock.advance(by: .seconds(30))
        let page = try await poll.value
        #expect(page.history.isEmpty)
        #expect(page.nextPageToken == token)
    }

    @Test func aSecondEngineOnTheSameDirectoryIsRefused() async throws {
        let h = try EngineHarness()
        #expect {
            try EngineHarness.open(h.directory, clock: h.clock, durability: .none)
        } throws: { error in
            isSpoolError(error, .storage) && (error as? SpoolError)?.underlying is LogError
        }
    }

    @Test func payloadsTooLargeForOneRecordAreRefusedAndChangeNothing() async throws {
        let h = try EngineHarness()
        await h.engine.abandon()
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(h.clock)
        configuration.firesTimersAutomatically = false
        configuration.log = LogConfiguration(durability: .none)
        configuration.log.maxRecordBytes = 4096
        h.engine = try SpoolEngine.open(directory: h.directory + "/data", configuration: configuration)
        let run = try await h.start()
        await #expect { try await h.engine.signalWorkflowExecution(execution: run, signalName: "big", input: .binary([UInt8](repeating: 1, count: 10_000))) }
            throws: { isSpoolError($0, .invalidArgument) }
        #expect(try await h.eventTypes(run).count == 2)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "small", input: .binary([1]))
        #expect(try await h.eventTypes(run).count == 3)
    }

    @Test func theRunTimeoutClosesTheRun() async throws {
        let h = try EngineHarness()
        let run = try await h.start(runTimeout: .seconds(8))
        _ = try #require(try await h.pollWorkflowTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "buffered")
        await h.advance(.seconds(7))
        #expect(try h.describe(run).executionInfo.status == .running)
        await h.advance(.seconds(1))
        #expect(try h.describe(run).executionInfo.status == .timedOut)
        // As Temporal's TimeoutWorkflow: the started task fails (ForceCloseCommand), the buffered
        // signal is written, then the run closes.
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                                .workflowTaskFailed, .workflowExecutionSignaled, .workflowExecutionTimedOut])
        #expect(try await h.pollWorkflowTask() == nil)
    }

    @Test func concurrentSignalsAndTaskCompletionsKeepEventIDsContiguous() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let engine = h.engine
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask { try await engine.signalWorkflowExecution(execution: run, signalName: "s\(index)") }
            }
            group.addTask {
                for _ in 0..<200 {
                    if let task = try await engine.pollWorkflowTaskQueue(taskQueue: "q", timeout: .zero) {
                        try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [])
                    } else {
                        await Task.yield()
                    }
                }
            }
            try await group.waitForAll()
        }
        // Drain what the last signals caused.
        while let task = try await h.pollWorkflowTask() {
            try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [])
        }
        let history = try await h.history(run)
        #expect(history.map(\.eventID) == Array(1...Int64(history.count)))
        #expect(Set(history.compactMap { event -> String? in
            if case .workflowExecutionSignaled(let signal) = event.attributes { return signal.signalName }
            return nil
        }) == Set((0..<40).map { "s\($0)" }))
        #expect(try h.describe(run).bufferedEventCount == 0)
        #expect(try h.describe(run).pendingWorkflowTask == nil)
    }

    @Test func closedRunsLeaveAfterTheirRetention() async throws {
        let h = try EngineHarness()
        let done = try await h.start("done")
        try await h.engine.terminateWorkflowExecution(execution: done)
        let open = try await h.start("open")
        await h.advance(.seconds(7 * 24 * 3600 - 1))
        #expect(try h.describe(done).executionInfo.status == .terminated)
        await h.advance(.seconds(1))
        #expect(throws: SpoolError.self) { try h.describe(done) }
        #expect(h.engine.listWorkflowExecutions().map(\.execution) == [open])
        // Its workflow id is free, even for a policy that rejects duplicates.
        _ = try await h.start("done", reuse: .rejectDuplicate)
        // A run closed before a crash and past its retention at reopen is dropped too, once the
        // log holds a record from after its retention (retention follows the log's own times,
        // not the wall clock alone: issue 25 point 6).
        try await h.engine.terminateWorkflowExecution(execution: open)
        h.clock.advance(by: .seconds(8 * 24 * 3600))
        _ = try await h.start("later")
        await h.engine.abandon()
        try await h.crashAndReopen()
        #expect(h.engine.recovery?.droppedRuns == 2)
        #expect(Set(h.engine.listWorkflowExecutions().map(\.execution.workflowID)) == ["done", "later"])
    }
}
