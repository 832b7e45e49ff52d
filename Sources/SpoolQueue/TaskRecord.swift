import SpoolMatching

/// The records of the queue log (layout in `Docs/queues.md`). All integers little-endian;
/// every record starts with a type byte and a format version byte.
enum RecordType: UInt8 {
    /// A queued task: a new one, a retry of an earlier record, or a dead letter.
    case task = 1
    /// Completed (or expired) task ids.
    case acks = 2
    /// Pause, resume, rate limit or purge of one queue.
    case control = 3
}

let recordFormatVersion: UInt8 = 1

/// A task record: everything needed to deliver the task again after a reopen.
struct TaskRecord: Equatable {
    var kind: TaskQueueKind
    var priority: Int
    /// The attempt the next delivery will be.
    var attempt: Int
    /// When the task was first added, on the store's clock.
    var addedAt: UInt64
    var queue: String
    var payload: [UInt8]
    var fairness: FairnessKey?
    var scheduleToStartDeadline: UInt64?
    /// Not delivered before this instant (a retry's backoff).
    var notBefore: UInt64?
    /// The record this one supersedes (a retry or dead letter of it): reading this record
    /// acknowledges that one.
    var replaces: UInt64?
    /// The id of the first record of this task (for a retry or dead letter).
    var originalID: UInt64?
    /// Set for a dead letter: the last failure's reason.
    var deadLetterReason: String?

    static let fixedBytes = 24

    private struct Flags: OptionSet {
        let rawValue: UInt8
        static let fairness = Flags(rawValue: 1)
        static let deadline = Flags(rawValue: 2)
        static let notBefore = Flags(rawValue: 4)
        static let replaces = Flags(rawValue: 8)
        static let deadLetter = Flags(rawValue: 16)
        static let originalID = Flags(rawValue: 32)
    }

    /// Bytes of the record around the payload (for the size check before an append).
    static func overhead(queue: String, fairness: FairnessKey?) -> Int {
        fixedBytes + queue.utf8.count + 5 * 8 + (fairness.map { 8 + $0.key.utf8.count } ?? 0)
    }

    func encoded() -> [UInt8] {
        var flags: Flags = []
        if fairness != nil { flags.insert(.fairness) }
        if scheduleToStartDeadline != nil { flags.insert(.deadline) }
        if notBefore != nil { flags.insert(.notBefore) }
        if replaces != nil { flags.insert(.replaces) }
        if deadLetterReason != nil { flags.insert(.deadLetter) }
        if originalID != nil { flags.insert(.originalID) }
        var writer = ByteWriter(capacity: Self.overhead(queue: queue, fairness: fairness) + payload.count
                                + (deadLetterReason?.utf8.count ?? 0) + 4)
        writer.u8(RecordType.task.rawValue)
        writer.u8(recordFormatVersion)
        writer.u8(kind.rawValue)
        writer.u8(UInt8(priority))
        writer.u8(flags.rawValue)
        writer.u8(0); writer.u8(0); writer.u8(0)
        writer.u32(UInt32(clamping: attempt))
        writer.u32(UInt32(queue.utf8.count))
        writer.u64(addedAt)
        if let replaces { writer.u64(replaces) }
        if let originalID { writer.u64(originalID) }
        if let scheduleToStartDeadline { writer.u64(scheduleToStartDeadline) }
        if let notBefore { writer.u64(notBefore) }
        if let fairness {
            writer.u32(fairness.weight)
            writer.string32(fairness.key)
        }
        if let deadLetterReason { writer.string32(deadLetterReason) }
        writer.bytes(Array(queue.utf8))
        writer.bytes(payload)
        return writer.buffer
    }

    /// Decodes a task record; nil when the bytes are not one. Without `includingPayload` the
    /// payload is left empty: a replay keeps only where each task is, and copying every payload
    /// out of its record was a tenth of a reopen's time.
    init?(decoding bytes: [UInt8], includingPayload: Bool = true) {
        var reader = ByteReader(bytes)
        guard reader.u8() == RecordType.task.rawValue, reader.u8() == recordFormatVersion,
              let kindByte = reader.u8(), let kind = TaskQueueKind(rawValue: kindByte),
              let priority = reader.u8(), TaskPriority.all.contains(Int(priority)),
              let flagByte = reader.u8(), reader.skip(3),
              let attempt = reader.u32(), let nameLength = reader.u32(), let addedAt = reader.u64()
        else { return nil }
        let flags = Flags(rawValue: flagByte)
        self.kind = kind
        self.priority = Int(priority)
        self.attempt = Int(attempt)
        self.addedAt = addedAt
        if flags.contains(.replaces) { guard let v = reader.u64() else { return nil }; replaces = v }
        if flags.contains(.originalID) { guard let v = reader.u64() else { return nil }; originalID = v }
        if flags.contains(.deadline) { guard let v = reader.u64() else { return nil }; scheduleToStartDeadline = v }
        if flags.contains(.notBefore) { guard let v = reader.u64() else { return nil }; notBefore = v }
        if flags.contains(.fairness) {
            guard let weight = reader.u32(), let key = reader.string32() else { return nil }
            fairness = FairnessKey(key, weight: weight)
        }
        if flags.contains(.deadLetter) { guard let v = reader.string32() else { return nil }; deadLetterReason = v }
        guard let name = reader.string(Int(nameLength)) else { return nil }
        queue = name
        payload = includingPayload ? reader.rest() : []
    }

