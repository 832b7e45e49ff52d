import SpoolLog
import Testing
@testable import Spool

/// Transient workflow-task attempts on disk: the three state changes and the run state's
/// layout-3 fields round-trip through records, checkpoints, the closed-run table, compaction and
/// the offline verifier.
@Suite struct SpoolEngineTransientWorkflowTaskStorageTests {
    static let time = Timestamp(nanosecondsSinceEpoch: 1_750_000_000_000_000_000)
    static let key = ExecutionKey(namespace: "default", workflowID: "w", runID: "r")

    @Test func theTransientChangesRoundTripInLayout3AndAreRefusedInOlderRecords() throws {
        let changes: [StateChange] = [
            .transientWorkflowTaskScheduled(attempt: 3, time: Self.time),
            .transientWorkflowTaskStarted(scheduledEventID: 5, time: Self.time, identity: "w-é", requestID: "req"),
            .transientWorkflowTaskEnded(scheduledEventID: 5, attempt: 3),
        ]
        let record = TransitionRecord(runs: [.init(key: Self.key, changes: changes)])
        var bytes = record.encoded()
        #expect(bytes[0] == ValueLayout.current.rawValue)      // layout 3 or later
        #expect(try TransitionRecord.decode(bytes, context: "test") == record)
        // A version-2 record cannot hold them: damage, not a transient attempt.
        bytes[0] = 2
        #expect(throws: SpoolError.self) { try TransitionRecord.decode(bytes, context: "test") }
    }

    @Test func aRunStateWithATransientTaskRoundTripsAndOlderLayoutsDecodeWithoutIt() throws {
        let started = WorkflowExecutionStartedEventAttributes(
            workflowType: "order", taskQueue: "q", input: nil, workflowRunTimeout: nil, workflowTaskTimeout: .seconds(10),
            continuedExecutionRunID: "", firstExecutionRunID: "r", identity: "", requestID: "req", attempt: 1)
        var state = ExecutionState(key: Self.key, started: started, startTime: Self.time)
        state.nextEventID = 5
        state.workflowTask = WorkflowTaskInfo(scheduledEventID: 5, attempt: 4, taskQueue: "q", startToCloseTimeout: .seconds(10),
                                              scheduledTime: Self.time, startedEventID: 6, startedTime: Self.time, identity: "w",
                                              isSticky: false, isTransient: true, requestID: "poll-1")
        var w = BinaryWriter()
        state.encode(into: &w)
        var r = BinaryReader<SpoolError>(w.bytes, context: "test")
        #expect(try ExecutionState.decode(from: &r, layout: .current) == state)
        #expect(r.isAtEnd)
        // Layout 2 has no such fields: read as layout 2, the same bytes give a normal task, and
        // what is left unread ends with exactly the task's layout-3 fields, then the run's
        // priority (unset: key 0, empty fairness key, weight 0), then the layout-4 related-runs
        // record (length 4: no parent, no children, signals or cancel requests).
        var older = BinaryReader<SpoolError>(w.bytes, context: "test")
        let decoded = try ExecutionState.decode(from: &older, layout: .whole)
        let unread = Array(w.bytes[older.position...])
        #expect(Array(unread.suffix(3 + "poll-1".utf8.count + 3 + 5))
                == [1, 1, UInt8("poll-1".utf8.count)] + Array("poll-1".utf8) + [0, 0, 0] + [4, 0, 0, 0, 0])
        #expect(decoded.workflowTask?.isTransient == false && decoded.workflowTask?.requestID == "")
    }

    /// A transient attempt started when the engine closes (a checkpoint holds it) and one
    /// scheduled in a second run: both are restored, and the verifier finds nothing wrong.
    @Test func aCheckpointHoldsTransientAttempts() async throws {
        let h = try EngineHarness()
        let started = try await h.start("started")
        let waiting = try await h.start("waiting")
        for _ in 0..<2 {
            let task = try #require(try await h.pollWorkflowTask())
            try await h.engine.respondWorkflowTaskFailed(taskToken: task.taskToken, failure: Failure(message: "panic"))
        }
        let second = try #require(try await h.pollWorkflowTask())
        #expect(second.attempt == 2)
        let before = try await h.snapshot()
        try await h.engine.close()
        let check = try SpoolEngine.verifyHistory(directory: h.directory + "/data")
        #expect(check.findings == [])
        #expect(check.hasCheckpoint)
        h.engine = try EngineHarness.open(h.directory, clock: h.clock, durability: h.durability)
        expectSameState(before, try await h.snapshot())
        let other = second.workflowExecution == started ? waiting : started
        #expect(try h.describe(other).pendingWorkflowTask?.attempt == 2)
        #expect(try h.describe(other).pendingWorkflowTask?.started == false)
        let third = try #require(try await h.pollWorkflowTask())
        #expect(third.workflowExecution == other && third.attempt == 2 && third.startedEventID == 6)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: second.taskToken, commands: [.completeWorkflowExecution(.init())],
                                                        identity: "worker")
        #expect(try await h.eventTypes(second.workflowExecution) == [
            .workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskFailed,
            .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted, .workflowExecutionCompleted,
        ])
    }

    /// A closed run whose history holds a completed transient attempt, and an open run with a
    /// started one, through `compactHistory` (closed runs go to the closed-run table).
    @Test func transientAttemptsSurviveCompaction() async throws {
        let h = try EngineHarness()
        let closed = try await h.start("closed")
        let first = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskFailed(taskToken: first.taskToken, failure: Failure(message: "panic"))
        let retry = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskCompleted(taskToken: retry.taskToken, commands: [.completeWorkflowExecution(.init())],
                                                        identity: "worker")
        let open = try await h.start("open")
        let openFirst = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskFailed(taskToken: openFirst.taskToken, failure: Failure(message: "panic"))
        let openRetry = try #require(try await h.pollWorkflowTask())
        let closedHistory = try await h.history(closed)
        #expect(closedHistory.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                                   .workflowTaskFailed, .workflowTaskScheduled, .workflowTaskStarted,
                                                   .workflowTaskCompleted, .workflowExecutionCompleted])
        let before = try await h.snapshot()
        try await h.engine.close()
        var configuration = HistoryFixture.configuration(h.clock)
        configuration.closedRunTableMergeThreshold = 1
        _ = try SpoolEngine.compactHistory(directory: h.directory + "/data", configuration: configuration)
        #expect(try SpoolEngine.verifyHistory(directory: h.directory + "/data").findings == [])
        h.engine = try EngineHarness.open(h.directory, clock: h.clock, durability: h.durability)
        expectSameState(before, try await h.snapshot())
        try await h.engine.respondWorkflowTaskCompleted(taskToken: openRetry.taskToken, commands: [], identity: "worker")
        #expect(try await h.eventTypes(open).suffix(3) == [.workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted])
        try await h.crashAndReopen()
        #expect(try await h.history(closed) == closedHistory)
    }
}
