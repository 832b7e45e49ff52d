import Testing
@testable import SpoolMatching

/// The shared sleeper that times out suspended polls (`PollDeadlines`), on an injected clock.
@Suite("Poll deadlines")
struct PollDeadlineTests {
    @Test("a shorter deadline that arrives after a longer one times its poll out first, and the longer poll still gets a task")
    func shorterAfterLonger() async throws {
        let clock = ManualMatchingClock()
        let dispatcher = makeDispatcher(clock: clock)
        let queue = try dispatcher.queue("q", kind: .activity)
        let long = Task { await queue.poll(timeout: .seconds(10)) }
        #expect(await eventually { queue.describe().waitingPollers == 1 && clock.sleeperCount == 1 })
        let short = Task { await queue.poll(timeout: .seconds(1)) }
        #expect(await eventually { queue.describe().waitingPollers == 2 })
        clock.advance(by: .seconds(1))
        #expect(await short.value == nil)
        #expect(await eventually { queue.describe().waitingPollers == 1 })
        try queue.add(task(7))
        #expect(await long.value?.id == 7)
        #expect(dispatcher.context.deadlines.pending == 0)
        // The ended poll's entry stays until its deadline; then the sleeper drops it and stops.
        clock.advance(by: .seconds(9))
        #expect(await eventually { clock.sleeperCount == 0 })
        #expect(queue.describe().waitingPollers == 0)
    }

    @Test("a deadline that passes while another sleeper sleeps for an earlier one is not missed")
    func laterDeadlinesWait() async throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        let first = Task { await queue.poll(timeout: .seconds(1)) }
        #expect(await eventually { queue.describe().waitingPollers == 1 && clock.sleeperCount == 1 })
        let second = Task { await queue.poll(timeout: .seconds(3)) }
        #expect(await eventually { queue.describe().waitingPollers == 2 })
        clock.advance(by: .seconds(1))
        #expect(await first.value == nil)
        // The sleeper took the second deadline before it slept again.
        #expect(await eventually { clock.sleeperCount == 1 })
        clock.advance(by: .seconds(2))
        #expect(await second.value == nil)
        #expect(queue.describe().waitingPollers == 0)
    }

    @Test("long polls that end with a task do not pile up their deadlines")
    func endedDeadlinesAreDropped() async throws {
        let clock = ManualMatchingClock()
        let dispatcher = makeDispatcher(clock: clock)
        let queue = try dispatcher.queue("q", kind: .activity)
        let pollers = 64
        let rounds = 80  // 5,120 polls, every one waiting with a deadline an hour away
        var id: UInt64 = 0
        for _ in 0..<rounds {
            try await withThrowingTaskGroup(of: UInt64?.self) { group in
                for _ in 0..<pollers { group.addTask { await queue.poll(timeout: .seconds(3600))?.id } }
                #expect(await eventually { queue.describe().waitingPollers == pollers })
                for _ in 0..<pollers {
                    id += 1
                    try queue.add(task(id))
                }
                var got = 0
                for try await polled in group where polled != nil { got += 1 }
                #expect(got == pollers)
            }
        }
        let deadlines = dispatcher.context.deadlines
        #expect(deadlines.pending == 0)
        // Kept: at most about 1,024 on the stack and 1,024 in the heap, not all 5,120.
        #expect(await eventually { deadlines.retained <= 2_100 })
    }
}
