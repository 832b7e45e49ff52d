@testable import SpoolQueue
import SpoolLog
import SpoolMatching

/// Any bytes as one of the task store's encodings, picked by the first byte (`selector % 4`):
/// 0 a task record, 1 an acks record, 2 a control record (the queue log's three record types,
/// `TaskRecord(decoding:)`, `AcksRecord.decode`, `ControlRecord(decoding:)`), 3 the store's
/// `checkpoint` file (`StoreCheckpoint.decode`). Each returns a value or nil, never traps. When
/// `selector & 0x80` is set the guard is fixed up so that the field parsing is reached: the
/// record's type and version bytes, or the checkpoint's magic, version and CRC32C. A decoded
/// value must round-trip: `decode(encode(x))` gives `x` back (or, where a NaN rate makes `==`
/// too strict, the same bytes).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQueueRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let selector = data[0]
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let fixUp = selector & 0x80 != 0
    let type: [RecordType] = [.task, .acks, .control]
    if fixUp && selector % 4 < 3 && bytes.count >= 2 {
        bytes[0] = type[Int(selector % 4)].rawValue
        bytes[1] = recordFormatVersion
    }
    switch selector % 4 {
    case 0:
        guard let record = TaskRecord(decoding: bytes) else { return 0 }
        precondition(TaskRecord(decoding: record.encoded()) == record, "a task record does not round-trip")
    case 1:
        guard let ids = AcksRecord.decode(bytes) else { return 0 }
        precondition(AcksRecord.decode(AcksRecord.encode(ids)) == ids, "an acks record does not round-trip")
    case 2:
        guard let record = ControlRecord(decoding: bytes) else { return 0 }
        let again = ControlRecord(decoding: record.encoded())
        precondition(again == record || again?.encoded() == record.encoded(), "a control record does not round-trip")
    default:
        if fixUp { bytes = QueueFuzzSeeds.sealedCheckpoint(body: bytes) }
        guard let checkpoint = StoreCheckpoint.decode(bytes) else { return 0 }
        let again = StoreCheckpoint.decode(checkpoint.encoded())
        precondition(again == checkpoint || again?.encoded() == checkpoint.encoded(), "a checkpoint does not round-trip")
    }
    return 0
}

/// Real encodings for the initial corpus (`SPOOL_FUZZ_WRITE_SEEDS=DIR`), and the checkpoint fix-up.
enum QueueFuzzSeeds {
    /// Magic `SQCP`, version 1, three zero bytes, `body`, CRC32C: a checkpoint whose guard passes.
    static func sealedCheckpoint(body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0x53, 0x51, 0x43, 0x50, 1, 0, 0, 0] + body
        let crc = CRC32C.checksum(bytes)
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    static func seeds() -> [[UInt8]] {
        var retry = TaskRecord(kind: .activity, priority: 2, attempt: 3, addedAt: 1_700_000_000, queue: "payments", payload: [1, 2, 3],
                               fairness: FairnessKey("tenant-7", weight: 4), scheduleToStartDeadline: 1_700_000_500)
        retry.notBefore = 1_700_000_100
        retry.replaces = 17
        retry.originalID = 3
        var dead = TaskRecord(kind: .workflow, priority: 5, attempt: 9, addedAt: 5, queue: "q", payload: [])
        dead.deadLetterReason = "too many attempts"
        dead.originalID = 1
        let plain = TaskRecord(kind: .workflow, priority: 1, attempt: 1, addedAt: 0, queue: "orders", payload: Array("hello".utf8))
        let controls: [ControlRecord] = [
            ControlRecord(kind: .workflow, queue: "orders", operation: .pause),
            ControlRecord(kind: .activity, queue: "payments", operation: .resume),
            ControlRecord(kind: .activity, queue: "payments", operation: .setRateLimit(RateLimit(perSecond: 12.5, burst: 3))),
            ControlRecord(kind: .workflow, queue: "orders", operation: .setRateLimit(nil)),
            ControlRecord(kind: .workflow, queue: "orders", operation: .purge(inFlight: [4, 9, 200], deadLetters: true)),
        ]
        let checkpoint = StoreCheckpoint(ackLevel: 1234, controls: [
            QueueKey(name: "orders", kind: .workflow): QueueControlState(paused: true),
            QueueKey(name: "payments", kind: .activity): QueueControlState(paused: false, rateLimit: RateLimit(perSecond: 0.5, burst: 2)),
        ])
        return [[0] + plain.encoded(), [0] + retry.encoded(), [0] + dead.encoded(),
                [1] + AcksRecord.encode([1, 2, 3, 1 << 40]), [1] + AcksRecord.encode([])]
            + controls.map { [2] + $0.encoded() }
            + [[3] + checkpoint.encoded(), [0x83] + Array(checkpoint.encoded().dropFirst(8).dropLast(4))]
    }
}
