#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Histogram
import SpoolLog
import Synchronization

/// `spool bench log`: appends from many concurrent producers in each durability mode, against a raw baseline.
struct BenchLog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Append throughput and latency of SpoolLog in each durability mode, against raw write(+fdatasync).",
        discussion: """
        Each producer is a task that appends one record at a time and waits for its acknowledgement.
        The raw baseline writes the same bytes from the same producers through one thread with plain
        write(2) and one fdatasync per batch (no Spool code); 'raw-nosync' skips the fdatasync and is
        the baseline for the 'none' mode. Figures: records/s, MB/s of record bytes, fdatasyncs,
        records per fdatasync, and append latency percentiles.
        """
    )

    @Option(name: .long, help: "Data directory for the bench's scratch logs (removed afterwards).")
    var data = "./spool-data"

    @Option(name: .long, help: "Records appended per run.")
    var records = 1_000_000

    @Option(name: .customLong("bytes"), help: "Bytes per record.")
    var recordBytes = 256

    @Option(name: .long, parsing: .singleValue, help: "Concurrent producers; repeat or comma-separate for several runs (default 128,512).")
    var producers: [String] = []

    @Option(name: .long, help: "Durability modes to run, comma-separated: sync, interval, none, raw, raw-nosync.")
    var modes = "sync,interval,none,raw,raw-nosync"

    @Option(name: .long, help: "Interval of the 'interval' mode, in milliseconds.")
    var intervalMs = 10

    @Option(name: .long, help: "Payload kind: random (incompressible) or text (compressible).")
    var payload = "random"

    @Option(name: .long, help: "LogConfiguration.concurrentSyncs for the sync mode.")
    var concurrentSyncs = LogConfiguration().concurrentSyncs

    @Option(name: .long, help: "LogConfiguration.preallocationBytes, in KiB.")
    var preallocationKb = LogConfiguration().preallocationBytes >> 10

    @Option(name: .long, help: "LogConfiguration.maxGroupCommitDelayMicroseconds.")
    var groupCommitDelayUs = LogConfiguration().maxGroupCommitDelayMicroseconds

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard records >= 1 else { throw ValidationError("--records must be at least 1 (got \(records))") }
        guard recordBytes >= 0 && recordBytes <= 1 << 20 else { throw ValidationError("--bytes must be between 0 and 1048576 (got \(recordBytes))") }
        guard concurrentSyncs >= 1 && concurrentSyncs <= 64 else { throw ValidationError("--concurrent-syncs must be between 1 and 64") }
        guard preallocationKb >= 0 else { throw ValidationError("--preallocation-kb must not be negative") }
        guard intervalMs >= 1 else { throw ValidationError("--interval-ms must be at least 1 (got \(intervalMs))") }
        guard payload == "random" || payload == "text" else { throw ValidationError("--payload must be random or text (got \(payload))") }
        _ = try parsedProducers()
        _ = try parsedModes()
    }

    func parsedProducers() throws -> [Int] {
        let values = producers.isEmpty ? ["128", "512"] : producers.flatMap { $0.split(separator: ",").map(String.init) }
        return try values.map { text in
            guard let n = Int(text), n >= 1, n <= 100_000 else { throw ValidationError("--producers: '\(text)' is not a count between 1 and 100000") }
            return n
        }
    }

    func parsedModes() throws -> [String] {
        let known = ["sync", "interval", "none", "raw", "raw-nosync"]
        let values = modes.split(separator: ",").map(String.init)
        guard !values.isEmpty else { throw ValidationError("--modes is empty; choose from \(known.joined(separator: ", "))") }
        for value in values where !known.contains(value) {
            throw ValidationError("--modes: unknown mode '\(value)'; choose from \(known.joined(separator: ", "))")
        }
        return values
    }

    func run() async throws {
        let producerCounts = try parsedProducers()
        let modeList = try parsedModes()
        try makeDirectory(data)
        let scratch = data + "/bench-log"
        removeTree(scratch)
        try makeDirectory(scratch)
        defer { removeTree(scratch) }

        let records = makePayloads()
        var results: [RunResult] = []
        if !json {
            print("spool bench log: \(formatCount(Double(self.records))) records × \(recordBytes) B (\(payload)), data \(data), "
                  + "CRC32C \(CRC32C.isHardwareAccelerated ? "SSE4.2" : "portable")")
            print(RunResult.tableHeader)
        }
        for producers in producerCounts {
            for mode in modeList {
                let result = try await run(mode: mode, producers: producers, payloads: records, directory: scratch + "/\(mode)-\(producers)")
                results.append(result)
                if !json {
                    let baseline = results.last { $0.producers == producers && $0.mode == (mode == "none" ? "raw-nosync" : "raw") }
                    print(result.tableRow(baseline: mode.hasPrefix("raw") ? nil : baseline))
                }
            }
        }
        if !json {
            // Ratios against baselines that ran after the mode are printed in a second pass.
            print("")
            for result in results where !result.mode.hasPrefix("raw") {
                let baselineMode = result.mode == "none" ? "raw-nosync" : "raw"
                if let baseline = results.first(where: { $0.producers == result.producers && $0.mode == baselineMode }) {
                    print("\(result.mode) × \(result.producers) producers: \(format(result.recordsPerSecond / baseline.recordsPerSecond, decimals: 2))× the records/s "
                          + "and \(format(result.megabytesPerSecond / baseline.megabytesPerSecond, decimals: 2))× the MB/s of \(baselineMode)")
                }
            }
        } else {
            let object = JSON.object([
                ("benchmark", .string("log")),
                ("records", .integer(self.records)),
                ("recordBytes", .integer(recordBytes)),
                ("payload", .string(payload)),
                ("crc32cHardware", .bool(CRC32C.isHardwareAccelerated)),
                ("runs", .array(results.map { result in
                    let baselineMode = result.mode == "none" ? "raw-nosync" : "raw"
                    let baseline = result.mode.hasPrefix("raw") ? nil
                        : results.first { $0.producers == result.producers && $0.mode == baselineMode }
                    return result.json(baseline: baseline)
                })),
            ])
            print(object.text)
        }
    }

    private func makePayloads() -> [[UInt8]] {
        // A pool of distinct payloads, reused round-robin: generating a million would measure the generator.
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz  ,.:{}\"0123456789".utf8)
        return (0..<1024).map { _ in
            (0..<recordBytes).map { _ in
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                return payload == "random" ? UInt8(truncatingIfNeeded: state) : alphabet[Int(state % UInt64(alphabet.count))]
            }
        }
    }

    private func run(mode: String, producers: Int, payloads: [[UInt8]], directory: String) async throws -> RunResult {
        let done = SharedCounter()
        let total = records
        let progress = ProgressBar(title: "\(mode) × \(producers)", total: total, unit: "records", enabled: !json) { done.value.load(ordering: .relaxed) }
        defer { progress.finish() }

        var configuration: LogConfiguration
        switch mode {
        case "sync": configuration = LogConfiguration(durability: .sync)
        case "interval": configuration = LogConfiguration(durability: .interval(milliseconds: intervalMs))
        default: configuration = LogConfiguration(durability: .none)
        }
        configuration.concurrentSyncs = concurrentSyncs
        configuration.maxGroupCommitDelayMicroseconds = groupCommitDelayUs
        configuration.preallocationBytes = preallocationKb << 10
        let log: Log? = mode.hasPrefix("raw") ? nil : try Log.open(directory: directory, configuration: configuration)
        if mode.hasPrefix("raw") { try makeDirectory(directory) }
        let raw: RawBaselineWriter? = mode.hasPrefix("raw") ? try RawBaselineWriter(path: directory + "/raw.dat", sync: mode == "raw") : nil

        let started = ContinuousClock.now
        let histogram = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
            for p in 0..<producers {
                let share = total / producers + (p < total % producers ? 1 : 0)
                group.addTask {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
                    // One clock read per append: the end of one append is the start of the next.
                    var start = monotonicNanoseconds()
                    for i in 0..<share {
                        let record = payloads[(p &* 7919 &+ i) % payloads.count]
                        if let log { _ = try await log.append(record) } else { await raw!.append(record) }
                        let end = monotonicNanoseconds()
                        _ = histogram.record(end - start)
                        start = end
                        if i & 63 == 63 { done.value.add(64, ordering: .relaxed) }
                    }
                    return histogram
                }
            }
            var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            for try await partial in group { merged.add(partial) }
            return merged
        }
        let elapsed = (ContinuousClock.now - started).seconds
        var fdatasyncs = 0
        if let log {
            fdatasyncs = log.statistics.fdatasyncs
            try log.close()
        }
        if let raw {
            raw.stop()
            fdatasyncs = raw.fdatasyncs
        }
        removeTree(directory)
        return RunResult(mode: mode == "interval" ? "interval(\(intervalMs)ms)" : mode, producers: producers, records: total,
                         recordBytes: recordBytes, seconds: elapsed, fdatasyncs: fdatasyncs, latency: histogram)
    }
}

