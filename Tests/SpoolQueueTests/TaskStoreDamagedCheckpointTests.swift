#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// A damaged `checkpoint` never hides a task nor makes the store unopenable: the store rebuilds
/// its queues from the log, says so in its recovery report, and keeps working (issue 25, "A
/// damaged tasks/checkpoint makes the task store unopenable …").
@Suite struct TaskStoreDamagedCheckpointTests {
    /// A closed store with 40 acknowledged tasks, the first 10 completed: the ids of the 30
    /// pending ones.
    private func makeStore(_ dir: TemporaryDirectory, configuration: TaskStoreConfiguration = testConfiguration(),
                           payloadSize: Int = 64) async throws -> [UInt64] {
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        var ids: [UInt64] = []
        for i in 0..<40 { ids.append(try await store.add(payload(i, size: payloadSize), to: "q", kind: .activity)) }
        for _ in 0..<10 {
            let task = try #require(try await store.poll("q", kind: .activity, timeout: .zero))
            try store.complete(task.id)
        }
        try await store.close()
        return Array(ids.dropFirst(10))
    }

    private var checkpointPath: (TemporaryDirectory) -> String { { $0.store + "/checkpoint" } }

    /// Opens the store, takes every pending task, checks they are `expected`, and closes it
    /// (which writes a new checkpoint); returns the open's report.
    private func reopenAndDrain(_ dir: TemporaryDirectory, expecting expected: [UInt64]) async throws -> TaskStoreRecoveryReport {
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration())
        let report = store.recoveryReport
        #expect(try await store.drainNow("q", complete: false).map(\.id).sorted() == expected)
        try await store.close()
        return report
    }

    @Test("a checkpoint of garbage bytes: the store opens and returns every pending task")
    func garbageCheckpoint() async throws {
        let dir = TemporaryDirectory()
        let pending = try await makeStore(dir)
        try writeBytes(checkpointPath(dir), Array(repeating: 0xA5, count: 100))
        let report = try await reopenAndDrain(dir, expecting: pending)
        #expect(report.ignoredCheckpoint?.contains("does not decode") == true, "\(report)")
        #expect(report.replayedFrom == 0)
        // The checkpoint written at close is whole again: the next open uses it.
        #expect(try await reopenAndDrain(dir, expecting: pending).ignoredCheckpoint == nil)
    }

    @Test("a checkpoint cut in half: the store opens and returns every pending task")
    func truncatedCheckpoint() async throws {
        let dir = TemporaryDirectory()
        let pending = try await makeStore(dir)
        let bytes = readFile(checkpointPath(dir))
        try writeBytes(checkpointPath(dir), Array(bytes.prefix(bytes.count / 2)))
        let report = try await reopenAndDrain(dir, expecting: pending)
        #expect(report.ignoredCheckpoint != nil)
    }

    @Test("a directory where the checkpoint belongs: moved aside, every task returned, checkpoints written again")
    func directoryCheckpoint() async throws {
        let dir = TemporaryDirectory()
        let pending = try await makeStore(dir)
        #expect(unlink(checkpointPath(dir)) == 0)
        #expect(mkdir(checkpointPath(dir), 0o700) == 0)
        try writeBytes(checkpointPath(dir) + "/inside", [1, 2, 3])
        let report = try await reopenAndDrain(dir, expecting: pending)
        #expect(report.ignoredCheckpoint?.contains("directory") == true, "\(report)")
        #expect(report.movedCheckpoint == checkpointPath(dir) + ".damaged")
        // What the directory held is kept; a checkpoint file is back in its place.
        #expect(readFile(checkpointPath(dir) + ".damaged/inside") == [1, 2, 3])
        #expect(try await reopenAndDrain(dir, expecting: pending).ignoredCheckpoint == nil)
    }

    @Test("a checkpoint with a valid checksum and ack level 10^9: rebuilt from the log, no task hidden")
    func ackLevelBeyondTheLog() async throws {
        let dir = TemporaryDirectory()
        let pending = try await makeStore(dir)
        try writeBytes(checkpointPath(dir), StoreCheckpoint(ackLevel: 1_000_000_000, controls: [:]).encoded())
        let report = try await reopenAndDrain(dir, expecting: pending)
        #expect(report.ignoredCheckpoint?.contains("beyond the log's end") == true, "\(report)")
        // The same judgement as `spool recover --mode check` makes of it.
        try writeBytes(checkpointPath(dir), StoreCheckpoint(ackLevel: 1_000_000_000, controls: [:]).encoded())
        let assessment = TaskStore.assessCheckpoint(directory: dir.store, logEnd: 40, logClosedCleanly: true)
        #expect(assessment.damage != nil && assessment.ackLevel == 1_000_000_000)
    }

    @Test("a checkpoint ack level beyond the log under .sync is damage even after a crash")
    func ackLevelBeyondTheLogUnderSync() async throws {
        let dir = TemporaryDirectory()
        let configuration = testConfiguration(.sync)
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        var ids: [UInt64] = []
        for i in 0..<5 { ids.append(try await store.add(payload(i), to: "q", kind: .activity)) }
        store.abandon()
        try writeBytes(checkpointPath(dir), StoreCheckpoint(ackLevel: 1_000_000_000, controls: [:]).encoded())
        let reopened = try TaskStore.open(directory: dir.store, configuration: configuration)
        #expect(reopened.recoveryReport.ignoredCheckpoint != nil)
        #expect(try await reopened.drainNow("q", complete: false).map(\.id).sorted() == ids)
        try await reopened.close()
    }

    @Test("a checkpoint that decodes but is damaged keeps its queues' pause state")
    func damagedAckLevelKeepsControls() async throws {
        let dir = TemporaryDirectory()
        let pending = try await makeStore(dir)
        let paused = StoreCheckpoint(ackLevel: 1_000_000_000, controls: [QueueKey(name: "q", kind: .activity): QueueControlState(paused: true)])
        try writeBytes(checkpointPath(dir), paused.encoded())
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration())
        #expect(try await store.poll("q", kind: .activity, timeout: .zero) == nil)  // paused
        try await store.resume("q", kind: .activity)
        #expect(try await store.drainNow("q", complete: false).map(\.id).sorted() == pending)
        try await store.close()
    }

    @Test("compaction with a damaged or too-far checkpoint keeps every pending task")
    func compactionDoesNotTrustADamagedCheckpoint() async throws {
        let dir = TemporaryDirectory()
        // 40 tasks of 8 KiB in 64 KiB segments: most of them in sealed segments, which compaction rewrites.
        let configuration = testConfiguration(segmentBytes: 64 << 10)
        let pending = try await makeStore(dir, configuration: configuration, payloadSize: 8 << 10)
        try writeBytes(checkpointPath(dir), StoreCheckpoint(ackLevel: 1_000_000_000, controls: [:]).encoded())
        _ = try TaskStore.compact(directory: dir.store, configuration: configuration)
        try writeBytes(checkpointPath(dir), Array(repeating: 7, count: 30))
        _ = try TaskStore.compact(directory: dir.store, configuration: configuration)
        _ = try await reopenAndDrain(dir, expecting: pending)
    }

    @Test("the task store refuses an engine's data directory and a log directory, writing nothing")
    func refusesOtherKinds() throws {
        let dir = TemporaryDirectory()
        let engine = dir.path + "/engine"
        #expect(mkdir(engine, 0o700) == 0 && mkdir(engine + "/history", 0o700) == 0)
        try writeBytes(engine + "/checkpoint", Array("SPEC".utf8) + [2, 0, 0, 0, 0, 0, 0, 0])
        let before = fileTree(engine)
        #expect {
            _ = try TaskStore.open(directory: engine, configuration: testConfiguration())
        } throws: { error in
            let error = error as? QueueError
            return error?.code == .invalidArgument && error?.message.contains("is a Spool data directory") == true
                && error?.message.contains("\(engine)/tasks") == true
        }
        #expect(fileTree(engine) == before)
        // A store's own log directory is not a store either.
        let owner = dir.path + "/owner"
        let store = try TaskStore.open(directory: owner, configuration: testConfiguration())
        store.abandon()
        let log = owner + "/log"
        let logBefore = fileTree(log)
        #expect {
            _ = try TaskStore.open(directory: log, configuration: testConfiguration())
        } throws: { error in
            (error as? QueueError)?.message.contains("is a Spool log directory") == true
        }
        #expect(fileTree(log) == logBefore)
    }

    @Test("a store made before markers opens and is marked; a marked store opens as before")
    func storesWithoutMarkerAreAdopted() async throws {
        let dir = TemporaryDirectory()
        let pending = try await makeStore(dir)
        #expect(readFile(dir.store + "/kind") == Array("spool-task-store 1\n".utf8))
        #expect(unlink(dir.store + "/kind") == 0)
        _ = try await reopenAndDrain(dir, expecting: pending)
        #expect(readFile(dir.store + "/kind") == Array("spool-task-store 1\n".utf8))
    }
}

/// Replaces `path` with `bytes`.
private func writeBytes(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    try #require(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    try #require(written == bytes.count)
}
