#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spool
import SpoolLog
import SpoolToolSupport

/// `spool bench visibility`: List and Count with the visibility index next to a full scan of the
/// same store, in the same run (issue 20, point 4).
struct BenchVisibility: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "visibility",
        abstract: "List and Count latency with the visibility index next to a full scan, on N closed and M open runs.",
        discussion: """
            Builds (or reuses, with --data DIR when DIR/history exists) a data directory through the \
            public engine API, as `spool bench reopen` does, with a Keyword search attribute \
            CustomerId registered: --closed runs started and terminated, then --open runs left open, \
            over --types workflow types (type-0 …) and --keywords distinct CustomerId values (c-0 …), \
            round robin; then closes the engine cleanly (a checkpoint: closed runs go to the \
            closed-run table). Then, in this process, for each of the first three queries below: \
            opens the directory (its time is reported) and runs that query once, cold (the first \
            query after open; a table written without a visibility section is indexed by it, \
            decoding every run), and closes it again; the index memory per run and the RSS after \
            the first open and after its first query are reported. Then, on one more open engine, \
            for each query the median of \
            --repeats runs with the index and of --scan-repeats runs with a full scan \
            (VisibilityPlan.scan: every run of the namespace, closed runs decoded from the table). \
            Queries: the newest 100 runs of one type; the newest 100 with one CustomerId; Count \
            GROUP BY ExecutionStatus; Count of the running runs. Each query's answer with the index \
            is checked against the scan's.
            """
    )

    @Option(name: .long, help: "Data directory: reused when it already holds an engine (DIR/history), else built there and kept. Default: a fresh temporary directory, removed afterwards.")
    var data: String?

    @Option(name: .long, help: "Closed runs to build.")
    var closed = 1_000_000

    @Option(name: .customLong("open"), help: "Open runs to build.")
    var openRuns = 10_000

    @Option(name: .long, help: "Workflow types.")
    var types = 100

    @Option(name: .long, help: "Distinct values of the CustomerId keyword attribute.")
    var keywords = 10_000

    @Option(name: .long, help: "Runs of each query with the index; the median is reported.")
    var repeats = 21

    @Option(name: .long, help: "Runs of each query with a full scan; the median is reported.")
    var scanRepeats = 3

    @Option(name: .long, help: "Concurrent clients while building.")
    var clients = 256

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard (0...100_000_000).contains(closed) else { throw ValidationError("--closed must be between 0 and 100000000 (got \(closed))") }
        guard (0...10_000_000).contains(openRuns) else { throw ValidationError("--open must be between 0 and 10000000 (got \(openRuns))") }
        guard (1...1_000_000).contains(types) else { throw ValidationError("--types must be between 1 and 1000000 (got \(types))") }
        guard (1...10_000_000).contains(keywords) else { throw ValidationError("--keywords must be between 1 and 10000000 (got \(keywords))") }
        guard (1...999).contains(repeats) else { throw ValidationError("--repeats must be between 1 and 999 (got \(repeats))") }
        guard (0...99).contains(scanRepeats) else { throw ValidationError("--scan-repeats must be between 0 and 99 (got \(scanRepeats))") }
        guard (1...100_000).contains(clients) else { throw ValidationError("--clients must be between 1 and 100000 (got \(clients))") }
        if let data, data.isEmpty { throw ValidationError("--data is empty") }
    }

    struct QueryResult {
        var name: String
        var query: String
        var count: Bool
        var indexSeconds: Double
        var scanSeconds: Double?
        var results: Int
    }

    func run() async throws {
        let store = try await ReusableStore(data: data) { try await build(directory: $0) }
        defer { store.removeScratch() }
        let (directory, built, buildSeconds) = (store.directory, store.built, store.buildSeconds)
        var configuration = SpoolEngineConfiguration()
        configuration.log = LogConfiguration(durability: .interval(milliseconds: 10))
        configuration.firesTimersAutomatically = false
        let middleType = "type-\(types / 2)"
        let keyword = "c-\(keywords / 2)"
        let queries: [(name: String, query: String, count: Bool)] = [
            ("newest 100 of one type", "WorkflowType = '\(middleType)'", false),
            ("newest 100 with one CustomerId", "CustomerId = '\(keyword)'", false),
            ("count by status", "GROUP BY ExecutionStatus", true),
            ("count running", "ExecutionStatus = 'Running'", true),
        ]
        func query(_ engine: SpoolEngine, _ entry: (name: String, query: String, count: Bool), _ plan: VisibilityPlan) throws -> (seconds: Double, answer: String, size: Int) {
            let started = ContinuousClock.now
            if entry.count {
                let count = try engine.countWorkflowExecutions(query: entry.query, plan: plan)
                return ((ContinuousClock.now - started).seconds, "\(count)", Int(count.count))
            }
            let page = try engine.listWorkflowExecutions(query: entry.query, pageSize: 100, plan: plan)
            let seconds = (ContinuousClock.now - started).seconds
            return (seconds, page.executions.map { $0.execution.workflowID + "/" + $0.execution.runID }.joined(separator: ","), page.executions.count)
        }
        // Cold: each of the three target queries as the first query of a fresh open.
        var cold: [(name: String, openSeconds: Double, firstSeconds: Double, answer: String)] = []
        var rssAfterOpen = 0, rssAfterFirst = 0
        var footprints: [VisibilityIndexFootprint] = []
        for entry in queries.prefix(3) {
            let opening = ContinuousClock.now
            let engine = try SpoolEngine.open(directory: directory, configuration: configuration)
            let openSeconds = (ContinuousClock.now - opening).seconds
            if cold.isEmpty {
                rssAfterOpen = residentBytes()
                footprints.append(engine.visibilityIndexFootprint)
            }
            let first = try query(engine, entry, .index)
            if cold.isEmpty {
                rssAfterFirst = residentBytes()
                footprints.append(engine.visibilityIndexFootprint)
            }
            cold.append((entry.name, openSeconds, first.seconds, first.answer))
            try await engine.close()
        }
        let opening = ContinuousClock.now
        let engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        let openSeconds = (ContinuousClock.now - opening).seconds
        let total = try engine.countWorkflowExecutions(query: "").count
        let footprint = footprints.first ?? engine.visibilityIndexFootprint
        let footprintAfterFirst = footprints.last ?? engine.visibilityIndexFootprint
        if !json {
            print("spool bench visibility: \(directory) (\(built ? "built in \(format(buildSeconds, decimals: 1)) s" : "reused")), "
                  + "\(formatCount(Double(total))) runs")
            for c in cold {
                print("  open \(format(c.openSeconds * 1000, decimals: 1)) ms, then first query after open (cold): \(c.name) "
                      + "\(format(c.firstSeconds * 1000, decimals: 3)) ms")
            }
            print("  open \(format(openSeconds * 1000, decimals: 1)) ms (the engine of the warm figures)")
            print("index after open: \(formatCount(Double(footprint.runs))) runs, \(format(Double(footprint.bytes) / 1e6, decimals: 1)) MB "
                  + "(\(format(Double(footprint.bytes) / Double(max(1, footprint.runs)), decimals: 1)) bytes per run by the index's own count), "
                  + "\(footprint.pendingTables) table pending; after the first query: \(formatCount(Double(footprintAfterFirst.runs))) runs, "
                  + "\(format(Double(footprintAfterFirst.bytes) / Double(max(1, footprintAfterFirst.runs)), decimals: 1)) bytes per run")
            print("RSS \(format(Double(rssAfterOpen) / 1e6, decimals: 1)) MB after open, \(format(Double(rssAfterFirst) / 1e6, decimals: 1)) MB after the first query")
            print("warm:")
        }
        var results: [QueryResult] = []
        for entry in queries {
            func once(_ plan: VisibilityPlan) throws -> (seconds: Double, answer: String, size: Int) {
                try query(engine, entry, plan)
            }
            var indexTimes: [Double] = []
            var indexAnswer = ""
            var size = 0
            for _ in 0..<repeats {
                let r = try once(.index)
                indexTimes.append(r.seconds)
                indexAnswer = r.answer
                size = r.size
            }
            var scanTimes: [Double] = []
            for _ in 0..<scanRepeats {
                let r = try once(.scan)
                scanTimes.append(r.seconds)
                guard r.answer == indexAnswer else {
                    printError("spool bench visibility: \(entry.name): the index's answer differs from the scan's")
                    throw ExitCode(1)
                }
            }
            if let c = cold.first(where: { $0.name == entry.name }), c.answer != indexAnswer {
                printError("spool bench visibility: \(entry.name): the first query after open answered differently from the warm one")
                throw ExitCode(1)
            }
            let result = QueryResult(name: entry.name, query: entry.query, count: entry.count, indexSeconds: median(indexTimes),
                                     scanSeconds: scanTimes.isEmpty ? nil : median(scanTimes), results: size)
            results.append(result)
            if !json {
                print("  \(entry.name) [\(entry.query)]: index \(format(result.indexSeconds * 1000, decimals: 3)) ms"
                      + (result.scanSeconds.map { ", full scan \(format($0 * 1000, decimals: 1)) ms" } ?? "")
                      + " (\(entry.count ? "count" : "runs") \(size))")
            }
        }
        try await engine.close()
        if json {
            print(JSON.object([
                ("benchmark", .string("visibility")), ("runs", .integer(Int(total))), ("built", .bool(built)),
                ("buildSeconds", .number(buildSeconds)), ("openMilliseconds", .number(openSeconds * 1000)),
                ("cold", .array(cold.map { c in
                    .object([("name", .string(c.name)), ("openMilliseconds", .number(c.openSeconds * 1000)),
                             ("firstQueryMilliseconds", .number(c.firstSeconds * 1000))])
                })),
                ("indexRuns", .integer(footprint.runs)), ("indexBytes", .integer(footprint.bytes)),
                ("indexBytesPerRun", .number(Double(footprint.bytes) / Double(max(1, footprint.runs)))),
                ("indexBytesPerRunAfterFirstQuery", .number(Double(footprintAfterFirst.bytes) / Double(max(1, footprintAfterFirst.runs)))),
                ("rssAfterOpenBytes", .integer(rssAfterOpen)), ("rssAfterFirstQueryBytes", .integer(rssAfterFirst)),
                ("queries", .array(results.map { r in
                    .object([("name", .string(r.name)), ("query", .string(r.query)), ("results", .integer(r.results)),
                             ("indexMilliseconds", .number(r.indexSeconds * 1000)),
                             ("scanMilliseconds", .number((r.scanSeconds ?? .nan) * 1000))])
                })),
            ]).text)
        }
    }

    /// Closed runs first (start, then terminate), then open ones, `clients` at a time; each with
    /// a type and a CustomerId round robin.
    private func build(directory: String) async throws {
        var configuration = SpoolEngineConfiguration()
        configuration.log = LogConfiguration(durability: .interval(milliseconds: 10))
        configuration.firesTimersAutomatically = false
        let engine: SpoolEngine
        do {
            engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        } catch {
            printError("spool bench visibility: \(explainOpenFailure(error, directory: DataDirectory(directory)))")
            throw ExitCode(2)
        }
        try engine.addSearchAttributes(["CustomerId": .keyword])
        let done = SharedCounter()
        let progress = ProgressBar(title: "building", total: closed + openRuns, unit: "runs", enabled: !json) { done.value.load(ordering: .relaxed) }
        let closedCount = closed, openCount = openRuns, clientCount = clients, typeCount = types, keywordCount = keywords
        func request(_ prefix: String, _ index: Int) -> StartWorkflowExecutionRequest {
            StartWorkflowExecutionRequest(workflowID: "\(prefix)-\(index)", workflowType: "type-\(index % typeCount)", taskQueue: "bench",
                                          searchAttributes: ["CustomerId": .json("\"c-\(index % keywordCount)\"")])
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clientCount {
                group.addTask {
                    for index in stride(from: client, to: closedCount, by: clientCount) {
                        let run = try await engine.startWorkflowExecution(request("closed", index))
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
                        try await engine.startWorkflowExecution(request("open", index))
                        done.value.add(1, ordering: .relaxed)
                    }
                }
            }
            try await group.waitForAll()
        }
        progress.finish()
        try await engine.close()
    }
}