    init(kind: TaskQueueKind, priority: Int, attempt: Int, addedAt: UInt64, queue: String, payload: [UInt8],
         fairness: FairnessKey? = nil, scheduleToStartDeadline: UInt64? = nil) {
        self.kind = kind
        self.priority = priority
        self.attempt = attempt
        self.addedAt = addedAt
        self.queue = queue
        self.payload = payload
        self.fairness = fairness
        self.scheduleToStartDeadline = scheduleToStartDeadline
    }
}

/// Ids acknowledged (completed, or dropped as expired) since the previous acks record.
enum AcksRecord {
    static func encode(_ ids: [UInt64]) -> [UInt8] {
        var writer = ByteWriter(capacity: 8 + 8 * ids.count)
        writer.u8(RecordType.acks.rawValue)
        writer.u8(recordFormatVersion)
        writer.u8(0); writer.u8(0)
        writer.u32(UInt32(ids.count))
        for id in ids { writer.u64(id) }
        return writer.buffer
    }

    static func decode(_ bytes: [UInt8]) -> [UInt64]? {
        var reader = ByteReader(bytes)
        guard reader.u8() == RecordType.acks.rawValue, reader.u8() == recordFormatVersion, reader.skip(2),
              let count = reader.u32(), bytes.count == 8 + 8 * Int(count) else { return nil }
        var ids: [UInt64] = []
        ids.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let id = reader.u64() else { return nil }
            ids.append(id)
        }
        return ids
    }
}

/// A change to one queue's control state.
enum ControlOperation: Equatable {
    case pause
    case resume
    case setRateLimit(RateLimit?)
    /// Drops every queued task of the queue whose id is below the purge record's own offset,
    /// except `inFlight` (tasks delivered at the time, which stay in flight). With
    /// `deadLetters`, drops the queue's dead letters too.
    case purge(inFlight: [UInt64], deadLetters: Bool)
}

struct ControlRecord: Equatable {
    var kind: TaskQueueKind
    var queue: String
    var operation: ControlOperation

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 32 + queue.utf8.count)
        writer.u8(RecordType.control.rawValue)
        writer.u8(recordFormatVersion)
        writer.u8(kind.rawValue)
        switch operation {
        case .pause: writer.u8(1)
        case .resume: writer.u8(2)
        case .setRateLimit(let limit?):
            writer.u8(3)
            writer.u64(limit.perSecond.bitPattern)
            writer.u64(UInt64(limit.burst))
        case .setRateLimit(nil): writer.u8(4)
        case .purge(let inFlight, let deadLetters):
            writer.u8(5)
            writer.u8(deadLetters ? 1 : 0)
            writer.u32(UInt32(inFlight.count))
            for id in inFlight { writer.u64(id) }
        }
        writer.bytes(Array(queue.utf8))
        return writer.buffer
    }

    init(kind: TaskQueueKind, queue: String, operation: ControlOperation) {
        self.kind = kind
        self.queue = queue
        self.operation = operation
    }

    init?(decoding bytes: [UInt8]) {
        var reader = ByteReader(bytes)
        guard reader.u8() == RecordType.control.rawValue, reader.u8() == recordFormatVersion,
              let kindByte = reader.u8(), let kind = TaskQueueKind(rawValue: kindByte), let op = reader.u8() else { return nil }
        self.kind = kind
        switch op {
        case 1: operation = .pause
        case 2: operation = .resume
        case 3:
            guard let rate = reader.u64(), let burst = reader.u64() else { return nil }
            operation = .setRateLimit(RateLimit(perSecond: Double(bitPattern: rate), burst: Int(clamping: burst)))
        case 4: operation = .setRateLimit(nil)
        case 5:
            guard let dead = reader.u8(), let count = reader.u32(), Int(count) <= bytes.count / 8 else { return nil }
            var ids: [UInt64] = []
            for _ in 0..<count { guard let id = reader.u64() else { return nil }; ids.append(id) }
            operation = .purge(inFlight: ids, deadLetters: dead == 1)
        default: return nil
        }
        queue = String(decoding: reader.rest(), as: UTF8.self)
        guard !queue.isEmpty else { return nil }
    }
}

/// Appends little-endian fields to a byte array.
struct ByteWriter {
    var buffer: [UInt8] = []

    init(capacity: Int) { buffer.reserveCapacity(capacity) }

    mutating func u8(_ value: UInt8) { buffer.append(value) }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) } }
    mutating func bytes(_ value: [UInt8]) { buffer.append(contentsOf: value) }
    mutating func string32(_ value: String) {
        u32(UInt32(value.utf8.count))
        buffer.append(contentsOf: value.utf8)
    }
}

/// Reads little-endian fields; every read returns nil past the end instead of trapping.
struct ByteReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func u8() -> UInt8? {
        guard position < bytes.count else { return nil }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func skip(_ count: Int) -> Bool {
        guard bytes.count - position >= count else { return false }
        position += count
        return true
    }

    mutating func u32() -> UInt32? {
        guard bytes.count - position >= 4 else { return nil }
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(bytes[position + i]) << (8 * i) }
        position += 4
        return value
    }

    mutating func u64() -> UInt64? {
        guard bytes.count - position >= 8 else { return nil }
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(bytes[position + i]) << (8 * i) }
        position += 8
        return value
    }

    /// `count` bytes as UTF-8 text, decoded in place (no intermediate array).
    mutating func string(_ count: Int) -> String? {
        guard count >= 0, bytes.count - position >= count else { return nil }
        defer { position += count }
        return String(decoding: bytes[position..<position + count], as: UTF8.self)
    }

    mutating func string32() -> String? {
        guard let count = u32() else { return nil }
        return string(Int(count))
    }

    mutating func rest() -> [UInt8] {
        defer { position = bytes.count }
        return Array(bytes[position...])
    }
}
