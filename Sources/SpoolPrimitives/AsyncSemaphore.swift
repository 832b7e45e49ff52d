import DequeModule

/// A counting semaphore for Swift concurrency: ``acquire()`` suspends the task, never a thread,
/// until a permit is free. Waiters are served first come, first served, and ``release()`` hands
/// its permit directly to the oldest waiter, so a later ``acquire()`` cannot overtake it.
///
/// With one permit it is an asynchronous mutex whose holder may suspend (the engine's per-run
/// gate, held across a log append); with N it bounds concurrency (a worker's free slots).
package final class AsyncSemaphore: Sendable {
    private struct State: Sendable {
        var available: Int
        var waiters: Deque<UnsafeContinuation<Void, Never>> = []
    }

    private let state: LockedValue<State>

    /// A semaphore with `permits` free permits (0 creates it held: the creator releases it).
    ///
    /// - Precondition: `permits >= 0`.
    package init(permits: Int) {
        precondition(permits >= 0, "a semaphore cannot start with \(permits) permits")
        state = LockedValue(State(available: permits))
    }

    /// Takes a permit, suspending until one is free.
    package func acquire() async {
        if tryAcquire() { return }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let acquiredNow = state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if acquiredNow { continuation.resume() }
        }
    }

    /// Takes a permit if one is free now.
    package func tryAcquire() -> Bool {
        state.withLock { state in
            guard state.available > 0 else { return false }
            state.available -= 1
            return true
        }
    }

    /// Gives a permit back: to the oldest waiter if there is one, else to the pool.
    package func release() {
        let next = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            if let waiter = state.waiters.popFirst() { return waiter }
            state.available += 1
            return nil
        }
        next?.resume()
    }
}
