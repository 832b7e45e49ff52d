import Synchronization
import SpoolPrimitives

/// The queries waiting for a worker's answer, engine-wide and in memory only: a query writes
/// nothing to the log, so a crash or a close simply fails the queries in flight (their callers
/// get ``SpoolError/Code/closed``) and the history is as before.
///
/// A query goes to a worker one of two ways (Temporal's rules, `service/history/api/queryworkflow`):
/// - **buffered**, then **attached** to the run's next workflow task when it starts (the task's
///   new events come before the query), answered in that task's completion;
/// - **dispatched** as a query-only task on the run's task queue, when no workflow task is
///   outstanding or the run is closed, then **taken** by the poll that hands it to a worker,
///   answered with `respondQueryTaskCompleted`.
///
/// Entries change phase under their run's gate (the transitions that start, complete or close
/// workflow tasks hold it); the registry's own lock only keeps the dictionary consistent.
final class QueryRegistry: Sendable {
    enum Phase: Sendable, Equatable {
        /// Waits for the run's next workflow task to start.
        case buffered
        /// Went to a worker with the workflow task whose WorkflowTaskStarted is `startedEventID`.
        case attached(startedEventID: Int64)
        /// A query-only task is on the run's queue.
        case dispatched
        /// A poll took the query-only task and handed it to a worker.
        case taken
    }

    /// How a wait ends.
    enum Outcome: Sendable {
        case answered(WorkflowQueryResult)
        case failed(SpoolError)
    }

    private struct Entry: Sendable {
        let key: ExecutionKey
        let query: WorkflowQuery
        var phase: Phase
        var continuation: CheckedContinuation<Outcome, Never>?
        /// An outcome that came before the caller suspended.
        var outcome: Outcome?
    }

    private struct State: Sendable {
        var entries: [UInt32: Entry] = [:]
        var lastID: UInt32 = 0
    }

    private let state = LockedValue(State())
    /// How many entries there are: read without the lock on the hot path (every workflow task
    /// start and every commit), where it is almost always 0.
    private let count = Atomic<Int>(0)

    var isEmpty: Bool { count.load(ordering: .acquiring) == 0 }

    /// Adds a query of run `key` in `phase`; returns its id (never 0).
    func register(_ query: WorkflowQuery, key: ExecutionKey, phase: Phase) -> UInt32 {
        state.withLock { state in
            repeat { state.lastID &+= 1 } while state.lastID == 0 || state.entries[state.lastID] != nil
            state.entries[state.lastID] = Entry(key: key, query: query, phase: phase)
            count.add(1, ordering: .releasing)
            return state.lastID
        }
    }

    /// Suspends until query `id` is answered or failed; removes it.
    func wait(_ id: UInt32) async -> Outcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let ready = state.withLock { state -> Outcome? in
                guard var entry = state.entries[id] else { return .failed(SpoolError(.closed, "the query was dropped")) }
                if let outcome = entry.outcome {
                    state.entries[id] = nil
                    count.subtract(1, ordering: .releasing)
                    return outcome
                }
                entry.continuation = continuation
                state.entries[id] = entry
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Ends query `id` with `outcome` if it is still waiting and, when `expecting` is given, in
    /// that phase for run `key`. Returns whether it did.
    @discardableResult
    func resolve(_ id: UInt32, _ outcome: Outcome, key: ExecutionKey? = nil, expecting phase: Phase? = nil) -> Bool {
        let resumed = state.withLock { state -> (CheckedContinuation<Outcome, Never>?, Bool) in
            guard var entry = state.entries[id], entry.outcome == nil else { return (nil, false) }
            if let key, entry.key != key { return (nil, false) }
            if let phase, entry.phase != phase { return (nil, false) }
            if let continuation = entry.continuation {
                state.entries[id] = nil
                count.subtract(1, ordering: .releasing)
                return (continuation, true)
            }
            entry.outcome = outcome
            state.entries[id] = entry
            return (nil, true)
        }
        resumed.0?.resume(returning: outcome)
        return resumed.1
    }

    /// Fails every query (the engine is closing).
    func failAll(_ error: SpoolError) {
        let ids = state.withLock { Array($0.entries.keys) }
        for id in ids { resolve(id, .failed(error)) }
    }

    /// Attaches the buffered queries of run `key` to its workflow task that just started at
    /// `startedEventID`; returns them by id (as text: the map key of Temporal's `queries`).
    func attach(key: ExecutionKey, startedEventID: Int64) -> [String: WorkflowQuery] {
        state.withLock { state in
            var attached: [String: WorkflowQuery] = [:]
            for (id, entry) in state.entries where entry.key == key && entry.phase == .buffered && entry.outcome == nil {
                state.entries[id]!.phase = .attached(startedEventID: startedEventID)
                attached[String(id)] = entry.query
            }
            return attached
        }
    }

    /// The query of a query-only task a poll received, marked taken; nil when it is no longer
    /// dispatched (answered, timed out, cancelled, or already taken).
    func take(_ id: UInt32, key: ExecutionKey) -> WorkflowQuery? {
        state.withLock { state in
            guard let entry = state.entries[id], entry.key == key, entry.phase == .dispatched, entry.outcome == nil else { return nil }
            state.entries[id]!.phase = .taken
            return entry.query
        }
    }

    /// A query-only task a poll took but could not hand over goes back to `dispatched`; returns
    /// whether it was taken (then the caller queues it again).
    func untake(_ id: UInt32, key: ExecutionKey) -> Bool {
        state.withLock { state in
            guard let entry = state.entries[id], entry.key == key, entry.phase == .taken, entry.outcome == nil else { return false }
            state.entries[id]!.phase = .dispatched
            return true
        }
    }

    /// After a transition of run `key` was published with `state`: queries attached to a
    /// workflow task that is no longer started go back to buffered (the task failed, timed out or
    /// completed without answering them); buffered queries are dispatched as query-only tasks
    /// once no workflow task is outstanding or the run is closed, provided a workflow task
    /// completed before (a worker cannot replay a history without one). Returns the ids to
    /// dispatch, already marked dispatched.
    func runChanged(_ runState: ExecutionState) -> [UInt32] {
        let startedEventID = runState.workflowTask?.startedEventID ?? 0
        let direct = runState.previousStartedEventID != 0 && (!runState.isRunning || runState.workflowTask == nil)
        return state.withLock { state in
            var dispatched: [UInt32] = []
            for (id, entry) in state.entries where entry.key == runState.key && entry.outcome == nil {
                var phase = entry.phase
                if case .attached(let attachedTo) = phase, attachedTo != startedEventID || !runState.isRunning { phase = .buffered }
                if phase == .buffered && direct {
                    phase = .dispatched
                    dispatched.append(id)
                }
                if phase != entry.phase { state.entries[id]!.phase = phase }
            }
            return dispatched
        }
    }
}
