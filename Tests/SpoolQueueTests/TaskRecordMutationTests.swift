#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// "A run of a few seconds per target in the test suite" (issue 6 item 4): the libFuzzer target
/// `FuzzQueueRecord` (Tools/fuzz) is not built by `swift test`, so this feeds a fixed number of
/// seeded mutations of real encodings through the queue log's record decoders and the store's
/// checkpoint decoder. Each input must decode or be rejected (nil; a trap fails the run) and a
/// decoded value must round-trip. Half the inputs get the right type and version bytes (records)
/// or magic, version and CRC (checkpoint), so the field parsing is reached rather than the guard.
@Suite struct TaskRecordMutationTests {
    static let seed = Mutator.seed(default: 20_261_125)

    static func taskRecords() -> [TaskRecord] {
        var retry = TaskRecord(kind: .activity, priority: 2, attempt: 3, addedAt: 1_700_000_000, queue: "payments", payload: [1, 2, 3],
                               fairness: FairnessKey("tenant-7", weight: 4), scheduleToStartDeadline: 1_700_000_500)
        retry.notBefore = 1_700_000_100
        retry.replaces = 17
        retry.originalID = 3
        var dead = TaskRecord(kind: .workflow, priority: 5, attempt: 9, addedAt: 5, queue: "q", payload: [])
        dead.deadLetterReason = "too many attempts"
        dead.originalID = 1
        return [TaskRecord(kind: .workflow, priority: 1, attempt: 1, addedAt: 0, queue: "orders", payload: Array("hello".utf8)), retry, dead]
    }

    static let controlRecords: [ControlRecord] = [
        ControlRecord(kind: .workflow, queue: "orders", operation: .pause),
        ControlRecord(kind: .activity, queue: "payments", operation: .resume),
        ControlRecord(kind: .activity, queue: "payments", operation: .setRateLimit(RateLimit(perSecond: 12.5, burst: 3))),
        ControlRecord(kind: .workflow, queue: "orders", operation: .setRateLimit(nil)),
        ControlRecord(kind: .workflow, queue: "orders", operation: .purge(inFlight: [4, 9, 200], deadLetters: true)),
    ]

    static let checkpoint = StoreCheckpoint(ackLevel: 1234, controls: [
        QueueKey(name: "orders", kind: .workflow): QueueControlState(paused: true),
        QueueKey(name: "payments", kind: .activity): QueueControlState(paused: false, rateLimit: RateLimit(perSecond: 0.5, burst: 2)),
    ])

    /// Magic `SQCP`, version 1, three zero bytes, `body`, CRC32C.
    static func sealed(_ body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0x53, 0x51, 0x43, 0x50, 1, 0, 0, 0] + body
        let crc = CRC32C.checksum(bytes)
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    static func withTypeAndVersion(_ bytes: [UInt8], _ type: RecordType) -> [UInt8] {
        guard bytes.count >= 2 else { return bytes }
        var bytes = bytes
        bytes[0] = type.rawValue
        bytes[1] = recordFormatVersion
        return bytes
    }

    @Test func unmutatedEncodingsRoundTrip() {
        for record in Self.taskRecords() { #expect(TaskRecord(decoding: record.encoded()) == record) }
        #expect(AcksRecord.decode(AcksRecord.encode([1, 2, 1 << 40])) == [1, 2, 1 << 40])
        for record in Self.controlRecords { #expect(ControlRecord(decoding: record.encoded()) == record) }
        #expect(StoreCheckpoint.decode(Self.checkpoint.encoded()) == Self.checkpoint)
        #expect(StoreCheckpoint.decode(Self.sealed(Array(Self.checkpoint.encoded().dropFirst(8).dropLast(4)))) == Self.checkpoint)
    }

    @Test func mutatedTaskRecordsDecodeOrAreRejected() {
        let originals = Self.taskRecords().map { $0.encoded() }
        var rejected = 0
        for i in 0..<30_000 {
            var mutator = Mutator(seed: Self.seed, input: i)
            var bytes = mutator.mutate(originals[i % originals.count])
            if i % 2 == 0 { bytes = Self.withTypeAndVersion(bytes, .task) }
            guard let record = TaskRecord(decoding: bytes) else { rejected += 1; continue }
            #expect(TaskRecord(decoding: record.encoded()) == record, "seed \(Self.seed) input \(i): the task record does not round-trip")
        }
        #expect(rejected > 0 && rejected < 30_000, "seed \(Self.seed): \(rejected) of 30000 mutations rejected")
    }

    @Test func mutatedAcksAndControlRecordsDecodeOrAreRejected() {
        let acks = AcksRecord.encode([1, 2, 3, 1 << 40])
        let controls = Self.controlRecords.map { $0.encoded() }
        for i in 0..<30_000 {
            var mutator = Mutator(seed: Self.seed, input: i)
            if i % 3 == 0 {
                var bytes = mutator.mutate(acks)
                if i % 2 == 0 { bytes = Self.withTypeAndVersion(bytes, .acks) }
                guard let ids = AcksRecord.decode(bytes) else { continue }
                #expect(AcksRecord.decode(AcksRecord.encode(ids)) == ids, "seed \(Self.seed) input \(i): the acks record does not round-trip")
            } else {
                var bytes = mutator.mutate(controls[i % controls.count])
                if i % 2 == 0 { bytes = Self.withTypeAndVersion(bytes, .control) }
                guard let record = ControlRecord(decoding: bytes) else { continue }
                let again = ControlRecord(decoding: record.encoded())
                // A NaN rate is not == itself: compare the bytes then.
                #expect(again == record || again?.encoded() == record.encoded(),
                        "seed \(Self.seed) input \(i): the control record does not round-trip")
            }
        }
    }

    @Test func mutatedCheckpointsDecodeOrAreRejected() {
        let original = Self.checkpoint.encoded()
        let body = Array(original.dropFirst(8).dropLast(4))
        var rejected = 0
        for i in 0..<30_000 {
            var mutator = Mutator(seed: Self.seed, input: i)
            let bytes = i % 2 == 0 ? Self.sealed(mutator.mutate(body)) : mutator.mutate(original)
            guard let checkpoint = StoreCheckpoint.decode(bytes) else { rejected += 1; continue }
            let again = StoreCheckpoint.decode(checkpoint.encoded())
            #expect(again == checkpoint || again?.encoded() == checkpoint.encoded(),
                    "seed \(Self.seed) input \(i): the checkpoint does not round-trip")
        }
        #expect(rejected > 0 && rejected < 30_000, "seed \(Self.seed): \(rejected) of 30000 mutations rejected")
    }
}

