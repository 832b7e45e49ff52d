import DequeModule
import SpoolLog

/// A value behind a lock, in a class so that it can be shared and stored in collections.
/// Critical sections are short and never suspend. The lock is SpoolLog's pthread-based
/// `LockedValue` rather than `Synchronization.Mutex`, which ThreadSanitizer on Linux cannot see.
final class Locked<Value: Sendable>: Sendable {
    private let lock: LockedValue<Value>

    init(_ value: Value) { lock = LockedValue(value) }

    func withLock<Result, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        try lock.withLock(body)
    }
}

/// An asynchronous mutual-exclusion lock: the holder may suspend (on a log append) while other
/// tasks wait for it without blocking a thread. Waiters are served first come, first served.
///
/// One per run: it serialises the run's transitions from deciding the changes to publishing
/// them after the append is durable, so no two transitions of a run interleave.
final class AsyncGate: Sendable {
    private struct State: Sendable {
        var locked: Bool
        var waiters: Deque<UnsafeContinuation<Void, Never>> = []
    }

    private let state: Locked<State>

    /// A gate, held by its creator when `locked` (a run being created is not visible to others
    /// until its first append is durable).
    init(locked: Bool = false) { state = Locked(State(locked: locked)) }

    func lock() async {
        let acquired = state.withLock { state -> Bool in
            if state.locked { return false }
            state.locked = true
            return true
        }
        if acquired { return }
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let acquiredNow = state.withLock { state -> Bool in
                if state.locked {
                    state.waiters.append(continuation)
                    return false
                }
                state.locked = true
                return true
            }
            if acquiredNow { continuation.resume() }
        }
    }

    /// Releases the gate, handing it directly to the oldest waiter if there is one.
    func unlock() {
        let next = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
