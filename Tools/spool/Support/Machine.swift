#if canImport(Glibc)
import Glibc
#endif

// What the benches report about the machine they ran on: this one is shared, so every figure is
// printed with the process's CPU time and the load it was measured under.

/// User + system CPU seconds of this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

/// The 1, 5 and 15 minute load averages (`uptime`).
func loadAverage() -> [Double] {
    var values = [Double](repeating: 0, count: 3)
    let count = values.withUnsafeMutableBufferPointer { getloadavg($0.baseAddress!, 3) }
    return count == 3 ? values : []
}

/// The load averages as "1.23 0.98 0.75" for a table ("unknown" when unavailable): this
/// machine is shared, so every figure is printed with the load it was measured under.
func loadAverageText() -> String {
    let values = loadAverage()
    return values.isEmpty ? "unknown" : values.map { format($0, decimals: 2) }.joined(separator: " ")
}
