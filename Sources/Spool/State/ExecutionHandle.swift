import Synchronization
import SpoolMatching
import SpoolPrimitives

/// A run in the engine's registry: its gate (held for the whole of each transition), its
/// published state (what readers see: the state after the last durable append), and the
/// long-polls waiting for its history to grow.
final class ExecutionHandle: Sendable {
    let key: ExecutionKey
    let gate: AsyncSemaphore
    /// The run's own task queues, resolved once when the handle is made, so that dispatching its
    /// tasks takes no registry lock; nil for a closed run, which dispatches nothing.
    let taskQueues: RunTaskQueues?
    private let published: LockedValue<Published>
    /// False while the run's first append is in flight: readers skip it.
    private let visible: Atomic<Bool>
    /// Set when the run's creation failed and it was taken out of the registry.
    private let removed = Atomic<Bool>(false)

    private enum WaiterSlot: Sendable {
        /// Allocated, not yet suspended.
        case pending
        /// A timeout or cancellation came before the waiter suspended.
        case resolved
        /// `untilClosed`: woken only by the transition that closes the run.
        case waiting(UnsafeContinuation<Void, Never>, untilClosed: Bool)
    }

    private struct Published: Sendable {
        var state: ExecutionState
        var version: UInt64 = 0
        var waiters: [UInt64: WaiterSlot] = [:]
        var nextWaiterID: UInt64 = 0
        /// The run's events while it is open and once read (nil: read them from the log).
        var history: [HistoryEvent]?
        /// The log offsets of the run's records, oldest first: where its history is on disk.
        var recordOffsets: [UInt64]
        /// The closing event, kept when the run's other events leave memory.
        var closeEvent: HistoryEvent?
    }

    /// A handle for a run being created (its gate held by the creator, invisible to readers),
    /// or for a run replayed from the log (`creating: false`).
    init(state: ExecutionState, creating: Bool, recordOffsets: [UInt64] = [], taskQueues: RunTaskQueues? = nil) {
        key = state.key
        self.taskQueues = taskQueues
        gate = AsyncSemaphore(permits: creating ? 0 : 1)
        var history: [HistoryEvent]?
        var offsets = recordOffsets
        if creating {
            // A new run's history and record offsets grow by a few per transition: reserve
            // room for a short run's instead of reallocating at 1, 2, 4, 8 (callgrind: 11
            // reallocations per one-activity workflow).
            history = []
            history!.reserveCapacity(16)
            offsets.reserveCapacity(8)
        }
        published = LockedValue(Published(state: state, history: history, recordOffsets: offsets))
        visible = Atomic(!creating)
    }

    var isVisible: Bool { visible.load(ordering: .acquiring) }
    var isRemoved: Bool { removed.load(ordering: .acquiring) }

    func markRemoved() { removed.store(true, ordering: .releasing) }

    /// The published state.
    var state: ExecutionState { published.withLock { $0.state } }

    /// Whether the published state is open, read without copying the state.
    var isRunning: Bool { published.withLock { $0.state.isRunning } }

    /// The published state and its version, read together (for long-polls).
    var versionedState: (state: ExecutionState, version: UInt64) { published.withLock { ($0.state, $0.version) } }

    /// The run's events if they are in memory, with the state version they belong to; else the
    /// offsets of its records, to read them from the log.
    var historyOrOffsets: (history: [HistoryEvent]?, offsets: [UInt64], version: UInt64) {
        published.withLock { ($0.history, $0.recordOffsets, $0.version) }
    }

    /// The event that closed the run, if it is closed and was closed (or read) in this process.
    var closeEvent: HistoryEvent? { published.withLock { $0.closeEvent } }

    /// Keeps events read from the log in memory if the run is open and has not changed since.
    func cacheHistory(_ history: [HistoryEvent], version: UInt64) {
        published.withLock { published in
            if published.version == version && published.state.isRunning { published.history = history }
        }
    }

