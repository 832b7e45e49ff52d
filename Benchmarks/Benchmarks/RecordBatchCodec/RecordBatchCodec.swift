// Encoding and decoding one record batch of 64 records of 256 bytes (16 KiB of records, 16,640
// bytes of raw payload with the length prefixes), as the writer thread and every reader do.
//
// - encode: `RecordBatch.encode` (payload layout, header, CRC32C, and LZ4 when the raw payload
//   reaches the compression threshold and saves an eighth). Three variants: random records
//   (LZ4 is tried and rejected), text-like records (stored compressed), and random records with
//   compression turned off (`compressionThreshold: Int.max`), the baseline that only lays out
//   the bytes and checksums them.
// - decode: what a read does with the bytes of one batch: `RecordBatchHeader(_:)`,
//   `checksumMatches`, `RecordBatch.decode` (which decompresses when needed and copies each
//   record into its own array).

import Benchmark
import BenchmarkSupport
import SpoolLog

let benchmarks: @Sendable () -> Void = {
    let recordCount = 64
    let recordSize = 256
    let recordBytes = recordCount * recordSize
    let random = (0..<recordCount).map { randomBytes(count: recordSize, seed: UInt64($0)) }
    let text = (0..<recordCount).map { textLikeBytes(count: recordSize, seed: UInt64($0)) }
    // `decodes`: the stored form differs from the other variants' (the first and third both store raw).
    let variants: [(label: String, records: [[UInt8]], threshold: Int, decodes: Bool)] = [
        ("random records, LZ4 tried", random, 4096, true),
        ("text-like records, LZ4", text, 4096, true),
        ("random records, no compression (baseline)", random, Int.max, false),
    ]
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, BytesPerSecond.metric, .mallocCountTotal],
        units: BytesPerSecond.units,
        scalingFactor: .kilo,
        maxDuration: .seconds(2)
    )

    for variant in variants {
        let encoded = RecordBatch.encode(variant.records, baseOffset: 1_000, timestampMilliseconds: 0,
                                         compressionThreshold: variant.threshold)
        // Check once, outside the measurement, that the batch round-trips.
        encoded.withUnsafeBytes { bytes in
            let header = RecordBatchHeader(bytes)!
            precondition(header.checksumMatches(bytes))
            precondition(try! RecordBatch.decode(header, bytes) == variant.records)
        }

        Benchmark("RecordBatch.encode 64 × 256 B, \(variant.label)", configuration: configuration) { benchmark in
            let start = BytesPerSecond.now()
            for _ in benchmark.scaledIterations {
                blackHole(RecordBatch.encode(variant.records, baseOffset: 1_000, timestampMilliseconds: 0,
                                             compressionThreshold: variant.threshold))
            }
            BytesPerSecond.record(benchmark, bytes: recordBytes * benchmark.scaledIterations.count, since: start)
        }

        guard variant.decodes else { continue }
        let stored = encoded.withUnsafeBytes { RecordBatchHeader($0)!.isCompressed } ? "stored LZ4" : "stored raw"
        Benchmark("RecordBatch header + checksum + decode 64 × 256 B, \(stored)", configuration: configuration) { benchmark in
            let start = BytesPerSecond.now()
            encoded.withUnsafeBytes { bytes in
                for _ in benchmark.scaledIterations {
                    guard let header = RecordBatchHeader(bytes), header.checksumMatches(bytes),
                          let records = try? RecordBatch.decode(header, bytes) else {
                        fatalError("the batch did not decode")
                    }
                    blackHole(records)
                }
            }
            BytesPerSecond.record(benchmark, bytes: recordBytes * benchmark.scaledIterations.count, since: start)
        }
    }
}
