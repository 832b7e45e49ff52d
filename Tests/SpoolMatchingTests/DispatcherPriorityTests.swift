import Testing
@testable import SpoolMatching

@Suite("Dispatcher priorities and order")
struct DispatcherPriorityTests {
    @Test("the backlog drains highest priority first, FIFO within a priority")
    func priorityOrder() throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        var expected: [[UInt64]] = Array(repeating: [], count: 6)
        var random = SplitMix(seed: 7)
        for id in 0..<500 as Range<UInt64> {
            let priority = Int(random.next() % 5) + 1
            try queue.add(task(id, priority: priority))
            expected[priority].append(id)
        }
        var polled: [UInt64] = []
        while let next = queue.tryPoll() { polled.append(next.id) }
        #expect(polled == expected.flatMap { $0 })
    }

    @Test("FIFO holds across the ring and its overflow")
    func fifoThroughOverflow() async throws {
        let queue = try makeDispatcher(ringCapacity: 4).queue("q", kind: .workflow)
        for id in 0..<200 as Range<UInt64> { try queue.add(task(id)) }
        var polled: [UInt64] = []
        // Interleave polls and adds so the ring refills from the overflow while adds continue.
        for id in 200..<300 as Range<UInt64> {
            if let next = await queue.poll(timeout: .zero) { polled.append(next.id) }
            try queue.add(task(id))
        }
        while let next = queue.tryPoll() { polled.append(next.id) }
        #expect(polled == Array(0..<300))
    }

    @Test("a backlog is not starved by newer tasks that keep arriving")
    func backlogNotStarved() async throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        for id in 0..<100 as Range<UInt64> { try queue.add(task(id)) }
        var polled: [UInt64] = []
        for id in 100..<200 as Range<UInt64> {
            try queue.add(task(id))
            if let next = await queue.poll(timeout: .zero) { polled.append(next.id) }
        }
        #expect(polled == Array(0..<100))
    }

    @Test("a waiting poller is handed the highest-priority task")
    func waiterGetsHighestPriority() async throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        try queue.add(task(1, priority: 4))
        try queue.add(task(2, priority: 1))
        #expect(await queue.poll()?.id == 2)
        #expect(await queue.poll()?.id == 1)
    }
}
