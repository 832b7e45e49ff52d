import Testing
@testable import SpoolMatching

@Suite("Dispatcher schedule-to-start deadlines")
struct DispatcherExpiryTests {
    @Test("an expired task is dropped, reported, and takes no rate-limit token")
    func expiredTaskIsDropped() async throws {
        let clock = ManualMatchingClock()
        let expired = Collector<ExpiredTask>()
        let queue = try makeDispatcher(clock: clock) { expired.append($0) }.queue("q", kind: .activity)
        try queue.setRateLimit(RateLimit(perSecond: 1))
        try queue.add(task(1, deadline: clock.now().advanced(by: .seconds(1))))
        try queue.add(task(2))
        clock.advance(by: .seconds(2))
        // One token: task 1 is past its deadline and dropped; task 2 gets the token.
        #expect(queue.tryPoll()?.id == 2)
        #expect(queue.tryPoll() == nil)
        #expect(expired.all.map(\.id) == [1])
        #expect(expired.all.first?.queue == "q")
        #expect(expired.all.first?.kind == .activity)
        let description = queue.describe()
        #expect(description.expired == 1)
        #expect(description.dispatched == 1)
    }

    @Test("a task handed to a waiting poller after its deadline is dropped and the poller keeps waiting")
    func expiredDuringHandOff() async throws {
        let clock = ManualMatchingClock()
        let expired = Collector<UInt64>()
        let queue = try makeDispatcher(clock: clock) { expired.append($0.id) }.queue("q", kind: .activity)
        async let polled = queue.poll()
        #expect(await eventually { queue.describe().waitingPollers == 1 })
        try queue.add(task(1, deadline: clock.now()))
        #expect(await eventually { expired.count == 1 })
        try queue.add(task(2, deadline: clock.now().advanced(by: .seconds(10))))
        #expect(await polled?.id == 2)
    }
}
