import SpoolLog
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
        var writer = BinaryWriter(capacity: Self.overhead(queue: queue, fairness: fairness) + payload.count
                                + (deadLetterReason?.utf8.count ?? 0) + 4)
        writer.byte(RecordType.task.rawValue)
        writer.byte(recordFormatVersion)
        writer.byte(kind.rawValue)
        writer.byte(UInt8(priority))
        writer.byte(flags.rawValue)
        writer.byte(0); writer.byte(0); writer.byte(0)
        writer.fixed32(UInt32(clamping: attempt))
        writer.fixed32(UInt32(queue.utf8.count))
        writer.fixed64(addedAt)
        if let replaces { writer.fixed64(replaces) }
        if let originalID { writer.fixed64(originalID) }
        if let scheduleToStartDeadline { writer.fixed64(scheduleToStartDeadline) }
        if let notBefore { writer.fixed64(notBefore) }
        if let fairness {
            writer.fixed32(fairness.weight)
            writer.fixed32PrefixedString(fairness.key)
        }
        if let deadLetterReason { writer.fixed32PrefixedString(deadLetterReason) }
        writer.raw(Array(queue.utf8))
        writer.raw(payload)
        return writer.bytes
    }

    /// Decodes a task record; nil when the bytes are not one. Without `includingPayload` the
    /// payload is left empty: a replay keeps only where each task is, and copying every payload
    /// out of its record was a tenth of a reopen's time.
    init?(decoding bytes: [UInt8], includingPayload: Bool = true) {
        guard let record = try? Self.decode(bytes, includingPayload: includingPayload) else { return nil }
        self = record
    }

    /// ``init(decoding:includingPayload:)`` with the reason.
    /// - Throws: ``QueueError/Code/corruptRecord`` saying what is wrong where.
    static func decode(_ bytes: [UInt8], includingPayload: Bool) throws(QueueError) -> TaskRecord {
        var reader = BinaryReader<QueueError>(bytes, context: "task record")
        guard try reader.byte() == RecordType.task.rawValue, try reader.byte() == recordFormatVersion else { throw reader.corrupt("not a task record") }
        let kind = try reader.enumeration(TaskQueueKind.self)
        let priority = try reader.byte()
        guard TaskPriority.all.contains(Int(priority)) else { throw reader.corrupt("priority \(priority) is out of range") }
        let flags = Flags(rawValue: try reader.byte())
        try reader.skip(3)
        let attempt = try reader.fixed32()
        let nameLength = try reader.fixed32()
        var record = TaskRecord(kind: kind, priority: Int(priority), attempt: Int(attempt), addedAt: try reader.fixed64(), queue: "", payload: [])
        if flags.contains(.replaces) { record.replaces = try reader.fixed64() }
        if flags.contains(.originalID) { record.originalID = try reader.fixed64() }
        if flags.contains(.deadline) { record.scheduleToStartDeadline = try reader.fixed64() }
        if flags.contains(.notBefore) { record.notBefore = try reader.fixed64() }
        if flags.contains(.fairness) {
            let weight = try reader.fixed32()
            record.fairness = FairnessKey(try reader.fixed32PrefixedString(), weight: weight)
        }
        if flags.contains(.deadLetter) { record.deadLetterReason = try reader.fixed32PrefixedString() }
        record.queue = try reader.string(byteCount: Int(nameLength))
        record.payload = includingPayload ? reader.rest() : []
        return record
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
        var writer = BinaryWriter(capacity: 8 + 8 * ids.count)
        writer.byte(RecordType.acks.rawValue)
        writer.byte(recordFormatVersion)
        writer.byte(0); writer.byte(0)
        writer.fixed32(UInt32(ids.count))
        for id in ids { writer.fixed64(id) }
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) -> [UInt64]? {
        var reader = BinaryReader<QueueError>(bytes, context: "acks record")
        do throws(QueueError) {
            guard try reader.byte() == RecordType.acks.rawValue, try reader.byte() == recordFormatVersion else { return nil }
            try reader.skip(2)
            let count = try reader.fixed32()
            guard bytes.count == 8 + 8 * Int(count) else { return nil }
            var ids: [UInt64] = []
            ids.reserveCapacity(Int(count))
            for _ in 0..<count { ids.append(try reader.fixed64()) }
            return ids
        } catch {
            return nil
        }
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
        var writer = BinaryWriter(capacity: 32 + queue.utf8.count)
        writer.byte(RecordType.control.rawValue)
        writer.byte(recordFormatVersion)
        writer.byte(kind.rawValue)
        switch operation {
        case .pause: writer.byte(1)
        case .resume: writer.byte(2)
        case .setRateLimit(let limit?):
            writer.byte(3)
            writer.fixed64(limit.perSecond.bitPattern)
            writer.fixed64(UInt64(limit.burst))
        case .setRateLimit(nil): writer.byte(4)
        case .purge(let inFlight, let deadLetters):
            writer.byte(5)
            writer.byte(deadLetters ? 1 : 0)
            writer.fixed32(UInt32(inFlight.count))
            for id in inFlight { writer.fixed64(id) }
        }
        writer.raw(Array(queue.utf8))
        return writer.bytes
    }

    init(kind: TaskQueueKind, queue: String, operation: ControlOperation) {
        self.kind = kind
        self.queue = queue
        self.operation = operation
    }

    init?(decoding bytes: [UInt8]) {
        var reader = BinaryReader<QueueError>(bytes, context: "control record")
        do throws(QueueError) {
            guard try reader.byte() == RecordType.control.rawValue, try reader.byte() == recordFormatVersion else { return nil }
            guard let kind = TaskQueueKind(rawValue: try reader.byte()) else { return nil }
            self.kind = kind
            switch try reader.byte() {
            case 1: operation = .pause
            case 2: operation = .resume
            case 3:
                let rate = try reader.fixed64()
                let burst = try reader.fixed64()
                operation = .setRateLimit(RateLimit(perSecond: Double(bitPattern: rate), burst: Int(clamping: burst)))
            case 4: operation = .setRateLimit(nil)
            case 5:
                let dead = try reader.byte()
                let count = try reader.fixed32()
                guard Int(count) <= bytes.count / 8 else { return nil }
                var ids: [UInt64] = []
                for _ in 0..<count { ids.append(try reader.fixed64()) }
                operation = .purge(inFlight: ids, deadLetters: dead == 1)
            default: return nil
            }
        } catch {
            return nil
        }
        queue = String(decoding: reader.rest(), as: UTF8.self)
        guard !queue.isEmpty else { return nil }
    }
}

