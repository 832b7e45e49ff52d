import SpoolPrimitives
import Synchronization
@testable import SpoolMatching

/// A thread-safe bag for test results.
/// A pthread lock rather than `Synchronization.Mutex`, which Linux TSan reports false races on.
final class Collector<Element: Sendable>: @unchecked Sendable {
    private let lock = ThreadLock()
    private var items: [Element] = []  // guarded by `lock`
    func append(_ item: Element) { lock.withLock { items.append(item) } }
    var all: [Element] { lock.withLock { items } }
    var count: Int { lock.withLock { items.count } }
}

func makeDispatcher<Payload: Sendable>(_ payload: Payload.Type = UInt64.self, partitions: Int = 1, ringCapacity: Int = 1024,
                                       waiterRingCapacity: Int = 256, clock: ManualMatchingClock? = nil,
                                       onExpired: (@Sendable (ExpiredTask) -> Void)? = nil) -> Dispatcher<Payload> {
    var configuration = DispatcherConfiguration()
    configuration.partitions = partitions
    configuration.ringCapacity = ringCapacity
    configuration.waiterRingCapacity = waiterRingCapacity
    configuration.onExpired = onExpired
    // Valid by construction.
    return try! Dispatcher(configuration: configuration, clock: clock.map { .manual($0) } ?? .system)
}

func task(_ id: UInt64, priority: Int = TaskPriority.default, key: String? = nil, weight: UInt32 = 1,
          deadline: MatchingInstant? = nil) -> QueuedTask<UInt64> {
    QueuedTask(id: id, priority: priority, fairness: key.map { FairnessKey($0, weight: weight) },
               scheduleToStartDeadline: deadline, payload: id)
}

/// Waits (yielding, up to `seconds` of wall time) until `condition` holds; a liveness guard, not a timing assertion.
func eventually(_ seconds: Int = 60, _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + .seconds(seconds)
    while clock.now < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}

final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
