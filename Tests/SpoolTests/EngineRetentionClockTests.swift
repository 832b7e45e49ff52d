import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import Spool

/// Issue 25, point 6: a wall clock far ahead at open does not make closed runs disappear, and
/// retention never goes backward.
@Suite struct EngineRetentionClockTests {
    @Test("a clock 30 days ahead at reopen drops no run whose records are the newest in the log")
    func clockAheadAtReopenKeepsNewestRuns() async throws {
        let h = try EngineHarness()
        let first = try await h.start("first")
        try await h.engine.terminateWorkflowExecution(execution: first)
        let second = try await h.start("second")
        try await h.engine.terminateWorkflowExecution(execution: second)
        try await h.engine.close()
        // As `faketime +30d spool workflow list`: the next open sees a clock 30 days ahead.
        h.clock.advance(by: .seconds(30 * 24 * 3600))
        h.engine = try EngineHarness.open(h.directory, clock: h.clock, durability: h.durability)
        #expect(h.engine.recovery?.droppedRuns == 0)
        #expect(Set(h.engine.listWorkflowExecutions().map(\.execution)) == [first, second])
        #expect(try await h.history(first).count >= 2)
        // Nothing was forgotten durably either: reopened again, both are still there.
        try await h.closeAndReopen()
        #expect(Set(h.engine.listWorkflowExecutions().map(\.execution)) == [first, second])
        #expect(try h.describe(second).executionInfo.status == .terminated)
    }

    @Test("a running engine still drops closed runs once retention has really passed")
    func retentionStillRunsWithTime() async throws {
        let h = try EngineHarness()
        let done = try await h.start("done")
        try await h.engine.terminateWorkflowExecution(execution: done)
        await h.advance(.seconds(7 * 24 * 3600))
        #expect(throws: SpoolError.self) { try h.describe(done) }
    }

    @Test("the retention horizon never goes backward and is bounded by the log's newest record at open")
    func horizonIsMonotonicAndBounded() throws {
        let clock = ManualMatchingClock(start: EngineHarness.epoch)
        let week = Duration.seconds(7 * 24 * 3600)
        let retention = RetentionClock(clock: .manual(clock), retention: week)
        let slack = RetentionClock.slack(retention: week)
        #expect(slack > .zero && slack < week)
        let newest = Timestamp(nanosecondsSinceEpoch: Int64(EngineHarness.epoch.nanoseconds))
        retention.observe(newest)
        clock.advance(by: .seconds(30 * 24 * 3600))
        retention.start()
        // The wall clock is 30 days past the newest record: the horizon is the record's time
        // plus the slack, short of a week, so a run closed at the newest record is kept.
        #expect(retention.now() == newest.advanced(by: slack))
        clock.advance(by: .seconds(60))
        #expect(retention.now() == newest.advanced(by: slack + .seconds(60)))
        let before = retention.now()
        #expect(retention.now() >= before)
    }

    @Test("workflow ids, types and task queues: control characters, U+FFFD and over 1000 bytes are refused")
    func badNamesAreRefused() async throws {
        let h = try EngineHarness()
        let bad = ["a\nb", "tab\t", "nul\u{0}", "\u{FFFD}", String(repeating: "w", count: 1001)]
        for id in bad {
            await #expect(throws: SpoolError.self) { _ = try await h.start(id) }
            await #expect(throws: SpoolError.self) { _ = try await h.start("ok", type: id) }
            await #expect(throws: SpoolError.self) { _ = try await h.start("ok", queue: id) }
        }
        do {
            _ = try await h.start("line\nbreak")
            Issue.record("a workflow id with a newline was accepted")
        } catch let error as SpoolError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("workflow id") && error.message.contains("newline"), "\(error)")
            #expect(!error.description.contains("\n"), "\(error)")
        } catch {
            Issue.record("\(error) is not a SpoolError")
        }
        #expect(h.engine.listWorkflowExecutions().isEmpty)
        _ = try await h.start(String(repeating: "w", count: 1000))
    }

    @Test("a wall clock stepped back dates no event before its run's start")
    func clockBackNeverDatesEventsBeforeTheStart() async throws {
        let h = try EngineHarness()
        h.clock.advance(by: .seconds(3600))
        let run = try await h.start("w")
        try await h.engine.close()
        // As a machine whose clock was stepped back an hour: a new clock, earlier than the start.
        let earlier = ManualMatchingClock(start: EngineHarness.epoch)
        h.engine = try EngineHarness.open(h.directory, clock: earlier, durability: h.durability)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s")
        let history = try await h.history(run)
        let first = try #require(history.first).eventTime
        #expect(history.count >= 3)
        #expect(history.allSatisfy { $0.eventTime.duration(since: first) >= .zero }, "\(history.map(\.eventTime))")
    }
}
