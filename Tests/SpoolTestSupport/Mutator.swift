#if canImport(Glibc)
import Glibc
#endif

// Test support shared by the test targets (not a product; only test targets depend on it).

/// A deterministic stream of mutated inputs: input `i` of seed `s` is always the same bytes, so a
/// failure names both and reproduces with them (`SPOOL_MUTATION_SEED` overrides the seed).
public struct Mutator {
    public let seed: UInt64
    private var state: UInt64

    public static func seed(default value: UInt64) -> UInt64 {
        if let text = getenv("SPOOL_MUTATION_SEED"), let seed = UInt64(String(cString: text)) { return seed }
        return value
    }

    public init(seed: UInt64, input: Int) {
        self.seed = seed
        state = seed ^ (UInt64(input) &* 0x9E37_79B9_7F4A_7C15)
        _ = next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

    /// One to four mutations of `bytes`: bit flips, bytes set to edge values, truncation,
    /// extension, insertion or deletion of a run, a copied slice, or random bytes of random length.
    public mutating func mutate(_ original: [UInt8]) -> [UInt8] {
        var bytes = original
        let edge: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0xFE]
        for _ in 0...below(4) {
            switch below(9) {
            case 0, 1:
                if !bytes.isEmpty { bytes[below(bytes.count)] ^= UInt8(1) << UInt8(below(8)) }
            case 2:
                if !bytes.isEmpty { bytes[below(bytes.count)] = edge[below(edge.count)] }
            case 3:
                bytes = Array(bytes.prefix(below(bytes.count + 1)))
            case 4:
                for _ in 0..<(1 + below(16)) { bytes.append(UInt8(truncatingIfNeeded: next())) }
            case 5:
                let at = below(bytes.count + 1)
                bytes.insert(contentsOf: (0..<(1 + below(8))).map { _ in UInt8(truncatingIfNeeded: next()) }, at: at)
            case 6:
                if !bytes.isEmpty {
                    let from = below(bytes.count)
                    bytes.removeSubrange(from..<min(bytes.count, from + 1 + below(8)))
                }
            case 7:
                if !bytes.isEmpty {
                    let from = below(bytes.count), length = 1 + below(min(16, bytes.count - from))
                    bytes.insert(contentsOf: bytes[from..<(from + length)], at: below(bytes.count + 1))
                }
            default:
                if below(8) == 0 { bytes = (0..<below(64)).map { _ in UInt8(truncatingIfNeeded: next()) } }
                else if bytes.count >= 8 {
                    // A varint or length field set to a huge value.
                    let at = below(bytes.count - 7)
                    for k in 0..<8 { bytes[at + k] = 0xFF &- UInt8(below(2)) }
                }
            }
        }
        return bytes
    }
}
