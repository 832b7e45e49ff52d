import Testing
@testable import SpoolMatching

@Suite("Dispatcher partitions and forwarding")
struct DispatcherPartitionTests {
    @Test("a poller waiting in one partition gets tasks added to every other partition")
    func taskForwardedToWaitingPoller() async throws {
        let queue = try makeDispatcher(partitions: 4).queue("q", kind: .activity)
        for id in 0..<40 as Range<UInt64> {
            // Ids spread the adds over all four partitions.
            let waiting = Task { await queue.poll() }
            #expect(await eventually { queue.describe().waitingPollers == 1 })
            try queue.add(task(id))
            #expect(await waiting.value?.id == id)
        }
    }

    @Test("a poller of one partition takes the backlog of the others")
    func pollForwardedToBacklog() async throws {
        let queue = try makeDispatcher(partitions: 4).queue("q", kind: .activity)
        for id in 0..<40 as Range<UInt64> { try queue.add(task(id)) }
        let poller = try queue.poller(identity: "w")
        var polled: [UInt64] = []
        while let next = await queue.poll(timeout: .zero, poller: poller) { polled.append(next.id) }
        #expect(polled.sorted() == Array(0..<40))
    }

    @Test("pollers spread over partitions all get served by one producer")
    func manyPollersOneProducer() async throws {
        let queue = try makeDispatcher(partitions: 8).queue("q", kind: .workflow)
        let collector = Collector<UInt64>()
        let pollers = (0..<16).map { _ in Task { if let task = await queue.poll() { collector.append(task.id) } } }
        #expect(await eventually { queue.describe().waitingPollers == 16 })
        for id in 0..<16 as Range<UInt64> { try queue.add(task(id)) }
        for poller in pollers { await poller.value }
        #expect(collector.all.sorted() == Array(0..<16))
    }
}
