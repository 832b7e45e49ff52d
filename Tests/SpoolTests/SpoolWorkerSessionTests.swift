import Synchronization
import Testing
@testable import Spool

/// Issue 21, point 6: sessions in `SpoolWorker`, as the Go SDK builds them
/// (`internal/session.go`): a creation activity on the queue's `__internal_session_creation`
/// queue, held and heartbeated by one worker; the session's activities on that worker's own
/// queue; a completion activity that frees the slot; a dead worker's sessions fail on their
/// heartbeat timeout.
@Suite struct SpoolWorkerSessionTests {
    /// Per worker: sessions inside their first step and not past their last, and the most at once.
    final class OpenCount: Sendable {
        private let state = Mutex<(open: Int, peak: Int)>((0, 0))
        func enter() { state.withLock { $0.open += 1; $0.peak = max($0.peak, $0.open) } }
        func leave() { state.withLock { $0.open -= 1 } }
        var peak: Int { state.withLock { $0.peak } }
    }

    /// The ids of the ActivityTaskScheduled events of activities of type `type`.
    static func scheduled(_ history: [HistoryEvent], type: String) -> [Int64] {
        history.compactMap { event in
            guard case .activityTaskScheduled(let a) = event.attributes, a.activityType == type else { return nil }
            return event.eventID
        }
    }

    static func completedCount(_ history: [HistoryEvent], of scheduledIDs: [Int64]) -> Int {
        history.filter { event in
            guard case .activityTaskCompleted(let a) = event.attributes else { return false }
            return scheduledIDs.contains(a.scheduledEventID)
        }.count
    }

    /// Creates session "s", runs `steps` activities of type "step" in it one after the other
    /// (input: the step's index), completes the session, waits for the creation activity to
    /// complete, then completes the run. When the session fails, runs "onSessionFailed" on the
    /// run's own queue with the failure's message and then completes with "failed: <message>".
    static func sessionWorkflow(steps: Int) -> WorkflowDefinition {
        { context in
            let history = context.history
            switch context.session("s") {
            case .none:
                return [try context.createSession("s", heartbeatTimeout: .seconds(20))]
            case .pending:
                return []
            case .open:
                let stepIDs = scheduled(history, type: "step")
                if completedCount(history, of: stepIDs) < stepIDs.count { return [] }
                if stepIDs.count < steps {
                    return [try context.scheduleActivity(inSession: "s", .init(activityID: "step-\(stepIDs.count)", activityType: "step",
                                                                               input: .binary("\(stepIDs.count)"),
                                                                               startToCloseTimeout: .seconds(30)))]
                }
                return context.completeSession("s")
            case .completed:
                let creation = scheduled(history, type: Session.creationActivityType)
                guard completedCount(history, of: creation) == 1 else { return [] }
                return [.completeWorkflowExecution(.init(result: .binary("done")))]
            case .failed(let failure):
                let handlers = scheduled(history, type: "onSessionFailed")
                if handlers.isEmpty {
                    return [scheduleActivity("handler", type: "onSessionFailed", queue: "q", input: .binary(failure.message))]
                }
                guard completedCount(history, of: handlers) == 1 else { return [] }
                return [.completeWorkflowExecution(.init(result: .binary("failed: \(failure.message)")))]
            }
        }
    }

