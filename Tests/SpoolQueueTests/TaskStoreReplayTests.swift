#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolLogTesting
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// Issue 23, point 3: the replay reads records in place from the log's scan and looks queues up
/// by their name's bytes (hashing a name only when it changes from one record to the next).
/// Whatever the interleaving of queues, a reopen restores exactly the tasks not acknowledged, in
/// order per queue and priority, with their bytes; a record that does not decode, or a batch
/// that fails its checksum, still refuses the open.
@Suite struct TaskStoreReplayTests {
    // MARK: Reading a record in place agrees with the decoder

    /// `TaskRecordHead` accepts exactly the bytes `TaskRecord(decoding:includingPayload:)`
    /// accepts, and reads the same fields: on every encoding flag, every truncation, and seeded
    /// mutations.
    @Test func recordHeadAgreesWithTheDecoder() {
        var inputs: [[UInt8]] = []
        for record in TaskRecordMutationTests.taskRecords() {
            let bytes = record.encoded()
            for cut in 0...bytes.count { inputs.append(Array(bytes[0..<cut])) }
        }
        let originals = TaskRecordMutationTests.taskRecords().map { $0.encoded() }
        for i in 0..<30_000 {
            var mutator = Mutator(seed: TaskRecordMutationTests.seed, input: i)
            var bytes = mutator.mutate(originals[i % originals.count])
            if i % 2 == 0 { bytes = TaskRecordMutationTests.withTypeAndVersion(bytes, .task) }
            inputs.append(bytes)
        }
        var accepted = 0
        for (i, bytes) in inputs.enumerated() {
            let decoded = TaskRecord(decoding: bytes, includingPayload: false)
            let head = bytes.withUnsafeBytes { raw in
                TaskRecordHead(raw).map { ($0.kind, $0.priority, $0.notBefore, $0.replaces, $0.isDeadLetter, String(decoding: $0.name, as: UTF8.self)) }
            }
            #expect((head == nil) == (decoded == nil), "input \(i): the head \(head == nil ? "refused" : "accepted") what the decoder did not")
            guard let head, let decoded else { continue }
            accepted += 1
            #expect(head.0 == decoded.kind && head.1 == decoded.priority && head.2 == decoded.notBefore && head.3 == decoded.replaces
                    && head.4 == (decoded.deadLetterReason != nil) && head.5 == decoded.queue, "input \(i): other fields")
        }
        #expect(accepted > 3 && accepted < inputs.count)
    }

    @Test func acksInPlaceAgreeWithTheDecoder() {
        let original = AcksRecord.encode([1, 2, 1 << 40, 77])
        var inputs = (0...original.count).map { Array(original[0..<$0]) }
        for i in 0..<5_000 {
            var mutator = Mutator(seed: TaskRecordMutationTests.seed, input: i)
            var bytes = mutator.mutate(original)
            if i % 2 == 0 { bytes = TaskRecordMutationTests.withTypeAndVersion(bytes, .acks) }
            inputs.append(bytes)
        }
        for (i, bytes) in inputs.enumerated() {
            var ids: [UInt64] = []
            let ok = bytes.withUnsafeBytes { AcksRecord.forEachID(in: $0) { ids.append($0) } }
            let decoded = AcksRecord.decode(bytes)
            #expect(ok == (decoded != nil), "input \(i)")
            #expect(ids == (decoded ?? []), "input \(i)")
        }
    }

    // MARK: Many queues, interleaved

    /// Names that share prefixes and lengths (the lookup compares bytes, not just hashes),
    /// multi-byte UTF-8, names of 1 to 40 bytes, and each name as both a workflow and an activity
    /// queue: 2 × 45 queues, more than the lookup table's first size.
    static let names: [String] = (0..<40).map { "q-aaaaaaaa\($0)" } + ["x", "é", "orders/eu-west émoji 🙂", String(repeating: "n", count: 40), "q-aaaaaaaa"]

    /// Tasks added in runs of 1 to 9 for the same queue, switching queues between runs, at mixed
    /// priorities; about a third of them completed (others delivered and left in flight) before a
    /// close. The reopen gives every queue exactly its tasks not completed, in priority order and
    /// first in first out within a priority, with their bytes.
    @Test(arguments: [false, true]) func interleavedQueuesReopenWithExactlyTheirUnacknowledgedTasks(smallSegments: Bool) async throws {
        let dir = TemporaryDirectory()
        let configuration = testConfiguration(.none, segmentBytes: smallSegments ? 64 << 10 : 128 << 20)
        var rng = SplitMix64(seed: 23)
        var added: [QueueKey: [(index: Int, priority: Int)]] = [:]
        var completed = Set<Int>()
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: configuration)
            var index = 0
            while index < 4_000 {
                let key = QueueKey(name: Self.names[Int(rng.next() % UInt64(Self.names.count))], kind: rng.next() % 2 == 0 ? .activity : .workflow)
                for _ in 0..<(1 + Int(rng.next() % 9)) {
                    let priority = 1 + Int(rng.next() % 5)
                    _ = try await store.add(payload(index, size: 16 + index % 50), to: key.name, kind: key.kind, options: TaskOptions(priority: priority))
                    added[key, default: []].append((index, priority))
                    index += 1
                }
            }
            // Take some tasks of every other queue; complete those whose index is a multiple of 3.
            for (n, key) in added.keys.sorted(by: { ($0.name, $0.kind.rawValue) < ($1.name, $1.kind.rawValue) }).enumerated() where n % 2 == 0 {
                for _ in 0..<(added[key]!.count / 2) {
                    guard let task = try await store.poll(key.name, kind: key.kind, timeout: .zero) else { break }
                    let number = try #require(Self.index(of: task.payload))
                    if number % 3 == 0 {
                        try store.complete(task.id)
                        completed.insert(number)
                    }
                }
            }
            #expect(!completed.isEmpty)
            try await store.close()
        }
        let reopened = try TaskStore.open(directory: dir.store, configuration: configuration)
        var restored = 0
        for (key, tasks) in added {
            let expected = (1...5).flatMap { priority in tasks.filter { $0.priority == priority && !completed.contains($0.index) }.map(\.index) }
            let delivered = try await reopened.drainNow(key.name, kind: key.kind)
            #expect(delivered.map { Self.index(of: $0.payload) } == expected, "\(key.kind) queue \(key.name.debugDescription)")
            #expect(delivered.allSatisfy { Self.index(of: $0.payload).map { payload($0, size: 16 + $0 % 50) } == $0.payload })
            restored += delivered.count
        }
        #expect(restored == 4_000 - completed.count)
        try await reopened.close()
    }

    /// The task number behind `payload(_:size:)` bytes (the payloads are distinct per number).
    static let payloadIndex: [[UInt8]: Int] = {
        var table: [[UInt8]: Int] = [:]
        for i in 0..<4_000 { table[payload(i, size: 16 + i % 50)] = i }
        return table
    }()

    static func index(of bytes: [UInt8]) -> Int? { payloadIndex[bytes] }

    /// A queue paused and one rate limited among many interleaved queues keep their control state
    /// across two reopens (the second one from the checkpoint), with their tasks.
    @Test func controlRecordsAmongInterleavedQueues() async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
            for i in 0..<300 { _ = try await store.add(payload(i), to: Self.names[i % 7], kind: i % 2 == 0 ? .activity : .workflow) }
            try await store.pause(Self.names[3], kind: .workflow)
            for i in 300..<400 { _ = try await store.add(payload(i), to: Self.names[i % 7], kind: i % 2 == 0 ? .activity : .workflow) }
            try await store.close()
        }
        for _ in 0..<2 {
            let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
            #expect(try store.describe(Self.names[3], kind: .workflow).isPaused)
            #expect(try store.describe(Self.names[3], kind: .activity).isPaused == false)
            #expect(try await store.poll(Self.names[3], kind: .workflow, timeout: .zero) == nil)
            let expected = (0..<400).filter { $0 % 7 == 3 && $0 % 2 == 1 }.count
            #expect(try store.describe(Self.names[3], kind: .workflow).backlogCount == expected)
            try await store.close()
        }
    }

    // MARK: Damage in the middle of a run of one queue

    enum Damage: String, CaseIterable, Sendable {
        case priorityOutOfRange, nameRunsPastTheEnd, unknownType, acksOfTheWrongLength
    }

    /// 20 tasks of queue "q", one bad record, 5 more tasks of "q" written straight to the log: the
    /// reopen refuses with `corruptRecord` naming the bad record's offset, as before the replay read
    /// records in place.
    @Test(arguments: Damage.allCases) func anUndecodableRecordInARunRefusesTheOpen(damage: Damage) async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
            for i in 0..<20 { _ = try await store.add(payload(i), to: "q", kind: .activity) }
            try await store.close()
        }
        let logPath = dir.store + "/" + TaskStore.logSubdirectory
        let log = try Log.open(directory: logPath, configuration: testConfiguration(.sync).log)
        var bad = TaskRecord(kind: .activity, priority: 3, attempt: 1, addedAt: 1, queue: "q", payload: payload(99)).encoded()
        switch damage {
        case .priorityOutOfRange: bad[3] = 6
        case .nameRunsPastTheEnd: bad = Array(bad[0..<TaskRecord.fixedBytes])  // the name's 1 byte is missing
        case .unknownType: bad[0] = 9
        case .acksOfTheWrongLength: bad = Array(AcksRecord.encode([1, 2]).dropLast())
        }
        let badOffset = try await log.append(bad)
        for i in 20..<25 {
            _ = try await log.append(TaskRecord(kind: .activity, priority: 3, attempt: 1, addedAt: 1, queue: "q", payload: payload(i)).encoded())
        }
        try log.close()
        do {
            _ = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
            Issue.record("the store opened over a bad record")
        } catch {
            #expect(error.code == .corruptRecord)
            #expect(error.taskID == badOffset)
            #expect(error.message.contains("offset \(badOffset)"))
        }
    }

    /// A bit flipped inside a batch of a sealed segment, among tasks of one queue: the reopen
    /// refuses with the log's `corruptBatch` (what `spool recover` repairs) rather than restoring
    /// the tasks around it and losing the batch's silently.
    @Test func aChecksumFailureInARunRefusesTheOpen() async throws {
        let dir = TemporaryDirectory()
        let configuration = testConfiguration(.none, segmentBytes: 64 << 10)
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: configuration)
            for i in 0..<2_000 { _ = try await store.add(payload(i, size: 100), to: "q", kind: .activity) }
            try await store.close()
        }
        let logPath = dir.store + "/" + TaskStore.logSubdirectory
        let segment = logPath + "/" + String(repeating: "0", count: 20) + ".log"
        let size = byteSize(segment)
        try #require(size > 4096 && fileNames(logPath).filter { $0.hasSuffix(".log") }.count >= 3)
        flipByte(segment, at: size / 2)
        do {
            _ = try TaskStore.open(directory: dir.store, configuration: configuration)
            Issue.record("the store opened over a damaged batch")
        } catch {
            #expect(error.code == .log)
            let underlying = error.underlying as? LogError
            #expect(underlying?.code == .corruptBatch, "\(error)")
            #expect(underlying?.path == segment)
        }
    }
}

func byteSize(_ path: String) -> Int {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_size) : -1
}

/// Inverts every bit of one byte of an existing file.
func flipByte(_ path: String, at position: Int) {
    let fd = open(path, O_RDWR)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    var byte: UInt8 = 0
    precondition(pread(fd, &byte, 1, off_t(position)) == 1)
    byte ^= 0xFF
    precondition(pwrite(fd, &byte, 1, off_t(position)) == 1)
}
