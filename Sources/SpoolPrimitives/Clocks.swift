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
