#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spool
import SpoolLog
import Synchronization
import SpoolToolSupport

/// `spool demo`: an order-processing workflow run end to end by in-process workers on an
/// embedded data directory, its history printed as a table.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a small order-processing workflow on an embedded data directory and print its history.",
        discussion: """
            Opens the engine on --data (created if needed), runs two in-process workers and starts \
            workflow order-<time>: reserve-inventory, then charge-payment (its first attempt fails \
            with a retryable error and the retry policy runs it again after 200 ms), then ship-order \
            (it heartbeats its progress). While ship-order runs the demo sends two updates: an empty gift note \
            the workflow's validator rejects (nothing written) and a gift note it accepts \
            (WorkflowExecutionUpdateAccepted and ...Completed in the history). Then a child workflow send-invoice \
            on its own task queue (billing) whose result completes the order. Prints the history, the heartbeats \
            the engine recorded, the updates' outcomes, the child's history, and a summary. Each run starts a new \
            workflow id, so it can be run again on the same directory.
            """
    )

    @Option(name: .long, help: "The data directory (created if missing).")
    var data = "./spool-data"

    @Flag(name: .long, help: "Print the history as JSON lines instead of a table.")
    var json = false

    static let taskQueue = "orders"
    static let workflowType = "order-processing"
    static let steps = ["reserve-inventory", "charge-payment", "ship-order"]
    /// The child workflow the order starts once shipped, and the task queue its worker polls.
    static let invoiceWorkflowType = "send-invoice"
    static let billingTaskQueue = "billing"
    /// How long the demo waits for the workflow before it gives up.
    static let deadline = Duration.seconds(60)

    func run() async throws {
        let directory = DataDirectory(data)
        try directory.requireDataDirectory(command: "demo", create: true)
        let engine: SpoolEngine
        do {
            engine = try SpoolEngine.open(directory: directory.path)
        } catch {
            printError("spool demo: \(explainOpenFailure(error, directory: directory))")
            throw WorkflowExit.unusableDirectory
        }
        let outcome: DemoOutcome
        do {
            outcome = try await Self.runOrder(on: engine)
        } catch {
            printError("spool demo: \(directory): \(error)")
            try? await engine.close()
            throw ExitCode(1)
        }
        let executions = engine.listWorkflowExecutions().count
        try await closeEngine(engine, command: "demo")

        // A demo whose order did not complete says so with its status, after the history that shows why.
        let failed = outcome.status != .completed
        if json {
            for line in HistoryRendering.jsonLines(outcome.history) { print(line) }
            if failed { throw ExitCode(1) }
            return
        }
        print("spool demo: workflow '\(outcome.execution.workflowID)' run \(outcome.execution.runID) in \(directory)")
        print("")
        for line in HistoryRendering.table(outcome.history) { print(line) }
        print("")
        if outcome.heartbeats.isEmpty {
            print("heartbeats: none seen by describe while ship-order ran (heartbeats are not history events)")
        } else {
            print("heartbeats of ship-order recorded by the engine (seen with describe; heartbeats are not history events):")
            for beat in outcome.heartbeats { print("  \(beat)") }
        }
        print("query 'progress', answered by a worker from the history: \(outcome.progress)")
        for line in outcome.updates { print(line) }
        if let child = outcome.child {
            print("")
            print("child workflow '\(child.workflowID)' run \(child.runID) (task queue \(Self.billingTaskQueue)), "
                  + "started by the order and reported back to it:")
            for line in HistoryRendering.table(outcome.childHistory) { print("  " + line) }
        }
        var activityTypes: [Int64: String] = [:]
        var retried: [String] = []
        for event in outcome.history {
            switch event.attributes {
            case .activityTaskScheduled(let scheduled):
                activityTypes[event.eventID] = scheduled.activityType
            case .activityTaskStarted(let started) where started.attempt > 1:
                retried.append("\(activityTypes[started.scheduledEventID] ?? "activity \(started.scheduledEventID)") succeeded on attempt "
                               + "\(started.attempt)" + (started.lastFailure.map { " after '\($0)'" } ?? ""))
            default:
                break
            }
        }
        print("")
        print("\(outcome.status): \(outcome.history.count) events in \(Int((outcome.elapsed.seconds * 1000).rounded())) ms; "
              + "\(Self.steps.count) activities, \(retried.isEmpty ? "no retries" : retried.joined(separator: "; ")); "
              + "\(outcome.heartbeats.count) heartbeat\(outcome.heartbeats.count == 1 ? "" : "s") seen; "
              + "\(outcome.child == nil ? "no child workflow" : "1 child workflow"); "
              + "\(directory) holds \(executions) workflow execution\(executions == 1 ? "" : "s")")
        if failed {
            printError("spool demo: \(directory): workflow '\(outcome.execution.workflowID)' ended \(outcome.status), not Completed")
            throw ExitCode(1)
        }
    }

    struct DemoOutcome {
        var execution: WorkflowExecution
        var status: WorkflowExecutionStatus
        var history: [HistoryEvent]
        var heartbeats: [String]
        /// The worker's answer to the `progress` query.
        var progress: String
        /// What became of the demo's updates, one line each.
        var updates: [String]
        var elapsed: Duration
        /// The child workflow the order started, and its history.
        var child: WorkflowExecution? = nil
        var childHistory: [HistoryEvent] = []
    }

    /// Runs one order on `engine` with two workers; returns its history once it closed.
    static func runOrder(on engine: SpoolEngine) async throws -> DemoOutcome {
        let workers = (1...2).map { SpoolWorker(engine: engine, taskQueue: taskQueue, identity: "demo-worker-\($0)") }
        // The updates go out while ship-order runs (the run has no workflow task then), and
        // ship-order waits for them: the same history on every run of the demo.
        let updatesDone = DemoFlag()
        for worker in workers {
            worker.registerWorkflow(workflowType, orderWorkflow)
            // A query the worker answers from the run's history, whether the run is open or closed.
            worker.registerQuery(workflowType, "progress") { context in
                let done = context.history.filter { $0.eventType == .activityTaskCompleted }.count
                return .binary("\(done) of \(steps.count) steps done")
            }
            // An update the workflow handles: its validator rejects an empty note (nothing is
            // written); an accepted note is answered at once.
            worker.registerUpdate(workflowType, "set-gift-note", validator: { context in
                guard let note = context.args?.singleData, !note.isEmpty else { throw GiftNoteError.empty }
            }) { context in
                .binary("gift note set: \(String(decoding: context.args?.singleData ?? [], as: UTF8.self))")
            }
            worker.registerActivity("reserve-inventory") { context in
                .binary("reserved 2 × widget for \(String(decoding: context.task.input?.singleData ?? [], as: UTF8.self))")
            }
            worker.registerActivity("charge-payment") { context in
                if context.task.attempt == 1 {
                    // The first attempt fails the way a flaky gateway does, with the error that
                    // caused it as its cause; the retry policy runs it again.
                    throw ActivityFailure(.application("payment gateway timed out (simulated)", type: "GatewayTimeout",
                                                       cause: .application("no answer within 2 s from gateway.example", type: "SocketTimeout")))
                }
                return .binary("charged 42.00 EUR on attempt \(context.task.attempt)")
            }
            worker.registerActivity("ship-order") { context in
                let parcels = 3
                for parcel in 1...parcels {
                    try await Task.sleep(for: .milliseconds(150))
                    if try await context.heartbeat(.binary("packed \(parcel)/\(parcels) parcels")) { throw CancellationError() }
                }
                try await Task.sleep(for: .milliseconds(150))
                // At most 3 s: well within the heartbeat timeout.
                for _ in 0..<300 where !updatesDone.isSet { try await Task.sleep(for: .milliseconds(10)) }
                return .binary("shipped \(parcels) parcels")
            }
        }
        // The child workflow's worker polls its own task queue.
        let billing = SpoolWorker(engine: engine, taskQueue: billingTaskQueue, identity: "demo-billing-worker")
        billing.registerWorkflow(invoiceWorkflowType) { context in
            [.completeWorkflowExecution(.init(result: .binary(
                "invoice sent for \(String(decoding: context.input?.singleData ?? [], as: UTF8.self))")))]
        }
        let running = (workers + [billing]).map { worker in Task { await worker.run() } }
        defer { for task in running { task.cancel() } }

        let started = ContinuousClock.now
        let workflowID = "order-\(currentMilliseconds())"
        let run = try await engine.startWorkflowExecution(
            StartWorkflowExecutionRequest(workflowID: workflowID, workflowType: workflowType, taskQueue: taskQueue,
                                          input: .binary(workflowID), identity: "spool-demo",
                                          workflowIDConflictPolicy: .fail))
        let execution = WorkflowExecution(workflowID: workflowID, runID: run.runID)
        let updating = Task { () -> [String] in
            defer { updatesDone.set() }
            // Once ship-order heartbeats, the run waits on it: no workflow task is outstanding.
            for _ in 0..<1000 {
                let description = try? engine.describeWorkflowExecution(execution: execution)
                if description?.pendingActivities.contains(where: { $0.activityType == "ship-order" && $0.heartbeatDetails != nil }) == true
                    || description?.executionInfo.status.isClosed == true { break }
                try? await Task.sleep(for: .milliseconds(10))
            }
            // The rejected one first: the run is idle, so it goes out on a speculative task that
            // leaves no trace; the accepted one after it.
            return await sendUpdates(engine, execution: execution)
        }
        // Heartbeats are state, not events: watch them through describe while the workflow runs.
        let watcher = Task { () -> [String] in
            var seen: [String] = []
            while !Task.isCancelled {
                if let description = try? engine.describeWorkflowExecution(execution: execution) {
                    for activity in description.pendingActivities where activity.activityType == "ship-order" {
                        if let details = activity.heartbeatDetails {
                            let text = String(decoding: details.singleData ?? [], as: UTF8.self)
                            if seen.last != text { seen.append(text) }
                        }
                    }
                    if description.executionInfo.status.isClosed { break }
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return seen
        }
        let close = try await engine.getWorkflowExecutionHistory(execution: execution, waitNewEvent: true,
                                                                 historyEventFilterType: .closeEvent, timeout: deadline)
        let elapsed = ContinuousClock.now - started
        let updates = await updating.value
        watcher.cancel()
        let heartbeats = await watcher.value
        // Asked while the workers still run: a query on a closed run goes to a worker too.
        let progress: String
        do {
            let answer = try await engine.queryWorkflow(execution: execution, queryType: "progress", timeout: .seconds(10))
            progress = String(decoding: answer.queryResult?.singleData ?? [], as: UTF8.self)
        } catch {
            progress = "not answered (\(error))"
        }
        for worker in workers + [billing] { await worker.stop() }
        for task in running { await task.value }
        guard !close.history.isEmpty else {
            throw SpoolError(.invalidArgument, "the workflow did not close within \(deadline)", workflowID: workflowID, runID: run.runID)
        }
        let history = try await readHistory(engine, execution: execution)
        let status = try engine.describeWorkflowExecution(execution: execution).executionInfo.status
        var outcome = DemoOutcome(execution: execution, status: status, history: history, heartbeats: heartbeats, progress: progress,
                                  updates: updates, elapsed: elapsed)
        for event in history {
            if case .childWorkflowExecutionStarted(let started) = event.attributes {
                outcome.child = started.workflowExecution
                outcome.childHistory = try await readHistory(engine, execution: started.workflowExecution)
            }
        }
        return outcome
    }

    /// Sends the demo's two updates and waits for their outcomes: one line each.
    static func sendUpdates(_ engine: SpoolEngine, execution: WorkflowExecution) async -> [String] {
        var updates: [String] = []
        for (updateID, note) in [("empty-gift-note", ""), ("gift-note", "Happy birthday!")] {
            do {
                let response = try await engine.updateWorkflowExecution(
                    workflowID: execution.workflowID, runID: execution.runID, updateID: updateID, name: "set-gift-note", input: .binary(note),
                    identity: "spool-demo", waitFor: .completed, timeout: .seconds(20))
                switch response.outcome {
                case .success(let result)?:
                    updates.append("update 'set-gift-note' (\(updateID)): accepted, result \"\(String(decoding: result?.singleData ?? [], as: UTF8.self))\"")
                case .failure(let failure)?:
                    updates.append("update 'set-gift-note' (\(updateID)): rejected by the workflow's validator (\(failure.message)); nothing written")
                case nil:
                    updates.append("update 'set-gift-note' (\(updateID)): still \(response.stage) after 20 s")
                }
            } catch {
                updates.append("update 'set-gift-note' (\(updateID)): failed (\(error))")
            }
        }
        return updates
    }

    /// The order workflow: the steps in sequence, each scheduled when the one before completed;
    /// a step that fails for good fails the order. Deterministic: a function of the history only.
    static let orderWorkflow: WorkflowDefinition = { context in
        var completed = 0
        for event in context.history {
            switch event.attributes {
            case .activityTaskCompleted:
                completed += 1
            case .activityTaskFailed(let failed):
                // As an SDK reports it: the order's failure, caused by the activity's.
                return [.failWorkflowExecution(.init(failure: .application("a step failed", type: "OrderFailed", cause: failed.failure)))]
            case .activityTaskTimedOut(let timedOut):
                return [.failWorkflowExecution(.init(failure: .application("a step timed out", type: "OrderFailed", cause: timedOut.failure)))]
            default:
                break
            }
        }
        guard completed < steps.count else {
            // Shipped: a child workflow on the billing queue sends the invoice; its result completes the order.
            let invoiceID = "invoice-\(context.workflowExecution.workflowID)"
            switch context.child(invoiceID) {
            case .notInitiated:
                return [.startChildWorkflowExecution(.init(
                    workflowID: invoiceID, workflowType: invoiceWorkflowType, taskQueue: billingTaskQueue,
                    input: .binary(context.workflowExecution.workflowID), workflowRunTimeout: .seconds(30),
                    parentClosePolicy: .terminate))]
            case .initiated, .started:
                return []
            case .closed(.completed(let result), _):
                return [.completeWorkflowExecution(.init(result: result))]
            case .closed(.failed(let failure, _), _):
                return [.failWorkflowExecution(.init(failure: .application("the invoice failed", type: "OrderFailed", cause: failure)))]
            case .closed(let outcome, _):
                return [.failWorkflowExecution(.init(failure: .application("the invoice ended: \(outcome.eventType)", type: "OrderFailed")))]
            case .startFailed(let cause):
                return [.failWorkflowExecution(.init(failure: .application("the invoice did not start: \(cause)", type: "OrderFailed")))]
            }
        }
        // A task brought by something else (an update) while a step runs: nothing new to do.
        if context.history.filter({ $0.eventType == .activityTaskScheduled }).count > completed { return [] }
        let step = steps[completed]
        return [.scheduleActivityTask(.init(
            activityID: step, activityType: step, taskQueue: taskQueue, input: context.input,
            startToCloseTimeout: .seconds(10), heartbeatTimeout: step == "ship-order" ? .seconds(5) : nil,
            retryPolicy: RetryPolicy(initialInterval: .milliseconds(200), backoffCoefficient: 2, maximumAttempts: 5)))]
    }
}

/// Set once the demo's updates are answered.
final class DemoFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

/// Why the demo's gift-note validator rejects an update.
enum GiftNoteError: Error, CustomStringConvertible {
    case empty
    var description: String { "the gift note is empty" }
}

func currentMilliseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
}
