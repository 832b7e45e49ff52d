import Histogram

/// A histogram of latencies that a bench's producers kept as raw samples, one array each.
///
/// The measured loops append to a preallocated array, which touches one new cache line per
/// eight samples, instead of recording into a histogram of their own: a 3-significant-digit
/// histogram up to 600 s is a 240 KB counts array, and with 128 producers nearly every record
/// missed the cache — 3% of `spool bench queue`'s CPU, taken from the code under measurement.
func latencyHistogram(_ samples: [[UInt64]], highestTrackableValue: UInt64 = 600_000_000_000) -> Histogram<UInt64> {
    var histogram = Histogram<UInt64>(highestTrackableValue: highestTrackableValue, numberOfSignificantValueDigits: .three)
    for partial in samples {
        for latency in partial { _ = histogram.record(latency) }
    }
    return histogram
}

/// The mean of the samples, in microseconds (0 without samples).
func meanMicroseconds(_ samples: [[UInt64]]) -> Double {
    let count = samples.reduce(0) { $0 + $1.count }
    guard count > 0 else { return 0 }
    return Double(samples.reduce(0 as UInt64) { $1.reduce($0, &+) }) / Double(count) / 1000
}
