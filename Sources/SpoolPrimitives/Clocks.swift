#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on the monotonic clock (`CLOCK_MONOTONIC`): for intervals and timed waits.
@inline(__always)
package func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Milliseconds since the Unix epoch (`CLOCK_REALTIME`): stamped on log batches, used for roll by
/// age and retention.
@inline(__always)
package func wallClockMilliseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
}

extension Duration {
    /// Whole nanoseconds (truncated toward zero), saturating at `Int64.max` and `Int64.min + 1`.
    /// One division of the attoseconds: going through `components` (a division, then a
    /// multiplication back) took twice the instructions, and the engine converts a few durations
    /// per transition (timer deadlines, encoded timeouts).
    @inlinable
    package var saturatingNanoseconds: Int64 {
        let nanoseconds = attoseconds / 1_000_000_000
        if nanoseconds > Int128(Int64.max) { return .max }
        if nanoseconds < -Int128(Int64.max) { return Int64.min + 1 }
        return Int64(nanoseconds)
    }
}
