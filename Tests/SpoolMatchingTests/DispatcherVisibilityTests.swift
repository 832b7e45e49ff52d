import Testing
@testable import SpoolMatching

@Suite("Dispatcher visibility")
struct DispatcherVisibilityTests {
    @Test("describe reports backlog and oldest age per priority, counters and pollers")
    func describe() async throws {
        let clock = ManualMatchingClock()
        let dispatcher = makeDispatcher(clock: clock)
        let queue = try dispatcher.queue("orders", kind: .activity)
        try queue.add(task(1, priority: 1))
        clock.advance(by: .seconds(5))
        try queue.add(task(2, priority: 1))
        try queue.add(task(3, priority: 5, key: "tenant-a"))
        clock.advance(by: .seconds(2))
        let poller = try queue.poller(identity: "host-1", maxTasksPerSecond: 100)
        #expect(queue.tryPoll(poller: poller)?.id == 1)

        let description = queue.describe()
        #expect(description.name == "orders")
        #expect(description.kind == .activity)
        #expect(description.backlog.map(\.count) == [1, 0, 0, 0, 1])
        #expect(description.backlog[0].oldestAge == .seconds(2))
        #expect(description.backlog[4].oldestAge == .seconds(2))
        #expect(description.backlog[1].oldestAge == nil)
        #expect(description.backlogCount == 2)
        #expect(description.added == 3)
        #expect(description.dispatched == 1)
        #expect(description.pollers == [PollerDescription(identity: "host-1", lastPoll: clock.now(), maxTasksPerSecond: 100, dispatched: 1)])
    }

    @Test("queues are listed with both kinds of every name")
    func listQueues() throws {
        let dispatcher = makeDispatcher()
        try dispatcher.add(task(1), to: "b", kind: .activity)
        _ = try dispatcher.queue("a", kind: .workflow)
        try dispatcher.queue("a", kind: .workflow).pause()
        let list = dispatcher.listQueues()
        #expect(list.map(\.name) == ["a", "a", "b", "b"])
        #expect(list.map(\.kind) == [.workflow, .activity, .workflow, .activity])
        #expect(list.map(\.backlogCount) == [0, 0, 0, 1])
        #expect(list.map(\.isPaused) == [true, false, false, false])
        #expect(dispatcher.existingQueue("c", kind: .activity) == nil)
    }

    @Test("an idle queue holds at most 512 bytes")
    func idleQueueSize() throws {
        let dispatcher = makeDispatcher()
        let queue = try dispatcher.queue("an-idle-task-queue-name", kind: .activity)
        #expect(queue.allocatedBytes <= 512, "an idle queue holds \(queue.allocatedBytes) bytes")
        // Used and drained again, a queue keeps its ring (documented), so it is larger.
        try queue.add(task(1))
        _ = queue.tryPoll()
        #expect(queue.allocatedBytes > 512)
    }

    @Test("a hundred thousand names are cheap to create and find")
    func manyNames() throws {
        let dispatcher = makeDispatcher()
        for i in 0..<100_000 { _ = try dispatcher.queue("queue-\(i)", kind: .activity) }
        #expect(dispatcher.queueNameCount == 100_000)
        let queue = try dispatcher.queue("queue-77777", kind: .workflow)
        #expect(dispatcher.existingQueue("queue-77777", kind: .workflow) === queue)
        #expect(queue.allocatedBytes <= 512)
    }
}
