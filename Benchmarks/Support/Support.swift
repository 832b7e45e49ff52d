// Helpers shared by the benchmark targets: deterministic test data and a bytes-per-second metric.

#if canImport(Glibc)
import Glibc
#endif
import Benchmark

/// `count` pseudo-random bytes (xorshift64), the same for the same seed: incompressible data.
public func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var bytes = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes[i] = UInt8(truncatingIfNeeded: state >> 24)
    }
    return bytes
}

/// `count` bytes of text that compresses like real task payloads: JSON-ish event records made of
/// a small vocabulary with varying numbers (LZ4 gets roughly 3–5× on it, not 100×).
public func textLikeBytes(count: Int, seed: UInt64) -> [UInt8] {
    let names = ["OrderWorkflow", "ChargeCard", "ShipParcel", "SendEmail", "ReserveStock", "RefundPayment", "AuditLog"]
    let queues = ["payments", "shipping", "notifications", "inventory", "default"]
    let events = ["ActivityTaskScheduled", "ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskScheduled",
                  "WorkflowTaskCompleted", "TimerStarted", "TimerFired"]
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    func next(_ bound: Int) -> Int {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Int(state % UInt64(bound))
    }
    var text: [UInt8] = []
    text.reserveCapacity(count + 256)
    while text.count < count {
        let line = "{\"event\":\"\(events[next(events.count)])\",\"workflowId\":\"order-\(next(1_000_000))\","
            + "\"runId\":\"\(String(next(Int(Int32.max)), radix: 16))-\(String(next(Int(Int32.max)), radix: 16))\","
            + "\"type\":\"\(names[next(names.count)])\",\"taskQueue\":\"\(queues[next(queues.count)])\","
            + "\"attempt\":\(1 + next(3)),\"scheduledAt\":\(1_760_000_000_000 + next(100_000_000))}\n"
        text.append(contentsOf: line.utf8)
    }
    return Array(text.prefix(count))
}

/// A custom metric, "bytes per second" in MB/s (10^6 bytes), timed around the inner loop of one iteration.
public enum BytesPerSecond {
    public static var metric: BenchmarkMetric { BenchmarkMetric.custom("Throughput (MB/s)", polarity: .prefersLarger, useScalingFactor: false) }
    /// Shows the metric as plain MB/s rather than thousands of MB/s.
    public static var units: [BenchmarkMetric: BenchmarkUnits] { [metric: .count] }

    /// Monotonic nanoseconds.
    public static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Records `bytes` processed since `start` as MB/s.
    public static func record(_ benchmark: Benchmark, bytes: Int, since start: UInt64) {
        let elapsed = max(now() - start, 1)
        benchmark.measurement(metric, Int(Double(bytes) * 1_000 / Double(elapsed)))
    }
}
