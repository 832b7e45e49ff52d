#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives
import ArgumentParser
import Histogram
import SpoolLog
import Synchronization
import SpoolToolSupport

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
        records and writes per fdatasync, the process's CPU time per record, and append latency
        percentiles; for 'sync', where a mean append's time went and the mean fdatasync, and for
        'raw', its mean fdatasync.

        With --runs N, N rounds each run every mode for every producer count (so a mode and its
        baseline are measured close together in time), and the summary gives, per mode and producer
        count, the median run (by records/s) and the ratio of the medians to the baseline's median.

        Before and after the runs, the bench times a 16 KiB overwrite + fdatasync in the data
        directory (median of 200): no sync-mode append is acknowledged sooner, and on a shared
        machine it changes between runs, the records/s of sync modes with it.
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

    @Option(name: .long, help: "Rounds of every mode × producer count; summaries and ratios use each one's median run (1...99).")
    var runs = 1

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard (1...99).contains(runs) else { throw ValidationError("--runs must be between 1 and 99 (got \(runs))") }
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
        let syncBefore = try fdatasyncProbeMicroseconds(directory: scratch)
        if !json {
            print("spool bench log: \(formatCount(Double(self.records))) records × \(recordBytes) B (\(payload)), data \(data), "
                  + "CRC32C \(CRC32C.isHardwareAccelerated ? "SSE4.2" : "portable")"
                  + (runs > 1 ? ", \(runs) rounds" : ""))
            print("disk: a 16 KiB overwrite + fdatasync takes \(format(syncBefore, decimals: 0)) µs (median of 200)")
            print(RunResult.tableHeader)
        }
        // Every round runs every mode for every producer count, so a mode and its baseline are
        // measured minutes apart at most, and a noisy neighbour shows up as a bad round, not as a bad mode.
        for round in 1...runs {
            if !json && runs > 1 { print("round \(round) of \(runs), load \(loadAverageText())") }
            for producers in producerCounts {
                for mode in modeList {
                    var result = try await run(mode: mode, producers: producers, payloads: records,
                                               directory: scratch + "/\(mode)-\(producers)")
                    result.round = round
                    result.loadAverage = loadAverageText()
                    results.append(result)
                    if !json {
                        let baseline = results.last { $0.round == round && $0.producers == producers && $0.mode == Self.baselineMode(of: mode) }
                        print(result.tableRow(baseline: mode.hasPrefix("raw") ? nil : baseline))
                    }
                }
            }
        }
        let syncAfter = try fdatasyncProbeMicroseconds(directory: scratch)
        let summaries = Self.summarize(results)
        if !json {
            if runs > 1 {
                print("")
                print("median of \(runs) runs:")
                print(RunResult.tableHeader)
                for summary in summaries {
                    let baseline = summaries.first { $0.producers == summary.producers && $0.mode == Self.baselineMode(of: summary.mode) }
                    print(summary.median.tableRow(baseline: summary.mode.hasPrefix("raw") ? nil : baseline?.median))
                }
            }
            // Ratios against baselines that ran after the mode are printed in a second pass.
            print("")
            for summary in summaries where !summary.mode.hasPrefix("raw") {
                let baselineMode = Self.baselineMode(of: summary.mode)
                if let baseline = summaries.first(where: { $0.producers == summary.producers && $0.mode == baselineMode }) {
                    let what = runs > 1 ? " (medians of \(runs) runs)" : ""
                    print("\(summary.mode) × \(summary.producers) producers: "
                          + "\(format(summary.median.recordsPerSecond / baseline.median.recordsPerSecond, decimals: 2))× the records/s "
                          + "and \(format(summary.median.megabytesPerSecond / baseline.median.megabytesPerSecond, decimals: 2))× the MB/s "
                          + "of \(baselineMode)\(what)")
                }
            }
            for summary in summaries {
                if let stages = summary.median.stages { print("\(summary.mode) × \(summary.producers) producers: \(stages.text())") }
                if let micros = summary.median.rawFdatasyncMicros {
                    print("\(summary.mode) × \(summary.producers) producers: an fdatasync took \(format(micros, decimals: 0)) µs on average")
                }
            }
            print("disk: a 16 KiB overwrite + fdatasync took \(format(syncBefore, decimals: 0)) µs before the runs, "
                  + "\(format(syncAfter, decimals: 0)) µs after (load average \(loadAverageText()))")
        } else {
            let object = JSON.object([
                ("benchmark", .string("log")),
                ("records", .integer(self.records)),
                ("recordBytes", .integer(recordBytes)),
                ("payload", .string(payload)),
                ("crc32cHardware", .bool(CRC32C.isHardwareAccelerated)),
                ("rounds", .integer(runs)),
                ("fdatasyncProbeMicroseconds", .array([syncBefore, syncAfter].map { .number($0.rounded()) })),
                // One entry per mode and producer count: its median run, compared with the baseline's
                // median run; every run of it is in `perRun`.
                ("runs", .array(summaries.map { summary in
                    let baseline = summary.mode.hasPrefix("raw") ? nil
                        : summaries.first { $0.producers == summary.producers && $0.mode == Self.baselineMode(of: summary.mode) }
                    return summary.json(baseline: baseline)
                })),
            ])
            print(object.text)
        }
    }

    /// The baseline a mode is compared with: raw-nosync for `none`, raw write+fdatasync otherwise.
    static func baselineMode(of mode: String) -> String { mode == "none" ? "raw-nosync" : "raw" }

    /// Groups runs by mode and producer count (in the order they first ran) and picks each group's median.
    static func summarize(_ results: [RunResult]) -> [RunSummary] {
        var summaries: [RunSummary] = []
        for result in results where !summaries.contains(where: { $0.mode == result.mode && $0.producers == result.producers }) {
            let group = results.filter { $0.mode == result.mode && $0.producers == result.producers }
            summaries.append(RunSummary(mode: result.mode, producers: result.producers, runs: group))
        }
        return summaries
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

        let cpuStarted = cpuSeconds()
        let started = ContinuousClock.now
        // Each producer keeps its latencies in a plain array and they go into one histogram after
        // the clock stops: a histogram per producer (about 200 KB of counters each, a cold cache
        // line on every record) cost 14% of the CPU at 512 producers (perf), slowing the engine
        // and the baselines alike.
        let latencies = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for p in 0..<producers {
                let share = total / producers + (p < total % producers ? 1 : 0)
                group.addTask {
                    var latencies: [UInt64] = []
                    latencies.reserveCapacity(share)
                    // One clock read per append: the end of one append is the start of the next.
                    var start = monotonicNanoseconds()
                    for i in 0..<share {
                        let record = payloads[(p &* 7919 &+ i) % payloads.count]
                        if let log { _ = try await log.append(record) } else { await raw!.append(record) }
                        let end = monotonicNanoseconds()
                        latencies.append(end - start)
                        start = end
                        if i & 63 == 63 { done.value.add(64, ordering: .relaxed) }
                    }
                    return latencies
                }
            }
            var all: [[UInt64]] = []
            for try await partial in group { all.append(partial) }
            return all
        }
        let elapsed = (ContinuousClock.now - started).seconds
        let cpu = cpuSeconds() - cpuStarted
        let histogram = latencyHistogram(latencies, highestTrackableValue: 60_000_000_000)
        var fdatasyncs = 0
        var writes = 0
        var stages: SyncStages?
        var rawFdatasyncMicros: Double?
        if let log {
            let statistics = log.statistics
            fdatasyncs = statistics.fdatasyncs
            writes = statistics.batchesWritten
            if mode == "sync" { stages = SyncStages(statistics, appendMicros: meanMicroseconds(latencies)) }
            try log.close()
        }
        if let raw {
            raw.stop()
            fdatasyncs = raw.fdatasyncs
            writes = raw.writes
            if raw.fdatasyncs > 0 { rawFdatasyncMicros = Double(raw.fdatasyncNanoseconds) / Double(raw.fdatasyncs) / 1000 }
        }
        removeTree(directory)
        return RunResult(mode: mode == "interval" ? "interval(\(intervalMs)ms)" : mode, producers: producers, records: total,
                         recordBytes: recordBytes, seconds: elapsed, cpuSeconds: cpu, fdatasyncs: fdatasyncs, writes: writes, latency: histogram,
                         stages: stages, rawFdatasyncMicros: rawFdatasyncMicros)
    }
}