/// What a replay needs of a task record, read where the record lies (a log scan's borrowed view):
/// no copy of the name or payload, no allocation.
struct TaskRecordHead {
    var kind: TaskQueueKind
    var priority: Int
    var notBefore: UInt64?
    var replaces: UInt64?
    var isDeadLetter: Bool
    /// The queue name's bytes, inside the viewed record.
    var name: UnsafeRawBufferPointer

    /// Reads the head of the task record in `bytes`; nil exactly when
    /// ``TaskRecord/init(decoding:includingPayload:)`` refuses the bytes (checked by
    /// `TaskRecordHeadTests`): the type and version bytes, the kind, the priority's range, and
    /// every length staying inside the record.
    init?(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        guard count >= TaskRecord.fixedBytes, bytes[0] == RecordType.task.rawValue, bytes[1] == recordFormatVersion,
              let kind = TaskQueueKind(rawValue: bytes[2]), TaskPriority.all.contains(Int(bytes[3])) else { return nil }
        self.kind = kind
        priority = Int(bytes[3])
        let flags = bytes[4]
        let nameLength = Int(bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian)
        var position = TaskRecord.fixedBytes
        @inline(__always) func fixed64(_ position: inout Int) -> UInt64? {
            guard count - position >= 8 else { return nil }
            defer { position += 8 }
            return bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self).littleEndian
        }
        @inline(__always) func skipString(_ position: inout Int) -> Bool {
            guard count - position >= 4 else { return false }
            let length = Int(bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self).littleEndian)
            position += 4
            guard count - position >= length else { return false }
            position += length
            return true
        }
        replaces = nil
        notBefore = nil
        // The flags' order on disk: replaces 8, originalID 32, deadline 2, notBefore 4, fairness 1, deadLetter 16.
        if flags & 8 != 0 { guard let value = fixed64(&position) else { return nil }; replaces = value }
        if flags & 32 != 0 { guard fixed64(&position) != nil else { return nil } }
        if flags & 2 != 0 { guard fixed64(&position) != nil else { return nil } }
        if flags & 4 != 0 { guard let value = fixed64(&position) else { return nil }; notBefore = value }
        if flags & 1 != 0 {
            guard count - position >= 4 else { return nil }
            position += 4
            guard skipString(&position) else { return nil }
        }
        isDeadLetter = flags & 16 != 0
        if isDeadLetter { guard skipString(&position) else { return nil } }
        guard count - position >= nameLength else { return nil }
        name = UnsafeRawBufferPointer(rebasing: bytes[position..<position + nameLength])
    }
}

extension AcksRecord {
    /// Calls `body` with each id of the acks record in `bytes` (a borrowed view); false, having
    /// called it for none, exactly when ``decode(_:)`` returns nil.
    static func forEachID(in bytes: UnsafeRawBufferPointer, _ body: (UInt64) -> Void) -> Bool {
        guard bytes.count >= 8, bytes[0] == RecordType.acks.rawValue, bytes[1] == recordFormatVersion else { return false }
        let count = Int(bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian)
        guard bytes.count == 8 + 8 * count else { return false }
        for i in 0..<count { body(bytes.loadUnaligned(fromByteOffset: 8 + 8 * i, as: UInt64.self).littleEndian) }
        return true
    }
}
