/// Records whose bytes follow from their id (their first 8 bytes), size included, so that any
/// record read back after a crash can be checked without knowing which append wrote it. Every
/// fourth id is compressible, so that LZ4 batches are exercised too. Used by the crash and
/// power-loss harnesses (`spool torture` and the tests).
package enum SelfDescribingRecord {
    /// The record's size: 8 to 308 bytes nine times in ten, otherwise up to `8 + largeUpTo`.
    package static func size(_ id: UInt64, largeUpTo: Int) -> Int {
        var random = SplitMix64(seed: id ^ 0x5EED)
        let roll = random.next() % 100
        return 8 + Int(roll < 90 ? random.next() % 300 : random.next() % UInt64(largeUpTo))
    }

    /// The record's bytes.
    package static func bytes(_ id: UInt64, largeUpTo: Int) -> [UInt8] {
        let count = size(id, largeUpTo: largeUpTo)
        var bytes = [UInt8](repeating: 0, count: count)
        withUnsafeBytes(of: id.littleEndian) { for i in 0..<8 { bytes[i] = $0[i] } }
        if id % 4 == 0 {
            for i in 8..<count { bytes[i] = UInt8(truncatingIfNeeded: i % 7 + Int(id % 5)) }
        } else {
            var random = SplitMix64(seed: id)
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
    package static func id(of payload: [UInt8], largeUpTo: Int) -> UInt64? {
        guard payload.count >= 8 else { return nil }
        let id = payload.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian }
        return bytes(id, largeUpTo: largeUpTo) == payload ? id : nil
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a seedable generator whose runs can be replayed.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<n` (0 when `n < 1`).
    package mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
}