struct RunResult {
    /// Which round of `--runs` this was (1-based).
    var round = 1
    /// The 1, 5 and 15 minute load averages when the run ended: this machine is shared.
    var loadAverage = ""
    var mode: String
    var producers: Int
    var records: Int
    var recordBytes: Int
    var seconds: Double
    /// CPU time of the whole process (user + system, every thread) while the producers ran.
    var cpuSeconds: Double
    var fdatasyncs: Int
    /// Batches written (the raw baselines: write(2) calls), a measure of how well appends are grouped.
    var writes: Int
    var latency: Histogram<UInt64>
    /// Where a sync-mode append's time went (nil for the other modes).
    var stages: SyncStages?
    /// The raw baseline's mean `fdatasync`, in microseconds (nil for the other modes).
    var rawFdatasyncMicros: Double?

    var recordsPerSecond: Double { Double(records) / seconds }
    var megabytesPerSecond: Double { Double(records * recordBytes) / seconds / 1e6 }
    var recordsPerSync: Double { fdatasyncs > 0 ? Double(records) / Double(fdatasyncs) : 0 }
    var writesPerSync: Double { fdatasyncs > 0 ? Double(writes) / Double(fdatasyncs) : 0 }
    /// Process CPU per record, in microseconds.
    var cpuMicrosPerRecord: Double { cpuSeconds * 1e6 / Double(records) }
    func micros(_ percentile: Double) -> Double { Double(latency.valueAtPercentile(percentile)) / 1000 }

