import SpoolLog
import SpoolMatching
import Testing
@testable import Spool

@Suite struct SpoolEngineTimerLoopTests {
    @Test func theTimerLoopFiresTimersAsTheClockMoves() async throws {
        let h = try EngineHarness()
        await h.engine.abandon()
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(h.clock)
        configuration.log = LogConfiguration(durability: .none)
        configuration.firesTimersAutomatically = true
        h.engine = try SpoolEngine.open(directory: h.directory + "/data", configuration: configuration)
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([.startTimer(.init(timerID: "late", startToFireTimeout: .seconds(50))),
                                              .startTimer(.init(timerID: "soon", startToFireTimeout: .seconds(5)))])
        let engine = h.engine
        let fired = Task {
            var token = try await engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true).nextPageToken
            var events: [HistoryEvent] = []
            while !events.contains(where: { $0.eventType == .timerFired }) {
                let page = try await engine.getWorkflowExecutionHistory(execution: run, nextPageToken: token, waitNewEvent: true,
                                                                        timeout: .seconds(100_000))
                events += page.history
                token = page.nextPageToken
            }
            return events
        }
        // The loop sleeps until the earlier timer, which was added after the later one.
        try await eventually("the loop sleeps") { h.clock.sleeperCount >= 2 }
        h.clock.advance(by: .seconds(5))
        let events = try await fired.value
        guard case .timerFired(let timer) = events.first(where: { $0.eventType == .timerFired })?.attributes else {
            Issue.record("no timer fired"); return
        }
        #expect(timer.timerID == "soon")
        try await h.engine.close()
    }
}
