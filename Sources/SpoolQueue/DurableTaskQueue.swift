import SpoolMatching

/// A handle on one queue of a ``TaskStore``: the same operations as the store's, without
/// the lookup by name. Get it from ``TaskStore/queue(_:kind:)`` and keep it.
public struct DurableTaskQueue: Sendable {
    let store: TaskStore
    let state: QueueState

    /// The queue's name.
    public var name: String { state.name }
    /// The queue's kind.
    public var kind: TaskQueueKind { state.kind }

    /// Adds a task; see ``TaskStore/add(_:to:kind:options:)``.
    public func add(_ payload: [UInt8], options: TaskOptions = TaskOptions()) async throws(QueueError) -> UInt64 {
        try await store.add(payload, to: state, options: options)
    }

    /// Adds tasks in order, in one append; see ``TaskStore/add(contentsOf:to:kind:options:)``.
    public func add(contentsOf payloads: [[UInt8]], options: TaskOptions = TaskOptions()) async throws(QueueError) -> [UInt64] {
        try await store.add(contentsOf: payloads, to: state, options: options)
    }

    /// Polls for a task; see ``TaskStore/poll(_:kind:timeout:poller:)``.
    public func poll(timeout: Duration? = nil, poller: TaskPoller? = nil) async throws(QueueError) -> DeliveredTask? {
        try await store.poll(state, timeout: timeout, poller: poller)
    }

    /// A worker's handle for polling this queue: its identity is listed by
    /// ``TaskStore/describe(_:kind:)`` with its last poll, and `maxTasksPerSecond` (if given)
    /// caps the rate at which it is handed tasks. In memory only.
    /// - Throws: ``QueueError/Code/invalidPollerIdentity``, ``QueueError/Code/invalidRateLimit``.
    public func poller(identity: String, maxTasksPerSecond: Double? = nil) throws(QueueError) -> TaskPoller {
        do { return try state.matching.poller(identity: identity, maxTasksPerSecond: maxTasksPerSecond) } catch { throw .matching(error) }
    }
}
