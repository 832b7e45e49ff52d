import Spool
import Synchronization

/// The long polls in flight (task polls, history long polls), so that a server shutting down
/// can answer every one of them empty at once instead of waiting out their timeouts.
///
/// A poll runs in a task of its own; the call waits for its result, for the client to go away
/// (the poll task is cancelled, and the engine returns nil for a cancelled poll), or for
/// ``close()``, which answers the call with nil and cancels the poll.
final class PollGate: Sendable {
    private struct Waiter: Sendable {
        var cancel: @Sendable () -> Void
        var answerEmpty: @Sendable () -> Void
    }

    private struct State: Sendable {
        var closed = false
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
    }

    private let state = Mutex(State())

    /// Whether ``close()`` was called.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Runs `poll`; nil at once when the gate is closed, or when it closes while `poll` waits.
    func run<T: Sendable>(_ poll: @escaping @Sendable () async throws(SpoolError) -> T?) async throws(SpoolError) -> T? {
        guard let id = state.withLock({ state -> UInt64? in
            guard !state.closed else { return nil }
            defer { state.nextID += 1 }
            return state.nextID
        }) else { return nil }

        // The client going away cancels the calling task: pass that on to the poll task.
        let result: Result<T?, SpoolError> = await withTaskCancellationHandler {
            await wait(id: id, poll)
        } onCancel: {
            self.state.withLock { $0.waiters[id] }?.cancel()
        }
        return try result.get()
    }

    private func wait<T: Sendable>(id: UInt64, _ poll: @escaping @Sendable () async throws(SpoolError) -> T?) async -> Result<T?, SpoolError> {
        await withCheckedContinuation { continuation in
            let answered = Once()
            let answer: @Sendable (Result<T?, SpoolError>) -> Void = { result in
                if answered.first() { continuation.resume(returning: result) }
            }
            let task = Task {
                let result: Result<T?, SpoolError>
                do throws(SpoolError) { result = .success(try await poll()) } catch { result = .failure(error) }
                self.state.withLock { _ = $0.waiters.removeValue(forKey: id) }
                answer(result)
            }
            let waiter = Waiter(cancel: { task.cancel() }, answerEmpty: { answer(.success(nil)) })
            let closedMeanwhile = state.withLock { state -> Bool in
                if state.closed { return true }
                state.waiters[id] = waiter
                return false
            }
            if closedMeanwhile {
                task.cancel()
                waiter.answerEmpty()
            }
        }
    }

    /// Answers every waiting poll empty, cancels them, and answers later polls empty at once.
    func close() {
        let waiters = state.withLock { state -> [Waiter] in
            state.closed = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            waiter.cancel()
            waiter.answerEmpty()
        }
    }
}

/// True the first time only.
private final class Once: Sendable {
    private let done = Mutex(false)

    func first() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}