    func closeEvent(_ h: EngineHarness, _ run: WorkflowExecution) async throws -> HistoryEvent? {
        try await h.engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true, historyEventFilterType: .closeEvent).history.first
    }

    func result(_ event: HistoryEvent?) -> String? {
        guard case .workflowExecutionCompleted(let completed)? = event?.attributes else { return nil }
        return completed.result?.first.map { String(decoding: $0.data, as: UTF8.self) }
    }

    func createdSignals(_ h: EngineHarness, _ run: WorkflowExecution) async throws -> [WorkflowExecutionSignaledEventAttributes] {
        try await h.history(run).compactMap { event in
            guard case .workflowExecutionSignaled(let s) = event.attributes, s.signalName == Session.createdSignalName else { return nil }
            return s
        }
    }

    @Test func tenSessionsOnAWorkerLimitedToThreeNeverHaveMoreThanThreeOpen() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1",
                                 sessions: SessionWorkerOptions(maxConcurrentSessions: 3, heartbeatInterval: .milliseconds(10)))
        let count = OpenCount()
        let gate = Gate()
        let steps = 3
        worker.registerWorkflow("session", Self.sessionWorkflow(steps: steps))
        worker.registerActivity("step") { context in
            let index = Int(String(decoding: context.task.input?.first?.data ?? [], as: UTF8.self)) ?? -1
            if index == 0 {
                count.enter()
                await gate.wait()
            }
            try await Task.sleep(for: .milliseconds(2))
            if index == steps - 1 { count.leave() }
            return nil
        }
        let running = Task { await worker.run() }
        var runs: [WorkflowExecution] = []
        for index in 0..<10 { runs.append(try await h.start("s-\(index)", type: "session")) }

        // The first step of each session waits at the gate: three sessions are held, and the
        // other seven stay pending (no worker signalled them) while the three are open.
        try await eventually("three sessions in their first step") { count.peak >= 3 }
        #expect(count.peak == 3)
        try await Task.sleep(for: .milliseconds(200))
        var signalled = 0
        for run in runs { signalled += try await createdSignals(h, run).count }
        #expect(signalled == 3)
        #expect(worker.openSessions.withLock { $0.count } == 3)

        gate.open()
        for run in runs {
            #expect(result(try await closeEvent(h, run)) == "done", "\(run)")
        }
        #expect(count.peak == 3)

        for run in runs {
            let history = try await h.history(run)
            let signal = try #require(try await createdSignals(h, run).first)
            let sessionQueue = String(decoding: signal.input?[1].data ?? [], as: UTF8.self)
            #expect(sessionQueue == worker.sessionTaskQueue)
            #expect(signal.input?[2].data == Array("w1".utf8))
            var creationID: Int64 = 0
            var sessionActivityIDs: [Int64] = []
            for event in history {
                guard case .activityTaskScheduled(let a) = event.attributes else { continue }
                switch a.activityType {
                case Session.creationActivityType:
                    creationID = event.eventID
                    #expect(a.taskQueue == "q__internal_session_creation")
                    #expect(a.heartbeatTimeout == .seconds(20))
                    #expect(a.retryPolicy.maximumAttempts == 1)
                case "step", Session.completionActivityType:
                    sessionActivityIDs.append(event.eventID)
                    #expect(a.taskQueue == sessionQueue, "\(a.activityID) went to \(a.taskQueue)")
                default:
                    Issue.record("unexpected activity \(a.activityType)")
                }
            }
            #expect(sessionActivityIDs.count == steps + 1)
            // Every activity of the session, and its creation, was started by the same worker.
            let starters = history.compactMap { event -> String? in
                guard case .activityTaskStarted(let a) = event.attributes else { return nil }
                return a.identity
            }
            #expect(starters == Array(repeating: "w1", count: steps + 2))
            // The creation activity completed after the completion activity was scheduled.
            let creationClose = history.first { event in
                if case .activityTaskCompleted(let a) = event.attributes { return a.scheduledEventID == creationID }
                return false
            }
            #expect(creationClose != nil && creationClose!.eventID > sessionActivityIDs.last!)
        }
        await worker.stop()
        await running.value
    }

    @Test func activitiesOfOneSessionRunOnTheWorkerThatHoldsIt() async throws {
        let h = try EngineHarness()
        var workers: [SpoolWorker] = []
        for name in ["w1", "w2", "w3"] {
            let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: name,
                                     sessions: SessionWorkerOptions(maxConcurrentSessions: 2, heartbeatInterval: .milliseconds(10)))
            worker.registerWorkflow("session", Self.sessionWorkflow(steps: 4))
            worker.registerActivity("step") { _ in .binary(name) }
            workers.append(worker)
        }
        let running = workers.map { worker in Task { await worker.run() } }
        var runs: [WorkflowExecution] = []
        for index in 0..<9 { runs.append(try await h.start("s-\(index)", type: "session")) }
        for run in runs {
            #expect(result(try await closeEvent(h, run)) == "done", "\(run)")
            let history = try await h.history(run)
            let starters = history.compactMap { event -> String? in
                guard case .activityTaskStarted(let a) = event.attributes else { return nil }
                return a.identity
            }
            // Creation, four steps and the completion: one worker, the one that signalled.
            let holder = String(decoding: try #require(try await createdSignals(h, run).first?.input?[2].data), as: UTF8.self)
            #expect(starters.count == 6)
            #expect(Set(starters) == [holder], "\(run): \(starters)")
        }
        for worker in workers { await worker.stop() }
        for task in running { await task.value }
    }

    @Test func killingTheWorkerFailsItsSessionsOnTheHeartbeatTimeoutAndTheWorkflowHandlesIt() async throws {
        let h = try EngineHarness()
        let doomed = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "doomed", stickyCacheSize: 0,
                                 sessions: SessionWorkerOptions(maxConcurrentSessions: 3, heartbeatInterval: .milliseconds(10)))
        let survivor = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "survivor", stickyCacheSize: 0)
        let gate = Gate()
        let inStep = Atomic<Int>(0)
        let handled = Mutex<[String]>([])
        for worker in [doomed, survivor] { worker.registerWorkflow("session", Self.sessionWorkflow(steps: 2)) }
        doomed.registerActivity("step") { _ in
            inStep.add(1, ordering: .relaxed)
            await gate.wait()
            return nil
        }
        survivor.registerActivity("onSessionFailed") { context in
            handled.withLock { $0.append(String(decoding: context.task.input?.first?.data ?? [], as: UTF8.self)) }
            return nil
        }
        // Only the doomed worker runs at first, so it holds every session.
        let doomedRun = Task { await doomed.run() }
        var runs: [WorkflowExecution] = []
        for index in 0..<3 { runs.append(try await h.start("s-\(index)", type: "session")) }
        try await eventually("every session in its first step") { inStep.load(ordering: .relaxed) == 3 }
        let survivorRun = Task { await survivor.run() }

        // The process dies: no more polls, heartbeats or answers.
        doomed.kill()
        try await eventually("the dead worker's session loops ended") { doomed.openSessions.withLock { $0.isEmpty } }

        // Just short of the heartbeat timeout, the sessions are still open.
        await h.advance(.seconds(19))
        for run in runs {
            #expect(!(try await h.eventTypes(run)).contains(.activityTaskTimedOut))
        }
        // At the heartbeat timeout, the creation activities time out and each workflow's
        // handler runs on the surviving worker.
        await h.advance(.seconds(1))
        for run in runs {
            let close = try await closeEvent(h, run)
            #expect(result(close) == "failed: activity Heartbeat timeout", "\(run): \(String(describing: close))")
            let history = try await h.history(run)
            let timeouts = history.compactMap { event -> Failure? in
                guard case .activityTaskTimedOut(let a) = event.attributes else { return nil }
                return a.failure
            }
            #expect(timeouts.count == 1)
            guard case .timeout(let info)? = timeouts.first?.info else {
                Issue.record("\(run): the session did not fail on a timeout: \(timeouts)"); continue
            }
            #expect(info.timeoutType == .heartbeat)
        }
        #expect(handled.withLock { $0.count } == 3)

        gate.open()
        await survivor.stop()
        await survivorRun.value
        await doomedRun.value
    }

    @Test func stoppingAWorkerFailsItsOpenSessionsAtOnce() async throws {
        let h = try EngineHarness()
        let leaving = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "leaving", stickyCacheSize: 0,
                                  sessions: SessionWorkerOptions(maxConcurrentSessions: 2, heartbeatInterval: .milliseconds(10)))
        let staying = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "staying", stickyCacheSize: 0)
        let gate = Gate()
        let inStep = Atomic<Int>(0)
        for worker in [leaving, staying] { worker.registerWorkflow("session", Self.sessionWorkflow(steps: 1)) }
        leaving.registerActivity("step") { _ in
            inStep.add(1, ordering: .relaxed)
            await gate.wait()
            return nil
        }
        staying.registerActivity("onSessionFailed") { _ in nil }
        let leavingRun = Task { await leaving.run() }
        let run = try await h.start("s", type: "session")
        try await eventually("the session's step running") { inStep.load(ordering: .relaxed) == 1 }
        let stayingRun = Task { await staying.run() }
        // A clean stop fails the open session without waiting for its heartbeat timeout.
        await leaving.stop()
        let close = try await closeEvent(h, run)
        #expect(result(close) == "failed: worker 'leaving' stopped with session 's' open")
        let failures = try await h.history(run).compactMap { event -> Failure? in
            guard case .activityTaskFailed(let a) = event.attributes else { return nil }
            return a.failure
        }
        #expect(failures.count == 1)
        if case .application(let info)? = failures.first?.info { #expect(info.type == "SessionWorkerStopped") } else {
            Issue.record("not an application failure: \(failures)")
        }
        gate.open()
        await staying.stop()
        await stayingRun.value
        await leavingRun.value
    }

    @Test func completingASessionReleasesItsSlot() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1",
                                 sessions: SessionWorkerOptions(maxConcurrentSessions: 1, heartbeatInterval: .milliseconds(10)))
        worker.registerWorkflow("session", Self.sessionWorkflow(steps: 1))
        worker.registerActivity("step") { _ in nil }
        let running = Task { await worker.run() }
        // One slot: the second session is created only once the first is completed.
        let first = try await h.start("first", type: "session")
        let second = try await h.start("second", type: "session")
        for run in [first, second] {
            #expect(result(try await closeEvent(h, run)) == "done", "\(run)")
        }
        #expect(worker.openSessions.withLock { $0.isEmpty })
        // A third after both: the slot is free again.
        let third = try await h.start("third", type: "session")
        #expect(result(try await closeEvent(h, third)) == "done")
        // The history of a completed session, as the Go SDK writes it: creation scheduled, the
        // worker's signal, the session's activity, the completion activity, the creation completed.
        let history = try await h.history(first)
        let activities = history.compactMap { event -> String? in
            switch event.attributes {
            case .activityTaskScheduled(let a): return "scheduled \(a.activityType)"
            case .activityTaskCompleted(let a):
                let type = history.first { $0.eventID == a.scheduledEventID }.flatMap { event -> String? in
                    if case .activityTaskScheduled(let s) = event.attributes { return s.activityType }
                    return nil
                }
                return "completed \(type ?? "?")"
            case .workflowExecutionSignaled(let s): return "signal \(s.signalName)"
            default: return nil
            }
        }
        #expect(activities == ["scheduled \(Session.creationActivityType)", "signal \(Session.createdSignalName)",
                               "scheduled step", "completed step", "scheduled \(Session.completionActivityType)",
                               "completed \(Session.completionActivityType)", "completed \(Session.creationActivityType)"]
                || activities == ["scheduled \(Session.creationActivityType)", "signal \(Session.createdSignalName)",
                                  "scheduled step", "completed step", "scheduled \(Session.completionActivityType)",
                                  "completed \(Session.creationActivityType)", "completed \(Session.completionActivityType)"])
        await worker.stop()
        await running.value
    }

    @Test func sessionCommandsRejectBadInputWithTypedErrors() throws {
        let started = HistoryEvent(eventID: 1, eventTime: Timestamp(nanosecondsSinceEpoch: 1_750_000_000_000_000_000), attributes: .workflowExecutionStarted(
            .init(workflowType: "session", taskQueue: "q", input: nil, workflowRunTimeout: nil, workflowTaskTimeout: .seconds(10),
                  continuedExecutionRunID: "", firstExecutionRunID: "r", identity: "test", requestID: "req", attempt: 1)))
        let context = WorkflowContext(workflowExecution: WorkflowExecution(workflowID: "wf", runID: "r"), workflowType: "session",
                                      history: [started], attempt: 1)
        #expect(context.session("s") == .none)
        #expect(throws: SpoolError.self) { try context.createSession("") }
        let step = ScheduleActivityTaskCommandAttributes(activityID: "a", activityType: "step", startToCloseTimeout: .seconds(1))
        do throws(SpoolError) {
            _ = try context.scheduleActivity(inSession: "s", step)
            Issue.record("an activity was scheduled in a session never created")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.description.contains("'s'"))
        }
        #expect(context.completeSession("s").isEmpty)
        let command = try context.createSession("s")
        guard case .scheduleActivityTask(let a) = command else { Issue.record("not an activity: \(command)"); return }
        #expect(a.taskQueue == "q__internal_session_creation")
        #expect(a.activityType == "internalSessionCreationActivity")
    }
}
