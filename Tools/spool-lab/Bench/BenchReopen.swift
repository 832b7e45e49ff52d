#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spool
import SpoolLog
import SpoolToolSupport

/// `spool bench reopen`: how long opening an engine's data directory takes when it holds many
/// closed runs and some open ones, after a clean close (checkpointed).
struct BenchReopen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reopen",
        abstract: "Reopen time and memory of an engine data directory with N closed and M open runs, checkpointed.",
        discussion: """
            Builds (or reuses, with --data DIR when DIR/history exists) a data directory through the \
            public engine API: --closed runs started and terminated (two appends each, as a user's \
            short-lived workflows that were ended), then --open runs started and left open (each \
            with its first workflow task pending), with interval durability; then closes the engine \
            cleanly (which writes a checkpoint). Each of --runs measurements opens the directory in a \
            fresh child process (so its memory is the open's alone): time of SpoolEngine.open, \
            resident memory after it (VmRSS, and RssAnon: what is not a mapped file), runs and open runs restored, then close() (its time is \
            reported too: a clean close writes a checkpoint). Medians are reported with the bytes of \
            the checkpoint files (everything in DIR but the history log). Baseline, in the same run: \
            a clean reopen of the history log alone (SpoolLog.Log.open), what storage costs before \
            the engine restores anything.
            """
    )

    @Option(name: .long, help: "Data directory: reused when it already holds an engine (DIR/history), else built there and kept. Default: a fresh temporary directory, removed afterwards.")
    var data: String?

    @Option(name: .long, help: "Closed runs to build.")
    var closed = 1_000_000

    @Option(name: .customLong("open"), help: "Open runs to build.")
    var openRuns = 10_000

    @Option(name: .long, help: "Reopens measured; medians are reported.")
    var runs = 3

    @Option(name: .long, help: "Concurrent clients while building.")
    var clients = 256

    @Option(name: .long, help: "After the reopens: close this many more runs, then time the checkpoint that merges them into the closed-run table (0: skip). They stay in the store.")
    var mergeRuns = 20_000

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Flag(name: .long, help: .hidden)
    var measureOnce = false

    func validate() throws {
        guard (0...100_000_000).contains(closed) else { throw ValidationError("--closed must be between 0 and 100000000 (got \(closed))") }
        guard (0...10_000_000).contains(openRuns) else { throw ValidationError("--open must be between 0 and 10000000 (got \(openRuns))") }
        guard (1...99).contains(runs) else { throw ValidationError("--runs must be between 1 and 99 (got \(runs))") }
        guard mergeRuns >= 0 else { throw ValidationError("--merge-runs must be at least 0 (got \(mergeRuns))") }
        guard (1...100_000).contains(clients) else { throw ValidationError("--clients must be between 1 and 100000 (got \(clients))") }
        if let data, data.isEmpty { throw ValidationError("--data is empty") }
        if measureOnce && data == nil { throw ValidationError("--measure-once needs --data") }
    }

    func run() async throws {
        if measureOnce, let data {
            try await measureOneReopen(directory: data)
            return
        }
        let store = try await ReusableStore(data: data) { try await build(directory: $0) }
        defer { store.removeScratch() }
        let (directory, built, buildSeconds) = (store.directory, store.built, store.buildSeconds)
        let load = loadAverage()
        if !json {
            print("spool bench reopen: \(directory) (\(built ? "built in \(format(buildSeconds, decimals: 1)) s" : "reused")), "
                  + "\(runs) reopen\(runs == 1 ? "" : "s"); load average \(load.map { format($0, decimals: 2) }.joined(separator: " "))")
        }
        var measurements: [ReopenMeasurement] = []
        var logOpen: [Double] = []
        for round in 1...runs {
            let m = try spawnMeasurement(directory: directory)
            measurements.append(m)
            let t0 = ContinuousClock.now
            let log = try Log.open(directory: DataDirectory(directory).history)
            logOpen.append((ContinuousClock.now - t0).seconds)
            try log.close()
            if !json {
                print("  reopen \(round): \(format(m.openSeconds * 1000, decimals: 1)) ms, RSS \(format(Double(m.rssBytes) / 1e6, decimals: 1)) MB, "
                      + "anonymous \(format(Double(m.anonymousBytes) / 1e6, decimals: 1)) MB, \(formatCount(Double(m.runs))) runs (\(formatCount(Double(m.openRuns))) open), "
                      + "\(m.recordsReplayed) records replayed, checkpoint \(m.usedCheckpoint ? "used" : "NOT used"); "
                      + "close \(format(m.closeSeconds * 1000, decimals: 1)) ms")
            }
        }
        let checkpointBytes = bytesOnDisk(directory)  // the checkpoint files: the log is in a subdirectory
        let mergeSeconds = mergeRuns > 0 ? try await measureMerge(directory: directory) : nil
        let openMedian = median(measurements.map(\.openSeconds))
        let rssMedian = median(measurements.map { Double($0.rssBytes) })
        let anonymousMedian = median(measurements.map { Double($0.anonymousBytes) })
        let closeMedian = median(measurements.map(\.closeSeconds))
        let logMedian = median(logOpen)
        let last = measurements[measurements.count - 1]
        if json {
            print(JSON.object([
                ("benchmark", .string("reopen")), ("closedRuns", .integer(last.runs - last.openRuns)), ("openRuns", .integer(last.openRuns)),
                ("built", .bool(built)), ("buildSeconds", .number(buildSeconds)), ("reopens", .integer(runs)),
                ("loadAverage", .array(load.map { .number($0) })),
                ("reopenMilliseconds", .number(openMedian * 1000)), ("rssBytes", .integer(Int(rssMedian))), ("rssAnonymousBytes", .integer(Int(anonymousMedian))),
                ("closeMilliseconds", .number(closeMedian * 1000)), ("checkpointBytes", .integer(checkpointBytes)),
                ("usedCheckpoint", .bool(last.usedCheckpoint)), ("recordsReplayed", .integer(last.recordsReplayed)),
                ("baselineLogReopenMilliseconds", .number(logMedian * 1000)),
                ("mergeRuns", .integer(mergeRuns)), ("mergeCheckpointMilliseconds", .number((mergeSeconds ?? .nan) * 1000)),
                ("runs", .array(measurements.map { m in
                    JSON.object([("reopenMilliseconds", .number(m.openSeconds * 1000)), ("rssBytes", .integer(m.rssBytes)),
                                 ("closeMilliseconds", .number(m.closeSeconds * 1000))])
                })),
            ]).text)
        } else {
            print("median: reopen \(format(openMedian * 1000, decimals: 1)) ms with \(formatCount(Double(last.runs - last.openRuns))) closed and "
                  + "\(formatCount(Double(last.openRuns))) open runs; RSS after open \(format(rssMedian / 1e6, decimals: 1)) MB "
                  + "(\(format(anonymousMedian / 1e6, decimals: 1)) MB anonymous); "
                  + "checkpoint files \(format(Double(checkpointBytes) / 1e6, decimals: 1)) MB; close \(format(closeMedian * 1000, decimals: 1)) ms")
            print("baseline: a clean reopen of the history log alone took \(format(logMedian * 1000, decimals: 1)) ms")
            if let mergeSeconds {
                print("then \(formatCount(Double(mergeRuns))) more runs closed and a checkpoint that merged them into the closed-run table: "
                      + "\(format(mergeSeconds * 1000, decimals: 1)) ms (the store keeps them)")
            }
        }
    }

    // MARK: Building

    /// Closed runs first (start, then terminate), then open ones, `clients` at a time.
    private func build(directory: String) async throws {
        var configuration = SpoolEngineConfiguration()
        configuration.log = LogConfiguration(durability: .interval(milliseconds: 10))
        configuration.firesTimersAutomatically = false
        let engine: SpoolEngine
        do {
            engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        } catch {
            printError("spool bench reopen: \(explainOpenFailure(error, directory: DataDirectory(directory)))")
            throw ExitCode(2)
        }
        let done = SharedCounter()
        let total = closed + openRuns
        let progress = ProgressBar(title: "building", total: total, unit: "runs", enabled: !json) { done.value.load(ordering: .relaxed) }
        let closedCount = closed, openCount = openRuns, clientCount = clients
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clientCount {
                group.addTask {
                    for index in stride(from: client, to: closedCount, by: clientCount) {
                        let run = try await engine.startWorkflowExecution(
                            StartWorkflowExecutionRequest(workflowID: "closed-\(index)", workflowType: "bench", taskQueue: "bench",
                                                          input: .binary([UInt8(truncatingIfNeeded: index)])))
                        try await engine.terminateWorkflowExecution(execution: WorkflowExecution(workflowID: "closed-\(index)", runID: run.runID),
                                                                    reason: "bench")
                        done.value.add(1, ordering: .relaxed)
                    }
                }
            }
            try await group.waitForAll()
            for client in 0..<clientCount {
                group.addTask {
                    for index in stride(from: client, to: openCount, by: clientCount) {
                        try await engine.startWorkflowExecution(
                            StartWorkflowExecutionRequest(workflowID: "open-\(index)", workflowType: "bench", taskQueue: "bench",
                                                          input: .binary([UInt8(truncatingIfNeeded: index)])))
                        done.value.add(1, ordering: .relaxed)
                    }
                }
            }
            try await group.waitForAll()
        }
        progress.finish()
        try await engine.close()
    }

    // MARK: Measuring

    /// Closes `mergeRuns` more runs (start + terminate) and times the checkpoint that merges them
    /// (`closedRunTableMergeThreshold` = `mergeRuns`), in this process.
    private func measureMerge(directory: String) async throws -> Double {
        var configuration = SpoolEngineConfiguration()
        configuration.log = LogConfiguration(durability: .interval(milliseconds: 10))
        configuration.firesTimersAutomatically = false
        configuration.checkpointEveryRecords = nil
        configuration.closedRunTableMergeThreshold = mergeRuns
        let engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        let first = (engine.recovery?.runs ?? 0)
        let count = mergeRuns, clientCount = clients
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clientCount {
                group.addTask {
                    for index in stride(from: client, to: count, by: clientCount) {
                        let workflowID = "merge-\(first)-\(index)"
                        let run = try await engine.startWorkflowExecution(
                            StartWorkflowExecutionRequest(workflowID: workflowID, workflowType: "bench", taskQueue: "bench"))
                        try await engine.terminateWorkflowExecution(execution: WorkflowExecution(workflowID: workflowID, runID: run.runID))
                    }
                }
            }
            try await group.waitForAll()
        }
        let started = ContinuousClock.now
        try await engine.checkpoint()
        let seconds = (ContinuousClock.now - started).seconds
        try await engine.close()
        return seconds
    }

    struct ReopenMeasurement {
        var openSeconds: Double
        var rssBytes: Int
        var closeSeconds: Double
        var runs: Int
        var openRuns: Int
        var recordsReplayed: Int
        var usedCheckpoint: Bool
        /// RssAnon: resident memory that is not a mapping of a file.
        var anonymousBytes: Int
    }

    /// In the child: open, measure, close; one line `open-ns rss-bytes close-ns runs open-runs replayed used anon-bytes`.
    private func measureOneReopen(directory: String) async throws {
        var configuration = SpoolEngineConfiguration()
        configuration.log = LogConfiguration(durability: .interval(milliseconds: 10))
        configuration.firesTimersAutomatically = false
        let started = ContinuousClock.now
        let engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        let openNanoseconds = (ContinuousClock.now - started).nanoseconds
        let rss = residentBytes()
        let anonymous = residentBytes("RssAnon:")
        let report = engine.recovery
        let closing = ContinuousClock.now
        try await engine.close()
        let closeNanoseconds = (ContinuousClock.now - closing).nanoseconds
        printLine("\(openNanoseconds) \(rss) \(closeNanoseconds) \(report?.runs ?? 0) \(report?.openRuns ?? 0) "
                  + "\(report?.recordsReplayed ?? 0) \(report?.usedCheckpoint == true ? 1 : 0) \(anonymous)")
    }

    /// Runs `--measure-once` in a child process and parses its line.
    private func spawnMeasurement(directory: String) throws -> ReopenMeasurement {
        let fields = try runSelf(["bench", "reopen", "--data", directory, "--measure-once"], expectingNumbers: 8)
        return ReopenMeasurement(openSeconds: Double(fields[0]) / 1e9, rssBytes: fields[1], closeSeconds: Double(fields[2]) / 1e9,
                                 runs: fields[3], openRuns: fields[4], recordsReplayed: fields[5], usedCheckpoint: fields[6] == 1,
                                 anonymousBytes: fields[7])
    }
}
