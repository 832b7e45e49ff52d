import HeapModule

/// The deadlines of history long-polls (`getWorkflowExecutionHistory(waitNewEvent: true)`): one
/// task sleeps until the earliest of them, instead of one task per waiting call that sleeps until
/// its own deadline and is cancelled when the wait ends.
///
/// Almost every long-poll ends with a publish long before its deadline: a task per call cost a
/// task, a dispatch timer set (waking libdispatch's manager thread) and a cancellation that
/// resumed it once more, for nothing — a workflow client waiting for each close event paid it
/// once per workflow. Here an ended wait leaves its entry in the heap; when the entry comes up,
/// resolving a waiter that is gone does nothing. So that those entries do not pile up (a
/// client waiting 120 s per workflow at 10,000 workflows/s would leave over a million), the heap
/// drops every entry whose wait has ended once it holds more than four times the waits in
/// progress (amortized O(1) per wait). Deadlines follow the engine's clock, so a manual clock
/// times long-polls out when it is advanced, as before.
final class LongPollDeadlines: Sendable {
    private struct Entry: Comparable, Sendable {
        var deadline: Timestamp
        /// Ties in deadline come up in the order they were added.
        var sequence: UInt64
        var handle: ExecutionHandle
        var waiterID: UInt64

        static func < (a: Entry, b: Entry) -> Bool { (a.deadline, a.sequence) < (b.deadline, b.sequence) }
        static func == (a: Entry, b: Entry) -> Bool { a.sequence == b.sequence }
    }

    private struct State: Sendable {
        var heap = Heap<Entry>()
        var nextSequence: UInt64 = 0
        /// The deadline the current sleeper sleeps until; nil when none sleeps.
        var sleeperDeadline: Timestamp?
        var sleeper: Task<Void, Never>?
        /// Bumped when a sleeper is replaced: an old one that wakes anyway does nothing.
        var generation: UInt64 = 0
        /// Waits that added a deadline and have not ended (``ended()``).
        var live = 0
    }

    private let clock: EngineClock
    private let state = Locked(State())

    init(clock: EngineClock) { self.clock = clock }

    /// Resolves waiter `waiterID` of `handle` (``ExecutionHandle/resolveWaiter(_:)``) at `deadline`.
    /// The waiter calls ``ended()`` when its wait ends, for whatever reason.
    func add(_ deadline: Timestamp, handle: ExecutionHandle, waiterID: UInt64) {
        state.withLock { state in
            state.live += 1
            if state.heap.count >= 1024 && state.heap.count > 4 * state.live {
                // Lock order: this lock, then a handle's (a handle never calls in here under its own).
                state.heap = Heap(state.heap.unordered.filter { $0.handle.hasWaiter($0.waiterID) })
            }
            state.heap.insert(Entry(deadline: deadline, sequence: state.nextSequence, handle: handle, waiterID: waiterID))
            state.nextSequence &+= 1
            if let sleeping = state.sleeperDeadline, sleeping <= deadline { return }
            // Nobody sleeps, or the sleeper sleeps past this deadline: a new sleeper replaces it.
            // (Long-polls usually share one timeout, so deadlines mostly arrive in order and this is rare.)
            state.sleeper?.cancel()
            state.generation &+= 1
            state.sleeperDeadline = deadline
            let generation = state.generation
            state.sleeper = Task { [self] in await self.sleep(until: deadline, generation: generation) }
        }
    }

    /// A wait that added a deadline ended (published, timed out or cancelled).
    func ended() {
        state.withLock { $0.live -= 1 }
    }

    private func sleep(until first: Timestamp, generation: UInt64) async {
        var next = first
        while true {
            do { try await clock.sleep(until: next) } catch { return }   // cancelled: replaced by an earlier sleeper
            let now = clock.now()
            let (due, following) = state.withLock { state -> ([Entry], Timestamp?) in
                guard state.generation == generation else { return ([], nil) }
                var due: [Entry] = []
                while let first = state.heap.min, first.deadline <= now { due.append(state.heap.removeMin()) }
                let following = state.heap.min?.deadline
                state.sleeperDeadline = following
                if following == nil { state.sleeper = nil }
                return (due, following)
            }
            for entry in due { entry.handle.resolveWaiter(entry.waiterID) }
            guard let following else { return }
            next = following
        }
    }
}
