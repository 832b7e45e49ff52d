import Synchronization
import SpoolPrimitives

/// The updates in flight, engine-wide and in memory (Temporal's update registry,
/// `service/history/workflow/update`): admitted and sent updates exist only here, as in
/// Temporal — a restart loses them and their callers retry; an accepted update is in history
/// (WorkflowExecutionUpdateAccepted) and is rebuilt from it when a caller asks again; a completed
/// one is answered from history and leaves the registry.
///
/// Entries change stage under their run's gate; the lock only keeps the dictionary consistent.
/// What a workflow-task completion did to updates is *staged* before its append and applied when
/// the run's transition is published (``runChanged(_:history:)``), so a caller never sees an
/// answer whose events did not become durable.
final class UpdateRegistry: Sendable {
    enum Stage: Sendable, Equatable {
        /// Waits for the run's next workflow task.
        case admitted
        /// Went to a worker with the workflow task whose WorkflowTaskStarted is `startedEventID`.
        case sent(startedEventID: Int64)
        /// WorkflowExecutionUpdateAccepted is event `eventID`.
        case accepted(eventID: Int64)

        var lifecycleStage: UpdateWorkflowExecutionLifecycleStage {
            if case .accepted = self { return .accepted }
            return .admitted
        }
    }

    /// How a wait ends.
    enum WaitResult: Sendable {
        /// The update reached `stage` (with its outcome once completed), or the wait timed out there.
        case reached(UpdateWorkflowExecutionLifecycleStage, UpdateOutcome?)
        /// The update failed before it was accepted (its run closed, its workflow task failed).
        case failed(SpoolError)
        /// Its run continued as new before the workflow saw the update: ask the new run.
        case runContinued
    }

    /// What a workflow-task completion did to an update, applied once its append is durable.
    enum Effect: Sendable {
        case accepted(updateID: String, eventID: Int64, request: UpdateRequest)
        case completed(updateID: String, outcome: UpdateOutcome)
        case failed(updateID: String, error: SpoolError)
    }

    struct UpdateKey: Hashable, Sendable {
        var run: ExecutionKey
        var updateID: String
    }

    private struct Waiter: Sendable {
        var wants: UpdateWorkflowExecutionLifecycleStage
        /// Resumed with a result (never nil): nil is only `wait`'s "not in flight" answer.
        var continuation: CheckedContinuation<WaitResult?, Never>
    }

    private struct Entry: Sendable {
        var request: UpdateRequest
        var stage: Stage
        /// Admission order: requests go to the worker oldest first (Temporal sorts by admission time).
        var order: UInt64
        var waiters: [UInt64: Waiter] = [:]
    }

    private struct State: Sendable {
        var entries: [UpdateKey: Entry] = [:]
        var staged: [ExecutionKey: [Effect]] = [:]
        var lastOrder: UInt64 = 0
        var lastWaiter: UInt64 = 0
    }

    private let state = LockedValue(State())
    /// Entries plus runs with staged effects: read without the lock on every commit, where it is
    /// almost always 0.
    private let count = Atomic<Int>(0)

    var isEmpty: Bool { count.load(ordering: .acquiring) == 0 }

    private func recount(_ state: State) { count.store(state.entries.count + state.staged.count, ordering: .releasing) }

    /// The update's stage and request, if it is in flight.
    func lookup(_ key: UpdateKey) -> (stage: Stage, request: UpdateRequest)? {
        state.withLock { state in state.entries[key].map { ($0.stage, $0.request) } }
    }

    /// Admits `request` for run `run` unless an update with its id is in flight; returns whether it did.
    @discardableResult
    func admit(_ request: UpdateRequest, run: ExecutionKey, stage: Stage = .admitted) -> Bool {
        state.withLock { state in
            let key = UpdateKey(run: run, updateID: request.meta.updateID)
            guard state.entries[key] == nil else { return false }
            state.lastOrder += 1
            state.entries[key] = Entry(request: request, stage: stage, order: state.lastOrder)
            recount(state)
            return true
        }
    }

