import Testing
@testable import SpoolMatching

@Suite("Dispatcher pause, resume, drain")
struct DispatcherControlTests {
    @Test("a paused queue keeps adds and hands out nothing until resumed")
    func pauseAndResume() async throws {
        let queue = try makeDispatcher().queue("q", kind: .workflow)
        queue.pause()
        try queue.add(task(1))
        #expect(queue.tryPoll() == nil)
        #expect(queue.describe().backlogCount == 1)
        #expect(queue.describe().isPaused)
        let waiting = Task { await queue.poll() }
        try await Task.sleep(for: .milliseconds(20))
        queue.resume()
        #expect(await waiting.value?.id == 1)
    }

    @Test("a poller already waiting when the queue is paused does not get tasks added after the pause")
    func waiterAcrossPause() async throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        let waiting = Task { await queue.poll(timeout: .seconds(10)) }
        #expect(await eventually { queue.describe().waitingPollers == 1 })
        queue.pause()
        try queue.add(task(5))
        // The poller is handed the task, sees the pause, gives it back and waits at the gate.
        #expect(await eventually { queue.describe().waitingPollers == 0 && queue.describe().backlogCount == 1 })
        queue.resume()
        #expect(await waiting.value?.id == 5)
    }

    @Test("a paused poll honours its deadline")
    func pausedDeadline() async throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        queue.pause()
        async let polled = queue.poll(timeout: .seconds(3))
        #expect(await eventually { clock.sleeperCount == 1 })
        clock.advance(by: .seconds(3))
        #expect(await polled == nil)
    }

    @Test("drain removes every queued task, highest priority first")
    func drain() throws {
        let queue = try makeDispatcher(partitions: 3).queue("q", kind: .activity)
        for id in 0..<30 as Range<UInt64> { try queue.add(task(id, priority: Int(id % 5) + 1)) }
        let drained = queue.drain()
        #expect(drained.map(\.id).sorted() == Array(0..<30))
        #expect(queue.backlogCount == 0)
        #expect(queue.tryPoll() == nil)
    }
}
