/// One task that sleeps until the earliest deadline it was asked for, then calls its `wake`
/// action: the sleeper behind a ``DeadlineHeap``, so that N pending timeouts cost one sleeping
/// task instead of N timer tasks that are mostly cancelled.
///
/// ``wake(at:)`` with a deadline no earlier than the one slept for does nothing (one lock, one
/// compare); an earlier one cancels the sleeping task and starts one for it. After `wake` runs
/// nothing sleeps until the next ``wake(at:)``: the owner asks again for its next deadline.
///
/// The sleep is a closure so that the same sleeper follows a manual clock in tests (advancing
/// the clock times things out) and the system clock in production.
package final class DeadlineSleeper<Deadline: Comparable & Sendable>: Sendable {
    private struct State: Sendable {
        var sleepingUntil: Deadline?
        var task: Task<Void, Never>?
        /// Bumped when a sleeper is replaced: an old one that wakes anyway does nothing.
        var generation: UInt64 = 0
        var stopped = false
    }

    private let sleep: @Sendable (Deadline) async throws -> Void
    private let action: @Sendable (DeadlineSleeper) -> Void
    private let state = LockedValue(State())

    /// A sleeper that sleeps with `sleep` (which throws when its task is cancelled) and runs
    /// `wake` on the sleeping task once a requested deadline has passed. `wake` gets the sleeper,
    /// to ask for its owner's next deadline.
    package init(sleep: @escaping @Sendable (Deadline) async throws -> Void,
                 wake: @escaping @Sendable (DeadlineSleeper) -> Void) {
        self.sleep = sleep
        self.action = wake
    }

    /// Arranges for `wake` to run at `deadline` or earlier.
    package func wake(at deadline: Deadline) {
        state.withLock { state in
            if state.stopped { return }
            if let sleeping = state.sleepingUntil, sleeping <= deadline { return }
            state.task?.cancel()
            state.generation &+= 1
            state.sleepingUntil = deadline
            let generation = state.generation
            state.task = Task { [self] in await self.run(until: deadline, generation: generation) }
        }
    }

    /// Cancels the sleeping task for good; later ``wake(at:)`` calls do nothing.
    package func stop() {
        let task = state.withLock { state -> Task<Void, Never>? in
            state.stopped = true
            state.sleepingUntil = nil
            defer { state.task = nil }
            return state.task
        }
        task?.cancel()
    }

    private func run(until deadline: Deadline, generation: UInt64) async {
        do { try await sleep(deadline) } catch { return }   // cancelled: replaced by an earlier sleeper, or stopped
        let current = state.withLock { state -> Bool in
            guard state.generation == generation, !state.stopped else { return false }
            state.sleepingUntil = nil
            state.task = nil
            return true
        }
        if current { action(self) }
    }
}
