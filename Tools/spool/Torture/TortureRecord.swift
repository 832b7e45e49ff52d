import SpoolLog

/// A record whose bytes follow from its id (its first 8 bytes), size included, so that any
/// record read back after a crash can be checked without knowing which append wrote it.
/// Every fourth id is compressible, so that LZ4 batches are exercised too.
enum TortureRecord {
    static func size(_ id: UInt64) -> Int {
        var random = TortureRandom(seed: id ^ 0x5EED)
        let roll = random.next() % 100
        return 8 + Int(roll < 90 ? random.next() % 300 : random.next() % 4000)
    }

    static func bytes(_ id: UInt64) -> [UInt8] {
        let count = size(id)
        var bytes = [UInt8](repeating: 0, count: count)
        withUnsafeBytes(of: id.littleEndian) { for i in 0..<8 { bytes[i] = $0[i] } }
        if id % 4 == 0 {
            for i in 8..<count { bytes[i] = UInt8(truncatingIfNeeded: i % 7 + Int(id % 5)) }
        } else {
            var random = TortureRandom(seed: id)
            var i = 8
            while i < count {
                let word = random.next()
                for k in 0..<min(8, count - i) { bytes[i + k] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(k))) }
                i += 8
            }
        }
        return bytes
    }

    /// The record's id when its bytes are exactly those of that id; `nil` for bytes no append wrote.
    static func id(of payload: [UInt8]) -> UInt64? {
        guard payload.count >= 8 else { return nil }
        let id = payload.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian }
        return bytes(id) == payload ? id : nil
    }
}

/// SplitMix64: seedable, so that a run's choices replay from its seed.
struct TortureRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
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
