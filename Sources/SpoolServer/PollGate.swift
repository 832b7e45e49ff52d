import Spool
import Synchronization

/// The long polls in flight (task polls, history long polls), so that a server shutting down
/// can end every one of them at once instead of waiting out their timeouts, and so that a task
/// a poll took is never dropped on the floor.
///
/// A poll runs in a task of its own. The client going away, or ``close()``, cancels it; the
/// engine's polls answer nil promptly when cancelled, and the call always answers with what
/// the poll itself returned: so at shutdown a task matched in the last instant still reaches
/// its worker (the connection is still up). When the client is gone and the poll did take a
/// task, `undelivered` gives it back to the engine at once.
final class PollGate: Sendable {
    private struct State: Sendable {
        var closed = false
        var nextID: UInt64 = 0
        var polls: [UInt64: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    /// Whether ``close()`` was called.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Whether a poll is waiting (tests).
    var hasWaitingPolls: Bool { state.withLock { !$0.polls.isEmpty } }

    /// Runs `poll`; nil at once when the gate is closed. When the calling task is cancelled
    /// (the client went away) after `poll` returned a value, that value is passed to
    /// `undelivered` and nil returned.
    func run<T: Sendable>(_ poll: @escaping @Sendable () async throws(SpoolError) -> T?,
                          undelivered: @escaping @Sendable (T) async -> Void = { _ in }) async throws(SpoolError) -> T? {
        guard let id = state.withLock({ state -> UInt64? in
            guard !state.closed else { return nil }
            defer { state.nextID += 1 }
            return state.nextID
        }) else { return nil }
        let task = Task { () async -> Result<T?, SpoolError> in
            do throws(SpoolError) { return .success(try await poll()) } catch { return .failure(error) }
        }
        let closedMeanwhile = state.withLock { state -> Bool in
            if !state.closed { state.polls[id] = { task.cancel() } }
            return state.closed
        }
        if closedMeanwhile { task.cancel() }
        let result = await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
        state.withLock { _ = $0.polls.removeValue(forKey: id) }
        let value = try result.get()
        if let value, Task.isCancelled {
            await undelivered(value)
            return nil
        }
        return value
    }

    /// Cancels every waiting poll, so that each answers with what it has (empty, unless it took
    /// a task in the last instant), and answers later polls empty at once.
    func close() {
        let cancels = state.withLock { state -> [@Sendable () -> Void] in
            state.closed = true
            defer { state.polls.removeAll() }
            return Array(state.polls.values)
        }
        for cancel in cancels { cancel() }
    }
}
