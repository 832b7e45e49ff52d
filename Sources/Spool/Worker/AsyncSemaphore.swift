import DequeModule

/// Counts free slots of a worker; a poller takes one before it polls, so a worker asks for a
/// task only when it has room to run it.
final class AsyncSemaphore: Sendable {
    private struct State: Sendable {
        var available: Int
        var waiters: Deque<UnsafeContinuation<Void, Never>> = []
    }

    private let state: Locked<State>

    init(_ count: Int) { state = Locked(State(available: count)) }

    func acquire() async {
        let acquired = state.withLock { state -> Bool in
            guard state.available > 0 else { return false }
            state.available -= 1
            return true
        }
        if acquired { return }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Takes a slot if one is free now.
    func tryAcquire() -> Bool {
        state.withLock { state in
            guard state.available > 0 else { return false }
            state.available -= 1
            return true
        }
    }

    func release() {
        let next = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            if let waiter = state.waiters.popFirst() { return waiter }
            state.available += 1
            return nil
        }
        next?.resume()
    }
}