    /// Whether run `run` has updates that wait for a workflow task (admitted, or sent to a task
    /// other than the one started at `exceptStartedEventID`), leaving out those `answered` by the
    /// completion being decided.
    func hasUndelivered(run: ExecutionKey, exceptStartedEventID: Int64 = 0, answered: Set<String> = []) -> Bool {
        state.withLock { state in
            state.entries.contains { key, entry in
                guard key.run == run, !answered.contains(key.updateID) else { return false }
                switch entry.stage {
                case .admitted: return true
                case .sent(let startedEventID): return startedEventID != exceptStartedEventID
                case .accepted: return false
                }
            }
        }
    }

    /// Marks run `run`'s undelivered updates sent with its workflow task started at
    /// `startedEventID`; returns their request messages, oldest first. A request is sequenced
    /// after the event before the task's WorkflowTaskStarted, as Temporal sequences it.
    func send(run: ExecutionKey, startedEventID: Int64) -> [ProtocolMessage] {
        state.withLock { state in
            var sent: [(UInt64, ProtocolMessage)] = []
            for (key, entry) in state.entries where key.run == run {
                switch entry.stage {
                case .admitted, .sent:
                    state.entries[key]!.stage = .sent(startedEventID: startedEventID)
                    sent.append((entry.order, ProtocolMessage(id: Self.requestMessageID(key.updateID), protocolInstanceID: key.updateID,
                                                              eventID: startedEventID - 1, body: .request(entry.request))))
                case .accepted:
                    break
                }
            }
            return sent.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// The id of the message that carries update `updateID`'s request (Temporal's `outgoingMessageID`).
    static func requestMessageID(_ updateID: String) -> String { updateID + "/request" }

    /// The updates sent with run `run`'s workflow task started at `startedEventID`, by id.
    func sent(run: ExecutionKey, startedEventID: Int64) -> [String: UpdateRequest] {
        state.withLock { state in
            var sent: [String: UpdateRequest] = [:]
            for (key, entry) in state.entries where key.run == run && entry.stage == .sent(startedEventID: startedEventID) {
                sent[key.updateID] = entry.request
            }
            return sent
        }
    }

    /// Stages what a completion did to run `run`'s updates, to be applied when its transition is
    /// published; ``unstage(run:)`` drops them when the append fails.
    func stage(_ effects: [Effect], run: ExecutionKey) {
        guard !effects.isEmpty else { return }
        state.withLock { state in
            state.staged[run, default: []] += effects
            recount(state)
        }
    }

    func unstage(run: ExecutionKey) {
        state.withLock { state in
            state.staged[run] = nil
            recount(state)
        }
    }

    /// Suspends until update `key` reaches `wants` (or gets an outcome, or fails); nil at once
    /// when it is not in flight. `waiterID` names the wait for ``timeOut(_:waiterID:)``.
    func wait(_ key: UpdateKey, wants: UpdateWorkflowExecutionLifecycleStage, waiterID: UInt64) async -> WaitResult? {
        await withCheckedContinuation { (continuation: CheckedContinuation<WaitResult?, Never>) in
            let ready = state.withLock { state -> WaitResult?? in
                guard let entry = state.entries[key] else { return .some(nil) }
                if entry.stage.lifecycleStage >= wants { return .some(.reached(entry.stage.lifecycleStage, nil)) }
                state.entries[key]!.waiters[waiterID] = Waiter(wants: wants, continuation: continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// A new waiter id.
    func nextWaiterID() -> UInt64 { state.withLock { $0.lastWaiter += 1; return $0.lastWaiter } }

    /// Ends wait `waiterID` of update `key` with the stage it reached (its deadline passed).
    func timeOut(_ key: UpdateKey, waiterID: UInt64) {
        let resumed = state.withLock { state -> (Waiter, Stage)? in
            guard let entry = state.entries[key], let waiter = state.entries[key]!.waiters.removeValue(forKey: waiterID) else { return nil }
            return (waiter, entry.stage)
        }
        if let (waiter, stage) = resumed { waiter.continuation.resume(returning: .reached(stage.lifecycleStage, nil)) }
    }

    /// Fails every update (the engine is closing).
    func failAll(_ error: SpoolError) {
        let waiters = state.withLock { state -> [Waiter] in
            let waiters = state.entries.values.flatMap { $0.waiters.values }
            state.entries = [:]
            state.staged = [:]
            recount(state)
            return waiters
        }
        for waiter in waiters { waiter.continuation.resume(returning: .failed(error)) }
    }

    /// Removes update `key` if it is still admitted (its delivery could not be scheduled) and
    /// fails its waiters with `error`.
    func withdraw(_ key: UpdateKey, error: SpoolError) {
        let waiters = state.withLock { state -> [Waiter] in
            guard let entry = state.entries[key], entry.stage == .admitted else { return [] }
            state.entries[key] = nil
            recount(state)
            return Array(entry.waiters.values)
        }
        for waiter in waiters { waiter.continuation.resume(returning: .failed(error)) }
    }

    /// After a transition of run `runState.key` was published: applies its staged effects; when
    /// the run closed, ends its updates as Temporal aborts them (an accepted one with
    /// ``Failure/acceptedUpdateCompletedWorkflow``, unless `outcome(updateID)` finds its outcome
    /// in history; one not yet accepted with ``SpoolError/Code/notFound``, or ``WaitResult/runContinued``
    /// when the run continued as new); updates sent to a workflow task that is no longer started
    /// go back to admitted, to go with the next one. Returns whether updates of the open run wait
    /// for a workflow task while none is outstanding (the caller schedules one).
    func runChanged(_ runState: ExecutionState, recordedOutcome: (String) -> UpdateOutcome?) -> Bool {
        let run = runState.key
        var resumptions: [(Waiter, WaitResult)] = []
        let needsTask = state.withLock { state -> Bool in
            for effect in state.staged.removeValue(forKey: run) ?? [] {
                switch effect {
                case let .accepted(updateID, eventID, request):
                    let key = UpdateKey(run: run, updateID: updateID)
                    if state.entries[key] == nil {
                        state.lastOrder += 1
                        state.entries[key] = Entry(request: request, stage: .accepted(eventID: eventID), order: state.lastOrder)
                    } else {
                        state.entries[key]!.stage = .accepted(eventID: eventID)
                    }
                    for (id, waiter) in state.entries[key]!.waiters where waiter.wants <= .accepted {
                        state.entries[key]!.waiters[id] = nil
                        resumptions.append((waiter, .reached(.accepted, nil)))
                    }
                case let .completed(updateID, outcome):
                    if let entry = state.entries.removeValue(forKey: UpdateKey(run: run, updateID: updateID)) {
                        for waiter in entry.waiters.values { resumptions.append((waiter, .reached(.completed, outcome))) }
                    }
                case let .failed(updateID, error):
                    if let entry = state.entries.removeValue(forKey: UpdateKey(run: run, updateID: updateID)) {
                        for waiter in entry.waiters.values { resumptions.append((waiter, .failed(error))) }
                    }
                }
            }
            let startedEventID = runState.workflowTask?.startedEventID ?? 0
            var undelivered = false
            for (key, entry) in state.entries where key.run == run {
                if !runState.isRunning {
                    state.entries[key] = nil
                    let result: WaitResult
                    if let outcome = recordedOutcome(key.updateID) {
                        result = .reached(.completed, outcome)
                    } else if case .accepted = entry.stage {
                        result = .reached(.completed, .failure(.acceptedUpdateCompletedWorkflow))
                    } else if runState.status == .continuedAsNew {
                        result = .runContinued
                    } else {
                        result = .failed(run.error(.notFound, "update aborted by closing workflow"))
                    }
                    for waiter in entry.waiters.values { resumptions.append((waiter, result)) }
                    continue
                }
                switch entry.stage {
                case .sent(let sentTo) where sentTo != startedEventID:
                    state.entries[key]!.stage = .admitted
                    undelivered = true
                case .admitted:
                    undelivered = true
                default:
                    break
                }
            }
            recount(state)
            return undelivered && runState.isRunning && runState.workflowTask == nil && !runState.isPendingOnFirstWorkflowTaskBackoff
        }
        for (waiter, result) in resumptions { waiter.continuation.resume(returning: result) }
        return needsTask
    }
}