struct RunResult {
    var mode: String
    var producers: Int
    var records: Int
    var recordBytes: Int
    var seconds: Double
    var fdatasyncs: Int
    var latency: Histogram<UInt64>

    var recordsPerSecond: Double { Double(records) / seconds }
    var megabytesPerSecond: Double { Double(records * recordBytes) / seconds / 1e6 }
    var recordsPerSync: Double { fdatasyncs > 0 ? Double(records) / Double(fdatasyncs) : 0 }
    func micros(_ percentile: Double) -> Double { Double(latency.valueAtPercentile(percentile)) / 1000 }

    static let tableHeader = [pad("mode", 18, right: false), pad("producers", 9), pad("records/s", 12), pad("MB/s", 8),
                              pad("fdatasyncs", 11), pad("rec/sync", 9), pad("p50 µs", 9), pad("p99 µs", 9), pad("p99.9 µs", 9),
                              pad("vs raw", 7)].joined(separator: " ")

    func tableRow(baseline: RunResult?) -> String {
        [pad(mode, 18, right: false), pad(String(producers), 9), pad(formatCount(recordsPerSecond), 12),
         pad(format(megabytesPerSecond, decimals: 1), 8), pad(formatCount(Double(fdatasyncs)), 11),
         pad(fdatasyncs > 0 ? format(recordsPerSync, decimals: 1) : "-", 9), pad(format(micros(50), decimals: 0), 9),
         pad(format(micros(99), decimals: 0), 9), pad(format(micros(99.9), decimals: 0), 9),
         pad(baseline.map { format(megabytesPerSecond / $0.megabytesPerSecond, decimals: 2) + "×" } ?? "", 7)].joined(separator: " ")
    }

    func json(baseline: RunResult?) -> JSON {
        var fields: [(String, JSON)] = [
            ("mode", .string(mode)), ("producers", .integer(producers)), ("records", .integer(records)),
            ("seconds", .number(seconds)), ("recordsPerSecond", .number(recordsPerSecond.rounded())),
            ("megabytesPerSecond", .number((megabytesPerSecond * 10).rounded() / 10)), ("fdatasyncs", .integer(fdatasyncs)),
            ("recordsPerFdatasync", .number((recordsPerSync * 10).rounded() / 10)),
            ("latencyMicroseconds", .object([("p50", .number(micros(50))), ("p99", .number(micros(99))), ("p99.9", .number(micros(99.9)))])),
        ]
        if let baseline {
            fields.append(("baseline", .string(baseline.mode)))
            fields.append(("throughputRatioToBaseline", .number((megabytesPerSecond / baseline.megabytesPerSecond * 100).rounded() / 100)))
        }
        return .object(fields)
    }
}
