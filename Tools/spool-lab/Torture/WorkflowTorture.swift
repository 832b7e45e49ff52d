#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives
import Spool
import SpoolLog
import SpoolToolSupport

/// `spool torture --workload workflows`: the engine under SIGKILL.
///
/// The child runs two in-process workers and starts workflows from `--appenders` tasks, writing
/// `S <workflow id>` once a start returns (durable). Each workflow runs two activities in sequence
/// (the first attempt of each fails one time in ten and is retried) and completes with a result
/// that depends only on its id. After every kill the parent reopens the engine without firing
/// timers and checks every history; after the last kill it runs workers until every workflow has
/// completed, and checks each result — what the run would have produced without the crashes.
enum WorkflowTorture {
    static let taskQueue = "torture"
    static let workflowType = "torture-order"
    static let closeTypes: Set<EventType> = [.workflowExecutionCompleted, .workflowExecutionFailed, .workflowExecutionTimedOut,
                                             .workflowExecutionCanceled, .workflowExecutionTerminated, .workflowExecutionContinuedAsNew]

    static func configuration(timers: Bool) -> SpoolEngineConfiguration {
        var configuration = SpoolEngineConfiguration()
        configuration.log = TortureCommand.logConfiguration(.sync)
        configuration.firesTimersAutomatically = timers
        // A workflow task started by a killed worker times out after this; keeps the drain short.
        configuration.defaultWorkflowTaskTimeout = .milliseconds(500)
        configuration.checkpointEveryRecords = 2_000  // checkpoints mid-run, so reopens use them
        return configuration
    }

    /// The result a workflow must close with.
    static func expectedResult(_ workflowID: String) -> [UInt8] { Array((workflowID + "+1+2").utf8) }

    /// The workflow: step-1 on the input, step-2 on step-1's result, then complete with it.
    static func makeWorker(_ engine: SpoolEngine, identity: String) -> SpoolWorker {
        let worker = SpoolWorker(engine: engine, taskQueue: taskQueue, identity: identity,
                                 stickyScheduleToStartTimeout: .milliseconds(300))
        worker.registerWorkflow(workflowType) { context in
            let results = context.history.compactMap { event -> Payloads? in
                if case .activityTaskCompleted(let completed) = event.attributes { return completed.result ?? [] }
                return nil
            }
            if results.count >= 2 { return [.completeWorkflowExecution(.init(result: results[1]))] }
            let step = results.count + 1
            return [.scheduleActivityTask(.init(activityID: "step-\(step)", activityType: "step",
                                                input: results.last ?? context.input, startToCloseTimeout: .seconds(1),
                                                retryPolicy: RetryPolicy(initialInterval: .milliseconds(10))))]
        }
        worker.registerActivity("step") { context in
            let input = context.task.input?.singleData ?? []
            if context.task.attempt == 1 && input.reduce(0, { $0 &+ Int($1) }) % 10 == 0 {
                throw ActivityFailure(.application("first attempt fails (torture)", type: "Transient"))
            }
            return .binary(input + Array("+\(context.task.activityID.last.map(String.init) ?? "?")".utf8))
        }
        return worker
    }

    static func runChild(directory: String, seed: UInt64, round: Int, starters: Int) async -> Int32 {
        let engine: SpoolEngine
        do {
            engine = try SpoolEngine.open(directory: directory, configuration: configuration(timers: true))
        } catch {
            writeStandardError("spool torture child: open failed: \(error)\n")
            return 2
        }
        let workers = (0..<2).map { makeWorker(engine, identity: "torture-\(round)-\($0)") }
        let running = workers.map { worker in Task { await worker.run() } }
        let deadline = monotonicNanoseconds() + 60_000_000_000
        await withTaskGroup(of: Void.self) { group in
            for starter in 0..<starters {
                group.addTask {
                    var next = 0
                    while monotonicNanoseconds() < deadline {
                        let id = "wf-\(round)-\(starter)-\(next)"
                        next += 1
                        do {
                            _ = try await engine.startWorkflowExecution(
                                StartWorkflowExecutionRequest(workflowID: id, workflowType: workflowType, taskQueue: taskQueue,
                                                              input: .binary(Array(id.utf8))))
                            TortureChild.emit("S \(id)\n")
                        } catch {
                            writeStandardError("spool torture child: start failed: \(error)\n")
                            return
                        }
                    }
                }
            }
        }
        for worker in workers { await worker.stop() }
        for task in running { await task.value }
        try? await engine.close()
        return 0
    }
}

