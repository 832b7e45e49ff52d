/// Settings of a ``Dispatcher``.
public struct DispatcherConfiguration: Sendable {
    /// Partitions per queue (1…64). More partitions spread contention between many producers
    /// and pollers of one hot queue; tasks and polls are forwarded between them. Each used
    /// partition costs its own lanes and waiter ring.
    public var partitions: Int = 1
    /// Slots of the lock-free ring of each priority lane (rounded up to a power of two, 2…1M).
    /// Tasks beyond it wait in a locked overflow. A lane's ring is allocated when its queue
    /// first gets a task of that priority: `ringCapacity` slots of `16 + MemoryLayout<QueuedTask<Payload>>.stride`
    /// bytes rounded up to whole 64-byte cache lines (64 bytes for a `UInt64` payload).
    public var ringCapacity: Int = 1024
    /// Slots of the lock-free ring of waiting pollers per partition; further pollers wait in a locked overflow.
    public var waiterRingCapacity: Int = 256
    /// Shards of the queue-name registry (a power of two, 1…4096); each has its own lock.
    public var registryShards: Int = 64
    /// Called, on the poller's thread, for each task dropped because its schedule-to-start
    /// deadline passed; the engine uses it to time the task out. Must not block.
    public var onExpired: (@Sendable (ExpiredTask) -> Void)?

    /// The defaults.
    public init() {}

    /// Throws ``MatchingError/Code/invalidConfiguration`` naming the first value out of range.
    public func validate() throws(MatchingError) {
        guard (1...64).contains(partitions) else {
            throw MatchingError(.invalidConfiguration, "partitions must be between 1 and 64 (got \(partitions))")
        }
        guard (2...(1 << 20)).contains(ringCapacity) else {
            throw MatchingError(.invalidConfiguration, "ringCapacity must be between 2 and 1048576 (got \(ringCapacity))")
        }
        guard (2...(1 << 20)).contains(waiterRingCapacity) else {
            throw MatchingError(.invalidConfiguration, "waiterRingCapacity must be between 2 and 1048576 (got \(waiterRingCapacity))")
        }
        guard (1...4096).contains(registryShards), registryShards & (registryShards - 1) == 0 else {
            throw MatchingError(.invalidConfiguration, "registryShards must be a power of two between 1 and 4096 (got \(registryShards))")
        }
    }
}

/// What every queue of a dispatcher shares (one reference per queue).
@usableFromInline
final class DispatcherContext: Sendable {
    @usableFromInline let clock: MatchingClock
    /// The manual clock, if any, without reference counting (kept alive by `clock`).
    @usableFromInline let manualClock: Unmanaged<ManualMatchingClock>?
    @usableFromInline let partitions: Int
    @usableFromInline let ringCapacity: Int
    @usableFromInline let waiterRingCapacity: Int
    /// The deadlines of this dispatcher's suspended polls.
    @usableFromInline let deadlines: PollDeadlines
    let onExpired: (@Sendable (ExpiredTask) -> Void)?

    /// The clock's current instant, read without copying the clock (no reference counting).
    @inlinable @inline(__always)
    func now() -> MatchingInstant {
        if let manualClock { return manualClock._withUnsafeGuaranteedRef { $0.now() } }
        return MatchingClock.systemNow()
    }

    init(configuration: DispatcherConfiguration, clock: MatchingClock) {
        self.clock = clock
        manualClock = clock.manual.map { Unmanaged.passUnretained($0) }
        partitions = configuration.partitions
        ringCapacity = configuration.ringCapacity
        waiterRingCapacity = configuration.waiterRingCapacity
        deadlines = PollDeadlines(clock: clock)
        onExpired = configuration.onExpired
    }
}
