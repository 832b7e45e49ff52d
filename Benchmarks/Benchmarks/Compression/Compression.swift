// LZ4 block compression through SpoolLog's wrapper of the system liblz4, on 64 KiB of text-like
// data (JSON-ish task events) and of random bytes. The baseline is a plain copy of the same
// 64 KiB: the least any transformation of the buffer can cost.
//
// Batches whose raw payload reaches `compressionThresholdBytes` are compressed on the writer
// thread, and every read of such a batch decompresses it, so both directions are on hot paths.

#if canImport(Glibc)
import Glibc
#endif
import Benchmark
import BenchmarkSupport
import SpoolLog

let benchmarks: @Sendable () -> Void = {
    let size = 64 << 10
    let inputs: [(label: String, bytes: [UInt8])] = [
        ("text-like", textLikeBytes(count: size, seed: 1)),
        ("incompressible", randomBytes(count: size, seed: 2)),
    ]
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, BytesPerSecond.metric, CompressedBytes.metric],
        units: BytesPerSecond.units.merging([CompressedBytes.metric: .count]) { $1 },
        scalingFactor: .one,
        maxDuration: .seconds(2)
    )

    for input in inputs {
        // One compressed copy, made outside the measurement, for the decompression benchmark.
        let bound = LZ4.maxCompressedSize(size)
        var compressed = [UInt8](repeating: 0, count: bound)
        let compressedCount = input.bytes.withUnsafeBytes { source in
            compressed.withUnsafeMutableBytes { LZ4.compress(source, into: $0) }
        }!
        compressed.removeLast(bound - compressedCount)
        // Output buffers live as long as the process: allocating and zeroing 64 KiB in the
        // measured closure would cost as much as the work measured.
        let compressOutput = UnsafeMutableRawBufferPointer.allocate(byteCount: bound, alignment: 16)
        let decompressOutput = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        let roundTrip = compressed.withUnsafeBytes { LZ4.decompress($0, into: decompressOutput) }
        precondition(roundTrip == size && Array(UnsafeRawBufferPointer(decompressOutput)) == input.bytes,
                     "LZ4 round trip changed the data")

        Benchmark("LZ4 compress 64 KiB \(input.label)", configuration: configuration) { benchmark in
            let start = BytesPerSecond.now()
            var written = 0
            input.bytes.withUnsafeBytes { source in
                for _ in benchmark.scaledIterations {
                    written = LZ4.compress(source, into: compressOutput) ?? -1
                    blackHole(written)
                }
            }
            BytesPerSecond.record(benchmark, bytes: size * benchmark.scaledIterations.count, since: start)
            benchmark.measurement(CompressedBytes.metric, written)
        }

        Benchmark("LZ4 decompress 64 KiB \(input.label)", configuration: configuration) { benchmark in
            let start = BytesPerSecond.now()
            compressed.withUnsafeBytes { source in
                for _ in benchmark.scaledIterations {
                    blackHole(LZ4.decompress(source, into: decompressOutput))
                }
            }
            BytesPerSecond.record(benchmark, bytes: size * benchmark.scaledIterations.count, since: start)
            benchmark.measurement(CompressedBytes.metric, compressedCount)
        }
    }

    let source = inputs[1].bytes
    let copyOutput = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    Benchmark("memcpy 64 KiB (baseline)", configuration: configuration) { benchmark in
        let start = BytesPerSecond.now()
        source.withUnsafeBytes { source in
            for _ in benchmark.scaledIterations {
                memcpy(copyOutput.baseAddress!, source.baseAddress!, size)
                blackHole(copyOutput[size - 1])
            }
        }
        BytesPerSecond.record(benchmark, bytes: size * benchmark.scaledIterations.count, since: start)
        benchmark.measurement(CompressedBytes.metric, size)
    }
}

/// The size of the compressed form of the 64 KiB input (the same in every iteration).
enum CompressedBytes {
    static var metric: BenchmarkMetric { BenchmarkMetric.custom("Compressed size (bytes)", polarity: .prefersSmaller, useScalingFactor: false) }
}
