import SpoolPrimitives

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
    private struct Waiter: Sendable {
        var handle: ExecutionHandle
        var waiterID: UInt64
    }

    private struct State: Sendable {
        var heap = DeadlineHeap<Timestamp, Waiter>()
        /// Waits that added a deadline and have not ended (``ended()``).
        var live = 0
    }

    private let state: LockedValue<State>
    private let sleeper: DeadlineSleeper<Timestamp>

    init(clock: EngineClock) {
        let state = LockedValue(State())
        self.state = state
        sleeper = DeadlineSleeper(sleep: { try await clock.sleep(until: $0) }) { sleeper in
            let now = clock.now()
            let (due, next) = state.withLock { state in (state.heap.popDue(at: now), state.heap.earliestDeadline) }
            for waiter in due { waiter.handle.resolveWaiter(waiter.waiterID) }
            if let next { sleeper.wake(at: next) }
        }
    }

    deinit { sleeper.stop() }

    /// Resolves waiter `waiterID` of `handle` (``ExecutionHandle/resolveWaiter(_:)``) at `deadline`.
    /// The waiter calls ``ended()`` when its wait ends, for whatever reason.
    func add(_ deadline: Timestamp, handle: ExecutionHandle, waiterID: UInt64) {
        state.withLock { state in
            state.live += 1
            if state.heap.count >= 1024 && state.heap.count > 4 * state.live {
                // Lock order: this lock, then a handle's (a handle never calls in here under its own).
                state.heap.removeAll { !$0.handle.hasWaiter($0.waiterID) }
            }
            state.heap.insert(Waiter(handle: handle, waiterID: waiterID), at: deadline)
        }
        // Long-polls usually share one timeout, so deadlines mostly arrive in order and this
        // rarely replaces the sleeping task.
        sleeper.wake(at: deadline)
    }

    /// A wait that added a deadline ended (published, timed out or cancelled).
    func ended() {
        state.withLock { $0.live -= 1 }
    }
}
