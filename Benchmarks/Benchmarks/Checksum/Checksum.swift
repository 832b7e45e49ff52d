// CRC32C throughput: the hardware path (`CRC32C.checksum`, SSE4.2 `crc32`), the portable
// slicing-by-8 tables (`CRC32C.portableChecksum`), and, as the naive baseline, the textbook
// table-driven loop that consumes one byte per step, written in Swift.
//
// Every batch read and every byte verified during recovery goes through CRC32C, so its
// speed bounds how fast an unclean open can scan a log.

import Benchmark
import BenchmarkSupport
import SpoolLog

let benchmarks: @Sendable () -> Void = {
    let sizes: [(label: String, bytes: Int, scaling: BenchmarkScalingFactor)] = [
        ("256 B", 256, .kilo),
        ("4 KiB", 4 << 10, .kilo),
        ("1 MiB", 1 << 20, .one),
    ]

    for size in sizes {
        let buffer = randomBytes(count: size.bytes, seed: UInt64(size.bytes))
        let expected = buffer.withUnsafeBytes { CRC32C.checksum($0) }
        precondition(buffer.withUnsafeBytes { CRC32C.portableChecksum($0) } == expected, "portable CRC32C disagrees")
        precondition(NaiveCRC32C.checksum(buffer) == expected, "naive CRC32C disagrees")

        let configuration = Benchmark.Configuration(
            metrics: [.wallClock, .throughput, BytesPerSecond.metric],
            units: BytesPerSecond.units,
            scalingFactor: size.scaling,
            maxDuration: .seconds(2)
        )

        // Each call continues from the previous result, as when one long stream is verified:
        // independent calls would overlap in the CPU and measure throughput, not latency.
        Benchmark("CRC32C hardware \(size.label)", configuration: configuration) { benchmark in
            let start = BytesPerSecond.now()
            var crc: UInt32 = 0
            buffer.withUnsafeBytes { bytes in
                for _ in benchmark.scaledIterations {
                    crc = CRC32C.checksum(bytes, continuing: crc)
                }
            }
            blackHole(crc)
            BytesPerSecond.record(benchmark, bytes: size.bytes * benchmark.scaledIterations.count, since: start)
        }

        Benchmark("CRC32C portable slicing-by-8 \(size.label)", configuration: configuration) { benchmark in
            let start = BytesPerSecond.now()
            var crc: UInt32 = 0
            buffer.withUnsafeBytes { bytes in
                for _ in benchmark.scaledIterations {
                    crc = CRC32C.portableChecksum(bytes, continuing: crc)
                }
            }
            blackHole(crc)
            BytesPerSecond.record(benchmark, bytes: size.bytes * benchmark.scaledIterations.count, since: start)
        }

        Benchmark("CRC32C naive byte-at-a-time (baseline) \(size.label)", configuration: configuration) { benchmark in
            let start = BytesPerSecond.now()
            var crc: UInt32 = 0
            for _ in benchmark.scaledIterations {
                crc = NaiveCRC32C.checksum(buffer, continuing: crc)
            }
            blackHole(crc)
            BytesPerSecond.record(benchmark, bytes: size.bytes * benchmark.scaledIterations.count, since: start)
        }
    }
}

/// The classic one-table CRC32C (Sarwate): one table lookup and shift per input byte.
enum NaiveCRC32C {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        var c = ~crc
        table.withUnsafeBufferPointer { table in
            for byte in bytes {
                c = table[Int((c ^ UInt32(byte)) & 0xff)] ^ (c >> 8)
            }
        }
        return ~c
    }
}
