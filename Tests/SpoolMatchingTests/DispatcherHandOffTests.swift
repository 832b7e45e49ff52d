import Synchronization
import Testing
@testable import SpoolMatching

@Suite("Dispatcher hand-off")
struct DispatcherHandOffTests {
    @Test("a task added before the poll is returned by tryPoll and poll without waiting")
    func backlogFirst() async throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        try queue.add(task(1))
        try queue.add(task(2))
        #expect(queue.tryPoll()?.id == 1)
        #expect(await queue.poll(timeout: .zero)?.id == 2)
        #expect(queue.tryPoll() == nil)
        #expect(await queue.poll(timeout: .zero) == nil)
    }

    @Test("a waiting poller gets a task added later (sync match)")
    func syncMatch() async throws {
        let queue = try makeDispatcher().queue("q", kind: .workflow)
        async let polled = queue.poll()
        #expect(await eventually { queue.describe().waitingPollers == 1 })
        try queue.add(task(7))
        #expect(await polled?.id == 7)
        #expect(queue.describe().backlogCount == 0)
        #expect(queue.describe().dispatched == 1)
    }

    @Test("the workflow and activity queues of one name are separate")
    func kinds() async throws {
        let dispatcher = makeDispatcher()
        try dispatcher.add(task(1), to: "orders", kind: .workflow)
        #expect(try await dispatcher.poll("orders", kind: .activity, timeout: .zero) == nil)
        #expect(try await dispatcher.poll("orders", kind: .workflow, timeout: .zero)?.id == 1)
    }

    @Test("a poll times out on an injected clock and the poller is gone afterwards")
    func deadline() async throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        async let polled = queue.poll(timeout: .seconds(5))
        #expect(await eventually { clock.sleeperCount == 1 && queue.describe().waitingPollers == 1 })
        clock.advance(by: .seconds(5))
        #expect(await polled == nil)
        #expect(queue.describe().waitingPollers == 0)
        // The tombstone it left does not swallow the next task.
        try queue.add(task(1))
        #expect(queue.tryPoll()?.id == 1)
    }

    @Test("a cancelled poll returns nil and the next poller gets the task")
    func cancellation() async throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        let first = Task { await queue.poll() }
        #expect(await eventually { queue.describe().waitingPollers == 1 })
        first.cancel()
        #expect(await first.value == nil)
        let second = Task { await queue.poll() }
        #expect(await eventually { queue.describe().waitingPollers == 1 })
        try queue.add(task(3))
        #expect(await second.value?.id == 3)
    }

    @Test("idle long-polling does not pile up tombstones")
    func tombstonesAreReaped() async throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        for _ in 0..<50 {
            async let a = queue.poll(timeout: .seconds(1))
            async let b = queue.poll(timeout: .seconds(2))
            // One sleeper serves both deadlines; both polls are registered once both wait.
            #expect(await eventually { queue.describe().waitingPollers == 2 })
            clock.advance(by: .seconds(2))
            _ = await (a, b)
        }
        let nodes = queue.table.load()?.partitions[0].waiting.pointee.load(ordering: .relaxed) ?? 0
        #expect(nodes <= 2)
        try queue.add(task(9))
        #expect(queue.tryPoll()?.id == 9)
    }

    @Test("no task is lost or delivered twice: many producers, 10,000 pollers, random deadlines and cancellations",
          .serialized, arguments: [1, 4])
    func noLossNoDuplicates(partitions: Int) async throws {
        let expired = Collector<UInt64>()
        // Small rings so that the overflow paths are exercised too.
        let dispatcher = makeDispatcher(partitions: partitions, ringCapacity: 8, waiterRingCapacity: 16) { expired.append($0.id) }
        let queue = try dispatcher.queue("stress", kind: .activity)
        let delivered = Collector<UInt64>()
        let emptyPolls = Counter()
        let stop = Flag()
        let producers = 8
        let perProducer = 1_000
        let total = producers * perProducer

        var pollers: [Task<Void, Never>] = []
        for p in 0..<10_000 {
            pollers.append(Task {
                var random = SplitMix(seed: UInt64(p))
                while !stop.isSet && !Task.isCancelled {
                    // A hundred pollers churn through short deadlines; the rest wait longer.
                    let timeout = p < 100 ? Duration.microseconds(Int64(2_000 + random.next() % 18_000))
                                          : Duration.milliseconds(Int64(20 + random.next() % 1_000))
                    if let task = await queue.poll(timeout: timeout) { delivered.append(task.id) } else { emptyPolls.add() }
                }
            })
        }
        let victims = pollers
        let canceller = Task {
            var random = SplitMix(seed: 99)
            for _ in 0..<1_000 {
                victims[Int(random.next() % UInt64(victims.count))].cancel()
                await Task.yield()
            }
        }
        let clock = dispatcher.clock
        try await withThrowingTaskGroup(of: Void.self) { group in
            for p in 0..<producers {
                group.addTask {
                    var random = SplitMix(seed: 1000 + UInt64(p))
                    for i in 0..<perProducer {
                        let id = UInt64(p * perProducer + i)
                        var deadline: MatchingInstant?
                        switch random.next() % 10 {
                        case 0: deadline = clock.now()  // already due: always dropped
                        case 1: deadline = clock.now().advanced(by: .microseconds(Int64(random.next() % 5_000)))
                        default: deadline = nil
                        }
                        try queue.add(QueuedTask(id: id, priority: Int(random.next() % 5) + 1, scheduleToStartDeadline: deadline, payload: id))
                        // Spread the adds over time so they race with deadlines and cancellations.
                        if i % 50 == 0 { try await Task.sleep(for: .milliseconds(1)) }
                    }
                }
            }
            try await group.waitForAll()
        }
        await canceller.value
        let finished = await eventually(120) { delivered.count + expired.count == total }
        stop.set()
        for poller in pollers { poller.cancel() }
        for poller in pollers { await poller.value }

        let deliveredIDs = delivered.all
        let expiredIDs = expired.all
        #expect(finished, "delivered \(deliveredIDs.count) + expired \(expiredIDs.count) of \(total)")
        #expect(Set(deliveredIDs).count == deliveredIDs.count, "a task was delivered twice")
        #expect(Set(expiredIDs).count == expiredIDs.count, "a task expired twice")
        #expect(Set(deliveredIDs).isDisjoint(with: expiredIDs), "a task was both delivered and expired")
        #expect((deliveredIDs + expiredIDs).sorted() == (0..<UInt64(total)).map { $0 })
        // The races this test is about did happen: polls ended by deadline or cancellation, tasks expired.
        #expect(emptyPolls.value > 0)
        #expect(expiredIDs.count >= total / 20)
        let description = queue.describe()
        #expect(description.backlogCount == 0)
        #expect(description.added == total)
        #expect(description.dispatched == deliveredIDs.count)
        #expect(description.expired == expiredIDs.count)
        #expect(description.waitingPollers == 0)
    }
}

/// A small deterministic generator (tests must not depend on the system's randomness).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
