import SpoolLogTesting
import SpoolLog

/// The torture workload's records (``SelfDescribingRecord``), at most about 4 KB.
enum TortureRecord {
    static let largeUpTo = 4000
    static func size(_ id: UInt64) -> Int { SelfDescribingRecord.size(id, largeUpTo: largeUpTo) }
    static func bytes(_ id: UInt64) -> [UInt8] { SelfDescribingRecord.bytes(id, largeUpTo: largeUpTo) }
    static func id(of payload: [UInt8]) -> UInt64? { SelfDescribingRecord.id(of: payload, largeUpTo: largeUpTo) }
}

/// What every crash of a run must leave behind, and what was found.
struct TortureLedger {
    /// Offset → id of every record that must be found at every later open: the acknowledged ones
    /// (the durable ones, outside `.sync` mode) and every record an earlier open returned.
    var stable: [UInt64: UInt64] = [:]
    var crashes = 0
    var acknowledged = 0
    var lost = 0
    var corrupt = 0
    var duplicated = 0
    var failedOpens = 0
    var tornTailsCut = 0
    var records = 0
    var problems: [String] = []

    /// Adds records that had to survive; an offset already promised to another record is a duplicate.
    mutating func promise(offset: UInt64, id: UInt64) {
        if let other = stable[offset], other != id {
            duplicated += 1
            problem("offset \(offset) acknowledged for record \(id) but it held record \(other)")
        }
        stable[offset] = id
    }

    mutating func problem(_ text: String) {
        if problems.count < 50 { problems.append(text) }
    }

    /// Something worth printing that is not a failure (`spool torture --damage`'s documented blind spot).
    var notes: [String] = []

    mutating func note(_ text: String) {
        if notes.count < 20 { notes.append(text) }
    }

    /// Reads the whole log and checks it against `stable`: every promised record is at its offset
    /// with its bytes, every record is intact and appears once, offsets are contiguous. Every
    /// record returned becomes promised.
    mutating func verify(_ log: Log, round: Int) {
        if log.recovery.truncatedBytes > 0 { tornTailsCut += 1 }
        var seen: [UInt64: UInt64] = [:]
        var ids: Set<UInt64> = []
        var expected = log.startOffset
        var reader = log.reader(from: log.startOffset)
        do {
            while let record = try reader.next() {
                if record.offset != expected { problem("round \(round): offset \(record.offset) follows \(expected)") }
                expected = record.offset + 1
                guard let id = TortureRecord.id(of: record.payload) else {
                    corrupt += 1
                    problem("round \(round): offset \(record.offset) holds \(record.payload.count) bytes no append wrote")
                    continue
                }
                if !ids.insert(id).inserted {
                    duplicated += 1
                    problem("round \(round): record \(id) appears twice (again at offset \(record.offset))")
                }
                seen[record.offset] = id
            }
        } catch {
            corrupt += 1
            problem("round \(round): reading the log threw \(error)")
        }
        if log.endOffset != expected { problem("round \(round): endOffset \(log.endOffset) but the records end at \(expected)") }
        for (offset, id) in stable where seen[offset] != id {
            lost += 1
            problem("round \(round): record \(id) at offset \(offset) is " + (seen[offset].map { "replaced by record \($0)" } ?? "gone"))
        }
        records = seen.count
        stable = seen
    }
}