    static let tableHeader = [pad("mode", 18, right: false), pad("producers", 9), pad("records/s", 12), pad("MB/s", 8),
                              pad("fdatasyncs", 11), pad("rec/sync", 9), pad("wr/sync", 8), pad("cpu µs/rec", 10), pad("p50 µs", 9), pad("p99 µs", 9), pad("p99.9 µs", 9),
                              pad("vs raw", 7)].joined(separator: " ")

    func tableRow(baseline: RunResult?) -> String {
        [pad(mode, 18, right: false), pad(String(producers), 9), pad(formatCount(recordsPerSecond), 12),
         pad(format(megabytesPerSecond, decimals: 1), 8), pad(formatCount(Double(fdatasyncs)), 11),
         pad(fdatasyncs > 0 ? format(recordsPerSync, decimals: 1) : "-", 9),
         pad(fdatasyncs > 0 ? format(writesPerSync, decimals: 1) : "-", 8), pad(format(cpuMicrosPerRecord, decimals: 2), 10),
         pad(format(micros(50), decimals: 0), 9),
         pad(format(micros(99), decimals: 0), 9), pad(format(micros(99.9), decimals: 0), 9),
         pad(baseline.map { format(megabytesPerSecond / $0.megabytesPerSecond, decimals: 2) + "×" } ?? "", 7)].joined(separator: " ")
    }

    /// The measurements of this run, without mode and producer count (those are its summary's).
    var measurementFields: [(String, JSON)] {
        [
            ("seconds", .number(seconds)), ("recordsPerSecond", .number(recordsPerSecond.rounded())),
            ("megabytesPerSecond", .number((megabytesPerSecond * 10).rounded() / 10)), ("fdatasyncs", .integer(fdatasyncs)),
            ("recordsPerFdatasync", .number((recordsPerSync * 10).rounded() / 10)),
            ("writes", .integer(writes)),
            ("writesPerFdatasync", .number((writesPerSync * 100).rounded() / 100)),
            ("cpuMicrosecondsPerRecord", .number((cpuMicrosPerRecord * 100).rounded() / 100)),
            ("latencyMicroseconds", .object([("p50", .number(micros(50))), ("p99", .number(micros(99))), ("p99.9", .number(micros(99.9)))])),
        ] + (stages.map { [("stagesMicroseconds", $0.json)] } ?? [])
            + (rawFdatasyncMicros.map { [("fdatasyncMicroseconds", .number($0.rounded()))] } ?? [])
    }
}