    /// Publishes the state of a transition whose append (at `recordOffset`) is durable, with the
    /// events its `changes` wrote, and wakes the long-polls. A closed run's events leave memory:
    /// they are read from the log when asked for.
    func publish(_ state: ExecutionState, changes: [StateChange], recordOffset: UInt64) {
        let waiters = published.withLock { published -> [UnsafeContinuation<Void, Never>] in
            published.state = state
            published.version &+= 1
            published.recordOffsets.append(recordOffset)
            if state.isRunning {
                if published.history != nil {
                    for index in changes.indices {
                        switch changes[index] {
                        case .event(let event), .flushedEvent(let event): published.history!.append(event)
                        default: break
                        }
                    }
                }
            } else {
                published.history = nil
                for change in changes.reversed() {
                    if let event = change.writtenEvent, event.eventType.isClosing { published.closeEvent = event; break }
                }
            }
            // Most transitions have no long-poll waiting: no array, no walk.
            guard !published.waiters.isEmpty else { return [] }
            // The waiter this transition wakes, if `slot` holds one.
            func woken(_ slot: WaiterSlot) -> UnsafeContinuation<Void, Never>? {
                guard case .waiting(let continuation, let untilClosed) = slot, !untilClosed || !state.isRunning else { return nil }
                return continuation
            }
            let resumed = published.waiters.values.compactMap(woken)
            // Removed after the walk: removing during it made the dictionary copy itself.
            if resumed.count == published.waiters.count {
                published.waiters.removeAll(keepingCapacity: true)
            } else if !resumed.isEmpty {
                published.waiters = published.waiters.filter { woken($0.value) == nil }
            }
            return resumed
        }
        visible.store(true, ordering: .releasing)
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when a transition after `version` is published (with `untilClosed`, only the one
    /// that closes the run), when `deadline` passes on the clock of `deadlines`, or when the
    /// calling task is cancelled; whichever comes first.
    func waitForChange(after version: UInt64, untilClosed: Bool = false, until deadline: Timestamp?,
                       deadlines: LongPollDeadlines) async {
        let id = published.withLock { published -> UInt64 in
            published.nextWaiterID &+= 1
            published.waiters[published.nextWaiterID] = .pending
            return published.nextWaiterID
        }
        if let deadline { deadlines.add(deadline, handle: self, waiterID: id) }
        defer { if deadline != nil { deadlines.ended() } }
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let resumeNow = published.withLock { published -> Bool in
                    if case .resolved = published.waiters[id] {
                        published.waiters[id] = nil
                        return true
                    }
                    if published.version != version && (!untilClosed || !published.state.isRunning) {
                        published.waiters[id] = nil
                        return true
                    }
                    published.waiters[id] = .waiting(continuation, untilClosed: untilClosed)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            resolveWaiter(id)
        }
    }

    /// Whether wait `id` has not ended yet.
    func hasWaiter(_ id: UInt64) -> Bool { published.withLock { $0.waiters[id] != nil } }

    /// Ends a wait early (its deadline passed or its task was cancelled); does nothing when the
    /// wait already ended.
    func resolveWaiter(_ id: UInt64) {
        let waiter = published.withLock { published -> UnsafeContinuation<Void, Never>? in
            switch published.waiters[id] {
            case .pending:
                published.waiters[id] = .resolved
                return nil
            case .waiting(let continuation, _):
                published.waiters[id] = nil
                return continuation
            case .resolved, nil:
                return nil
            }
        }
        waiter?.resume()
    }
}

/// The workflow and activity queues of a run's task queue name, in its namespace's dispatcher.
/// Most tasks of a run go to these (activities default to the workflow's task queue); a sticky
/// queue or another activity queue is looked up by name.
struct RunTaskQueues: Sendable {
    let name: String
    let workflow: TaskQueue<TaskReference>
    let activity: TaskQueue<TaskReference>
}
