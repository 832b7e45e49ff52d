#if canImport(Glibc)
import Glibc
#endif
import CSpoolShims

/// Random numbers from the kernel's generator — the source of `SystemRandomNumberGenerator` —
/// read a page at a time: that generator makes one `getrandom(2)` system call per `next()`, and a
/// workflow start draws two (its run id), which made them a tenth of the engine's system calls.
/// The bytes are the kernel's, unchanged; they are handed out once each, under a mutex.
///
/// Not for a process that forks without `exec` (the child would repeat the parent's unused
/// bytes); Spool's tools start other processes with `posix_spawn`.
public struct SystemRandomPool: RandomNumberGenerator, Sendable {
    private struct Pool {
        var bytes: UnsafeMutableRawBufferPointer
        var used: Int
    }

    private static let size = 4096
    private static let pool = LockedValue(Pool(bytes: .allocate(byteCount: size, alignment: 8), used: size))

    /// A handle on the process's one pool (every instance draws from it).
    public init() {}

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        Self.pool.withLock { pool in
            if pool.used == Self.size {
                Self.refill(pool.bytes)
                pool.used = 0
            }
            defer { pool.used += 8 }
            return pool.bytes.load(fromByteOffset: pool.used, as: UInt64.self)
        }
    }

    /// Fills `bytes` from `getrandom(2)`, or from `SystemRandomNumberGenerator` if the kernel
    /// refuses (a kernel before 3.17, a seccomp filter).
    private static func refill(_ bytes: UnsafeMutableRawBufferPointer) {
        var filled = 0
        while filled < bytes.count {
            let read = cspool_getrandom(bytes.baseAddress! + filled, bytes.count - filled)
            if read > 0 {
                filled += read
            } else if read < 0 && errno == EINTR {
                continue
            } else {
                // From where the kernel stopped, to the last byte (a partial read can leave fewer
                // than eight).
                var fallback = SystemRandomNumberGenerator()
                while filled < bytes.count {
                    let count = min(8, bytes.count - filled)
                    withUnsafeBytes(of: fallback.next() as UInt64) { random in
                        (bytes.baseAddress! + filled).copyMemory(from: random.baseAddress!, byteCount: count)
                    }
                    filled += count
                }
                return
            }
        }
    }
}