/// The mean sync-mode append, in microseconds, split at the log's two timestamps: the end of the
/// write that carried it and the start of the fdatasync that covered it (``LogStatistics``).
struct SyncStages {
    /// The mean append as the producer saw it (in `bench queue`, the mean add).
    var appendMicros: Double
    var writtenToSyncStartMicros: Double
    /// The fdatasync, then waiting for earlier overlapping ones (acknowledgements go in order).
    var syncStartToAcknowledgedMicros: Double
    /// The mean fdatasync call.
    var fdatasyncMicros: Double

    /// From a `sync` log's statistics; nil when no fdatasync acknowledged an append.
    init?(_ statistics: LogStatistics, appendMicros: Double) {
        guard statistics.syncAcknowledged > 0 && statistics.fdatasyncs > 0 else { return nil }
        let acknowledged = Double(statistics.syncAcknowledged)
        self.appendMicros = appendMicros
        writtenToSyncStartMicros = Double(statistics.writtenToSyncStartNanoseconds) / acknowledged / 1000
        syncStartToAcknowledgedMicros = Double(statistics.syncStartToAcknowledgedNanoseconds) / acknowledged / 1000
        fdatasyncMicros = Double(statistics.fdatasyncNanoseconds) / Double(statistics.fdatasyncs) / 1000
    }

    /// Before the write (queueing for and inside the writer) and after the acknowledgement
    /// (until the producer's task runs again).
    var outsideMicros: Double { appendMicros - writtenToSyncStartMicros - syncStartToAcknowledgedMicros }

    /// `what`: the call whose mean is split ("append", "add").
    func text(what: String = "append") -> String {
        "mean \(what) \(format(appendMicros, decimals: 0)) µs = \(format(outsideMicros, decimals: 0)) to write it and resume the caller"
            + " + \(format(writtenToSyncStartMicros, decimals: 0)) written → fdatasync start"
            + " + \(format(syncStartToAcknowledgedMicros, decimals: 0)) fdatasync start → acknowledged"
            + " (an fdatasync took \(format(fdatasyncMicros, decimals: 0)) µs on average)"
    }

    var json: JSON {
        .object([("append", .number(appendMicros.rounded())), ("beforeWriteAndAfterAcknowledgement", .number(outsideMicros.rounded())),
                 ("writtenToSyncStart", .number(writtenToSyncStartMicros.rounded())),
                 ("syncStartToAcknowledged", .number(syncStartToAcknowledgedMicros.rounded())),
                 ("fdatasync", .number(fdatasyncMicros.rounded()))])
    }
}

/// Every run of one mode at one producer count, and its median.
struct RunSummary {
    let mode: String
    let producers: Int
    /// In the order they ran.
    let runs: [RunResult]

    /// The median run by records/s (of an even number, the slower of the two middle ones), so that
    /// every figure reported with it comes from one real run.
    var median: RunResult { medianRun(runs, by: \.recordsPerSecond)! }

    /// The fields of one `--json` entry: the median run's figures (the same fields as before `--runs`
    /// existed), the ratio of the medians to the baseline's, and every run, each with the ratio to the
    /// baseline's run of the same round.
    func json(baseline: RunSummary?) -> JSON {
        let median = self.median
        var fields: [(String, JSON)] = [("mode", .string(mode)), ("producers", .integer(producers)), ("records", .integer(median.records))]
        fields += median.measurementFields
        fields.append(("medianOf", .integer(runs.count)))
        fields.append(("medianRound", .integer(median.round)))
        if let baseline {
            fields.append(("baseline", .string(baseline.mode)))
            fields.append(("throughputRatioToBaseline", .number(Self.ratio(median, baseline.median))))
        }
        fields.append(("perRun", .array(runs.map { run in
            var entry: [(String, JSON)] = [("round", .integer(run.round)), ("loadAverage", .string(run.loadAverage))] + run.measurementFields
            if let base = baseline?.runs.first(where: { $0.round == run.round }) {
                entry.append(("throughputRatioToBaseline", .number(Self.ratio(run, base))))
            }
            return .object(entry)
        })))
        return .object(fields)
    }

    private static func ratio(_ run: RunResult, _ baseline: RunResult) -> Double {
        (run.megabytesPerSecond / baseline.megabytesPerSecond * 100).rounded() / 100
    }
}