/// What the workflow workload promised, and what every reopen must show.
struct WorkflowTortureLedger {
    /// Workflow ids whose start was acknowledged, or that a reopen showed.
    var started: Set<String> = []
    /// The event types of every history seen at a reopen: a later reopen must show the same
    /// events first (a history only grows).
    var histories: [String: [EventType]] = [:]
    var acknowledgedStarts = 0
    var completedAtEnd = 0
    var events = 0

    mutating func apply(_ lines: [String], round: Int, into ledger: inout TortureLedger) {
        for line in lines {
            let parts = line.split(separator: " ")
            guard parts.count == 2, parts[0] == "S" else {
                ledger.problem("round \(round): unreadable child line '\(line)'")
                continue
            }
            acknowledgedStarts += 1
            started.insert(String(parts[1]))
        }
    }

    /// Reopens the engine (timers off: nothing moves while it is checked) and checks every run.
    mutating func verify(directory: String, round: Int, timers: Bool = false, into ledger: inout TortureLedger) async -> SpoolEngine? {
        let engine: SpoolEngine
        do {
            engine = try SpoolEngine.open(directory: directory, configuration: WorkflowTorture.configuration(timers: timers))
        } catch {
            ledger.failedOpens += 1
            ledger.problem("round \(round): the engine did not open: \(error)")
            return nil
        }
        let listed = engine.listWorkflowExecutions()
        var seen: Set<String> = []
        events = 0
        for info in listed {
            let id = info.execution.workflowID
            if !seen.insert(id).inserted {
                ledger.duplicated += 1
                ledger.problem("round \(round): workflow \(id) has two runs")
            }
            started.insert(id)
            guard let history = await history(of: info.execution, engine: engine, round: round, into: &ledger) else { continue }
            events += history.count
            check(history, of: id, round: round, into: &ledger)
        }
        for id in started where !seen.contains(id) {
            ledger.lost += 1
            ledger.problem("round \(round): workflow \(id) was started (acknowledged) and is gone")
        }
        ledger.records = listed.count
        return engine
    }

    private func history(of execution: WorkflowExecution, engine: SpoolEngine, round: Int,
                         into ledger: inout TortureLedger) async -> [HistoryEvent]? {
        var events: [HistoryEvent] = []
        var token: [UInt8]? = nil
        do {
            repeat {
                let page = try await engine.getWorkflowExecutionHistory(execution: execution, nextPageToken: token)
                events += page.history
                token = page.nextPageToken
                if page.history.isEmpty { break }
            } while token != nil
        } catch {
            ledger.corrupt += 1
            ledger.problem("round \(round): the history of \(execution.workflowID) cannot be read: \(error)")
            return nil
        }
        return events
    }

