#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import Spool

/// `SpoolEngine.verifyHistory` against stores whose every checksum is valid but whose histories
/// or checkpoint break an engine invariant: each damage gives exactly its finding, with the file,
/// byte position, log offset and run; a healthy store, and a compacted one, are clean.
@Suite("History verifier")
struct HistoryVerifierTests {
    /// A stopped engine: run "open" with a pending activity, run "done" completed.
    struct Store {
        let harness: EngineHarness
        var data: String { harness.directory + "/data" }
        var history: String { data + "/history" }

        init(name: String = #function) async throws {
            harness = try EngineHarness(name: name)
            try await harness.start("open")
            _ = try await harness.completeWorkflowTask([scheduleActivity("a", queue: "acts")])
            try await harness.start("done")
            _ = try await harness.completeWorkflowTask([.completeWorkflowExecution(.init(result: .binary([1])))])
            try await harness.engine.close()
        }

        var checkpoint: EngineCheckpoint {
            get throws {
                let bytes = try #require(try CheckpointStore(directory: data, syscalls: SystemCalls()).read())
                return try EngineCheckpoint.decode(bytes)
            }
        }

        func run(_ workflowID: String) throws -> EngineCheckpoint.Run {
            try #require(try checkpoint.runs.first { $0.state.key.workflowID == workflowID })
        }

        func writeCheckpoint(_ checkpoint: EngineCheckpoint) throws {
            try CheckpointStore(directory: data, syscalls: SystemCalls()).write(checkpoint.encoded())
        }

        /// Appends `changes` of `key`'s run as one well-formed record (valid checksum) through the
        /// log, as the engine would; returns its offset, segment file and batch position.
        func append(_ key: ExecutionKey, _ changes: [StateChange]) async throws -> (offset: UInt64, file: String, position: Int) {
            let log = try Log.open(directory: history, configuration: LogConfiguration(durability: .sync))
            let offset = try await log.append(TransitionRecord(runs: [.init(key: key, changes: changes)]).encoded())
            try log.close()
            let offline = try OfflineLog.open(directory: history)
            defer { offline.close() }
            let segment = try #require(try offline.listing().segments.last { $0.baseOffset <= offset })
            var position: Int?
            _ = try offline.walkSegment(segment) { item in
                if case .batch(let batch) = item, batch.offsets.contains(offset) { position = batch.position }
            }
            return (offset, segment.path, try #require(position))
        }
    }

    static let time = Timestamp(nanosecondsSinceEpoch: 1_750_000_100_000_000_000)

    @Test("a healthy store is clean")
    func healthyStoreIsClean() async throws {
        let store = try await Store()
        let result = try SpoolEngine.verifyHistory(directory: store.data)
        #expect(result.findings == [])
        #expect(result.runs == 2)
        #expect(result.openRuns == 1)
        #expect(result.hasCheckpoint && result.checkpointRuns == 2)
        #expect(result.records > 0)
    }

    @Test("a compacted store is clean, and so is the same store without its checkpoint")
    func compactedStoreIsClean() async throws {
        let directory = TemporaryDirectory()
        let clock = ManualMatchingClock(start: MatchingInstant(nanoseconds: 1_750_000_000_000_000_000))
        try await HistoryFixture.build(directory.path, clock: clock)
        _ = try SpoolEngine.compactHistory(directory: directory.path, configuration: HistoryFixture.configuration(clock))
        #expect(try SpoolEngine.verifyHistory(directory: directory.path).findings == [])
        unlink(directory.path + "/checkpoint")
        let without = try SpoolEngine.verifyHistory(directory: directory.path)
        #expect(without.findings == [])
        #expect(!without.hasCheckpoint)
    }

