import Synchronization
import Testing
@testable import SpoolMatching

/// The producer/poller handshake of a partition: tasks are not counted, waiting pollers are;
/// a producer reads the waiter count after pushing its task, a suspending poller looks at the
/// lanes after counting itself, and whoever holds a waiter either resumes it with a task or
/// puts it back.
@Suite("Dispatcher handshake")
struct DispatcherHandshakeTests {
    @Test("a held waiter is either finished with a task or put back; a cancel after a finish loses")
    func waiterStates() async throws {
        let waiter = PollWaiter<UInt64>()
        let got = await withUnsafeContinuation { (continuation: UnsafeContinuation<QueuedTask<UInt64>?, Never>) in
            waiter.continuation = continuation
            waiter.state.store(PollWaiter<UInt64>.waiting, ordering: .releasing)
            #expect(waiter.hold())
            waiter.unhold()
            #expect(waiter.hold())
            waiter.finish(with: task(7))
        }
        #expect(got?.id == 7)
        #expect(waiter.isTombstone)
        #expect(!waiter.hold())
        #expect(!waiter.tryCancelWaiting())

        let cancelled = PollWaiter<UInt64>()
        cancelled.state.store(PollWaiter<UInt64>.waiting, ordering: .releasing)
        #expect(cancelled.hold())
        cancelled.unhold()
        #expect(cancelled.tryCancelWaiting())
        #expect(!cancelled.hold())
        #expect(cancelled.isTombstone)
    }

    @Test("queue running dry: every task is delivered exactly once while pollers suspend, time out and are cancelled",
          .serialized, arguments: [1, 3])
    func exactlyOnceWhileRunningDry(partitions: Int) async throws {
        // Small rings: the overflow and the waiter overflow take part too.
        let dispatcher = makeDispatcher(partitions: partitions, ringCapacity: 4, waiterRingCapacity: 4)
        let queue = try dispatcher.queue("dry", kind: .activity)
        let delivered = Collector<UInt64>()
        let stop = Flag()
        let producers = 4
        let perProducer = 3_000
        let total = producers * perProducer

        // Long-lived pollers with short deadlines: they suspend, time out and take tasks from
        // the lanes themselves after registering, over and over.
        var pollers: [Task<Void, Never>] = []
        for p in 0..<6 {
            pollers.append(Task {
                var random = SplitMix(seed: UInt64(p))
                while !stop.isSet {
                    let timeout = Duration.microseconds(Int64(50 + random.next() % 2_000))
                    if let task = await queue.poll(timeout: timeout) { delivered.append(task.id) }
                }
            })
        }
        // One-shot pollers without deadline, cancelled at random while producers hand them tasks.
        let victims = (0..<300).map { _ in
            Task { if let task = await queue.poll() { delivered.append(task.id) } }
        }
        let canceller = Task {
            var random = SplitMix(seed: 77)
            var order = Array(victims.indices)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(random.next() % UInt64(i + 1))) }
            for index in order {
                victims[index].cancel()
                if random.next() % 4 == 0 { await Task.yield() }
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for p in 0..<producers {
                group.addTask {
                    var random = SplitMix(seed: 500 + UInt64(p))
                    for i in 0..<perProducer {
                        let id = UInt64(p * perProducer + i)
                        try queue.add(QueuedTask(id: id, priority: Int(random.next() % 5) + 1, payload: id))
                        // Let the pollers catch up so the queue keeps running dry.
                        if random.next() % 8 == 0 { await Task.yield() }
                    }
                }
            }
            try await group.waitForAll()
        }
        await canceller.value
        for victim in victims { await victim.value }
        let finished = await eventually(120) { delivered.count == total }
        stop.set()
        for poller in pollers { await poller.value }

        let ids = delivered.all
        #expect(finished, "delivered \(ids.count) of \(total)")
        #expect(Set(ids).count == ids.count, "a task was delivered twice")
        #expect(Set(ids) == Set((0..<UInt64(total)).map { $0 }))
        #expect(queue.backlogCount == 0)

        // Quiescent: live waiters and queued tasks never coexist; each new task goes to a waiter.
        let waiters = (0..<3).map { _ in Task { await queue.poll()?.id } }
        #expect(await eventually { queue.describe().waitingPollers == 3 })
        #expect(queue.backlogCount == 0)
        for id in UInt64(100_000)..<100_003 { try queue.add(task(id)) }
        var woken: Set<UInt64> = []
        for waiter in waiters { if let id = await waiter.value { woken.insert(id) } }
        #expect(woken == [100_000, 100_001, 100_002])
        #expect(queue.describe().waitingPollers == 0)
    }
}