    /// Temporal's rules for one history, and that it extends what earlier reopens showed.
    private mutating func check(_ history: [HistoryEvent], of id: String, round: Int, into ledger: inout TortureLedger) {
        func fail(_ what: String) {
            ledger.corrupt += 1
            ledger.problem("round \(round): workflow \(id): \(what)")
        }
        for (index, event) in history.enumerated() where event.eventID != Int64(index + 1) {
            return fail("event \(index + 1) has id \(event.eventID)")
        }
        guard history.first?.eventType == .workflowExecutionStarted else { return fail("does not begin with WorkflowExecutionStarted") }
        let closes = history.indices.filter { WorkflowTorture.closeTypes.contains(history[$0].eventType) }
        if closes.count > 1 || (closes.first.map { $0 != history.count - 1 } ?? false) {
            return fail("close events at \(closes.map { $0 + 1 }) of \(history.count)")
        }
        var scheduled: Set<Int64> = []
        var outcomes: Set<Int64> = []
        for event in history {
            switch event.attributes {
            case .activityTaskScheduled: scheduled.insert(event.eventID)
            case .activityTaskCompleted(let a):
                guard scheduled.contains(a.scheduledEventID) else { return fail("ActivityTaskCompleted \(event.eventID) names no scheduled activity") }
                guard outcomes.insert(a.scheduledEventID).inserted else { return fail("activity \(a.scheduledEventID) completed twice") }
            default: break
            }
        }
        if case .workflowExecutionCompleted(let completed) = history.last?.attributes,
           completed.result?.singleData != WorkflowTorture.expectedResult(id) {
            fail("completed with \(String(decoding: completed.result?.singleData ?? [], as: UTF8.self)), not \(String(decoding: WorkflowTorture.expectedResult(id), as: UTF8.self))")
        }
        let types = history.map(\.eventType)
        if let earlier = histories[id], !types.starts(with: earlier) {
            ledger.lost += 1
            ledger.problem("round \(round): workflow \(id): the history seen at an earlier open (\(earlier.count) events) is not a prefix of this one")
        }
        histories[id] = types
    }

    /// After the last kill: runs workers until every workflow has closed (or `seconds` pass), then
    /// checks every history once more; each must have completed with its expected result.
    mutating func drain(directory: String, seconds: Int, into ledger: inout TortureLedger) async {
        guard let engine = await verify(directory: directory, round: -1, timers: true, into: &ledger) else { return }
        let workers = (0..<2).map { WorkflowTorture.makeWorker(engine, identity: "torture-drain-\($0)") }
        let running = workers.map { worker in Task { await worker.run() } }
        let deadline = monotonicNanoseconds() + UInt64(seconds) * 1_000_000_000
        while monotonicNanoseconds() < deadline && !engine.listWorkflowExecutions(status: .running).isEmpty {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for worker in workers { await worker.stop() }
        for task in running { await task.value }
        let completed = engine.listWorkflowExecutions(status: .completed)
        completedAtEnd = completed.count
        for info in engine.listWorkflowExecutions() where info.status != .completed {
            ledger.problem("after the drain: workflow \(info.execution.workflowID) is \(info.status), not completed")
            ledger.lost += 1
        }
        for info in completed {
            if let history = await history(of: info.execution, engine: engine, round: -1, into: &ledger) {
                check(history, of: info.execution.workflowID, round: -1, into: &ledger)
            }
        }
        try? await engine.close()
    }
}

extension WorkflowTortureLedger: KillLoopLedger {
    mutating func check(directory: String, round: Int, closingCleanly: Bool, into ledger: inout TortureLedger) async -> Bool {
        guard let engine = await verify(directory: directory, round: round, into: &ledger) else { return false }
        if closingCleanly { try? await engine.close() } else { await engine.abandon() }
        return true
    }

    func progress(_ ledger: TortureLedger) -> String {
        "\(acknowledgedStarts) starts, \(ledger.records) runs, \(events) events, lost \(ledger.lost)"
    }
}

extension WorkflowTortureLedger: DamageProbing {
    var storeSubdirectory: String { "" }
    var logName: String { "history" }

    /// Opens the engine of a damaged copy: every run started (acknowledged, or shown by a reopen)
    /// must be listed, with at least the events the last reopen showed.
    func probe(data: String) async -> DamageProbe {
        let engine: SpoolEngine
        do {
            engine = try SpoolEngine.open(directory: data, configuration: WorkflowTorture.configuration(timers: false))
        } catch {
            return .refused("\(error)")
        }
        var lengths: [String: Int64] = [:]
        for info in engine.listWorkflowExecutions() { lengths[info.execution.workflowID] = info.historyLength }
        try? await engine.close()
        var missing: [String] = []
        for id in started.sorted() {
            guard let length = lengths[id] else { missing.append("workflow \(id)"); continue }
            if let seen = histories[id], length < Int64(seen.count) {
                missing.append("workflow \(id): \(length) events, \(seen.count) before the damage")
            }
        }
        return .opened(missing: missing, missingOffsets: [])
    }
}