    @Test("an event id that skips one is an eventIDGap at its record")
    func eventIDGap() async throws {
        let store = try await Store()
        let open = try store.run("open")
        let skipped = open.state.nextEventID + 1
        let at = try await store.append(open.state.key, [.event(HistoryEvent(eventID: skipped, eventTime: Self.time,
            attributes: .workflowExecutionSignaled(.init(signalName: "s", input: nil, identity: "test"))))])
        let result = try SpoolEngine.verifyHistory(directory: store.data)
        #expect(result.findings == [HistoryFinding(
            kind: .eventIDGap, file: at.file, position: at.position, offset: at.offset, namespace: open.state.key.namespace,
            execution: open.state.key.execution, eventID: skipped,
            message: "event \(skipped) WorkflowExecutionSignaled follows event \(skipped - 2); expected id \(skipped - 1)")])
    }

    @Test("a change after the close event is eventAfterClose")
    func eventAfterClose() async throws {
        let store = try await Store()
        let done = try store.run("done")
        let at = try await store.append(done.state.key, [.event(HistoryEvent(eventID: done.state.nextEventID, eventTime: Self.time,
            attributes: .workflowExecutionSignaled(.init(signalName: "late", input: nil, identity: "test"))))])
        let result = try SpoolEngine.verifyHistory(directory: store.data)
        try #require(result.findings.count == 1)
        let finding = result.findings[0]
        #expect(finding.kind == .eventAfterClose)
        #expect(finding.file == at.file && finding.position == at.position && finding.offset == at.offset)
        #expect(finding.execution == done.state.key.execution)
        #expect(finding.eventID == done.state.nextEventID)
    }

    @Test("an activity outcome naming a workflow task event is a badEventReference")
    func badReference() async throws {
        let store = try await Store()
        let open = try store.run("open")
        let id = open.state.nextEventID
        // Event 2 is the first WorkflowTaskScheduled, not an ActivityTaskScheduled.
        let at = try await store.append(open.state.key, [.event(HistoryEvent(eventID: id, eventTime: Self.time,
            attributes: .activityTaskCompleted(.init(result: nil, scheduledEventID: 2, startedEventID: 0, identity: "test"))))])
        let result = try SpoolEngine.verifyHistory(directory: store.data)
        #expect(result.findings == [HistoryFinding(
            kind: .badEventReference, file: at.file, position: at.position, offset: at.offset, namespace: open.state.key.namespace,
            execution: open.state.key.execution, eventID: id,
            message: "ActivityTaskCompleted scheduledEventID 2 names a WorkflowTaskScheduled event, not ActivityTaskScheduled")])
    }

    @Test("a run whose first record does not start it is runNotStarted")
    func runNotStarted() async throws {
        let store = try await Store()
        let key = ExecutionKey(namespace: "default", workflowID: "ghost", runID: "no-such-run")
        let at = try await store.append(key, [.event(HistoryEvent(eventID: 1, eventTime: Self.time,
            attributes: .workflowExecutionSignaled(.init(signalName: "s", input: nil, identity: "test"))))])
        let result = try SpoolEngine.verifyHistory(directory: store.data)
        try #require(result.findings.count == 1)
        #expect(result.findings[0].kind == .runNotStarted)
        #expect(result.findings[0].offset == at.offset && result.findings[0].position == at.position)
        #expect(result.findings[0].execution == key.execution)
    }

    @Test("a checkpoint state that its history does not rebuild is checkpointStateMismatch")
    func checkpointStateMismatch() async throws {
        let store = try await Store()
        var checkpoint = try store.checkpoint
        let i = try #require(checkpoint.runs.firstIndex { $0.state.key.workflowID == "open" })
        // The pending activity vanishes from the checkpoint but not from the history.
        checkpoint.runs[i].state.activities = [:]
        checkpoint.runs[i].state.activityIDs = [:]
        try store.writeCheckpoint(checkpoint)
        let run = checkpoint.runs[i]
        let result = try SpoolEngine.verifyHistory(directory: store.data)
        try #require(result.findings.count == 1)
        let finding = result.findings[0]
        #expect(finding.kind == .checkpointStateMismatch)
        #expect(finding.file == store.data + "/checkpoint")
        #expect(finding.position == nil)
        #expect(finding.offset == run.recordOffsets.last)
        #expect(finding.execution == run.state.key.execution)
        #expect(finding.message.contains("activities: checkpoint [:]"), "\(finding.message)")
    }

    @Test("an open run left out of the checkpoint is checkpointMissingRun")
    func checkpointMissingRun() async throws {
        let store = try await Store()
        var checkpoint = try store.checkpoint
        let open = try store.run("open")
        checkpoint.runs.removeAll { $0.state.key == open.state.key }
        try store.writeCheckpoint(checkpoint)
        let result = try SpoolEngine.verifyHistory(directory: store.data)
        #expect(result.findings.map(\.kind) == [.checkpointMissingRun])
        #expect(result.findings.first?.execution == open.state.key.execution)
        #expect(result.findings.first?.offset == open.recordOffsets.first)
    }

    @Test("record offsets the log does not hold for the run are checkpointOffsetsMismatch")
    func checkpointOffsetsMismatch() async throws {
        let store = try await Store()
        var checkpoint = try store.checkpoint
        let i = try #require(checkpoint.runs.firstIndex { $0.state.key.workflowID == "done" })
        let other = try store.run("open")
        // Claim the other run's first record as this run's last.
        checkpoint.runs[i].recordOffsets = [checkpoint.runs[i].recordOffsets[0], other.recordOffsets[0]].sorted()
        try store.writeCheckpoint(checkpoint)
        let result = try SpoolEngine.verifyHistory(directory: store.data)
        #expect(result.findings.map(\.kind) == [.checkpointOffsetsMismatch])
        #expect(result.findings.first?.execution == checkpoint.runs[i].state.key.execution)
    }

    @Test("a checkpoint that does not decode is checkpointUnreadable")
    func checkpointUnreadable() async throws {
        let store = try await Store()
        try CheckpointStore(directory: store.data, syscalls: SystemCalls()).write(Array("not a checkpoint at all".utf8))
        let result = try SpoolEngine.verifyHistory(directory: store.data)
        #expect(result.findings.map(\.kind) == [.checkpointUnreadable])
        #expect(result.findings.first?.file == store.data + "/checkpoint")
    }

    @Test("runsAffected names the runs with a lost record, from the checkpoint and from the log")
    func runsAffectedByLostRecords() async throws {
        let store = try await Store()
        let open = try store.run("open")
        let done = try store.run("done")
        let lost = open.recordOffsets[1]
        #expect(try SpoolEngine.runsAffected(directory: store.data, lost: [lost..<lost + 1]) == [open.state.key.execution])
        #expect(try SpoolEngine.runsAffected(directory: store.data, lost: []) == [])
        // A range with no upper bound (damage at the end of the last segment) reaches every later record.
        // ("open" wrote all its records before "done" started.)
        #expect(try SpoolEngine.runsAffected(directory: store.data, lost: [done.recordOffsets[0]..<UInt64.max]) == [done.state.key.execution])
        // A record the log no longer holds shows in the history too: without the checkpoint, the
        // gap it leaves is found by reading the log.
        unlink(store.data + "/checkpoint")
        let at = try await store.append(open.state.key, [.event(HistoryEvent(eventID: open.state.nextEventID + 3, eventTime: Self.time,
            attributes: .workflowExecutionSignaled(.init(signalName: "s", input: nil, identity: "test"))))])
        #expect(try SpoolEngine.runsAffected(directory: store.data, lost: [at.offset - 1..<at.offset]) == [open.state.key.execution])
    }
}
