import Testing
@testable import Spool
@testable import SpoolConsole

/// The timeline's bars from a history written as Temporal writes one.
@Suite struct TimelineTests {
    let started = WorkflowExecutionStartedEventAttributes(
        workflowType: "order", taskQueue: "q", workflowTaskTimeout: .seconds(10), continuedExecutionRunID: "", firstExecutionRunID: "r",
        identity: "c", requestID: "", attempt: 1)
    let scheduled = ActivityTaskScheduledEventAttributes(
        activityID: "1", activityType: "charge", taskQueue: "q", startToCloseTimeout: .seconds(10), workflowTaskCompletedEventID: 4,
        retryPolicy: RetryPolicy())

    func at(_ seconds: Int64) -> Timestamp { Timestamp(nanosecondsSinceEpoch: 1_000_000_000_000_000_000 + seconds * 1_000_000_000) }

    @Test func activitiesAndTimersBecomeBarsWithTheirOutcomes() {
        let events: [HistoryEvent] = [
            HistoryEvent(eventID: 1, eventTime: at(0), attributes: .workflowExecutionStarted(started)),
            HistoryEvent(eventID: 5, eventTime: at(1), attributes: .activityTaskScheduled(scheduled)),
            HistoryEvent(eventID: 6, eventTime: at(2), attributes: .timerStarted(.init(timerID: "t", startToFireTimeout: .seconds(10), workflowTaskCompletedEventID: 4))),
            HistoryEvent(eventID: 7, eventTime: at(4), attributes: .activityTaskStarted(.init(scheduledEventID: 5, identity: "w", requestID: "r", attempt: 3))),
            HistoryEvent(eventID: 8, eventTime: at(5), attributes: .activityTaskFailed(.init(failure: .application("boom"), scheduledEventID: 5, startedEventID: 7, identity: "w", retryState: .nonRetryableFailure))),
            HistoryEvent(eventID: 9, eventTime: at(6), attributes: .workflowExecutionSignaled(.init(signalName: "go", identity: "c"))),
            HistoryEvent(eventID: 10, eventTime: at(12), attributes: .timerFired(.init(timerID: "t", startedEventID: 6))),
        ]
        let (bars, marks) = Timeline.bars(events, now: at(20))
        #expect(bars.count == 3)
        #expect(bars[0].kind == .workflow && bars[0].label == "order" && bars[0].outcome == .running && bars[0].end == at(20))
        #expect(bars[1] == Timeline.Bar(kind: .activity, label: "charge 1", start: at(1), started: at(4), end: at(5), outcome: .failed, attempt: 3))
        #expect(bars[2].kind == .timer && bars[2].start == at(2) && bars[2].end == at(12) && bars[2].outcome == .completed)
        #expect(marks.count == 1 && marks[0].0 == at(6) && marks[0].1 == "signal go")
        let svg = Timeline.svg(bars, marks: marks).markup
        #expect(svg.hasPrefix("<svg class=\"timeline\""))
        #expect(svg.contains("class=\"bar activity failed\" data-attempt=\"3\""))
    }

    @Test func aPendingActivityInBackoffIsRetryingWithItsNextAttempt() {
        let events: [HistoryEvent] = [
            HistoryEvent(eventID: 1, eventTime: at(0), attributes: .workflowExecutionStarted(started)),
            HistoryEvent(eventID: 5, eventTime: at(1), attributes: .activityTaskScheduled(scheduled)),
        ]
        let pending = PendingActivityInfo(activityID: "1", activityType: "charge", scheduledEventID: 5, state: .scheduled, attempt: 2,
                                          maximumAttempts: 0, scheduledTime: at(1), currentAttemptScheduledTime: at(30),
                                          lastFailure: .application("boom"), lastWorkerIdentity: "w")
        let (bars, _) = Timeline.bars(events, pending: [pending], now: at(10))
        #expect(bars[1].outcome == .retrying && bars[1].attempt == 2 && bars[1].nextAttempt == at(30) && bars[1].end == at(10))
        #expect(Timeline.svg(bars, marks: []).markup.contains("class=\"retry\""))
    }

    @Test func ratesComeFromConsecutiveSamples() {
        let points = RateHistory.points([.init(seconds: 0, added: 0, dispatched: 0), .init(seconds: 5, added: 50, dispatched: 10),
                                         .init(seconds: 10, added: 50, dispatched: 60)])
        #expect(points == [.init(seconds: 5, addRate: 10, dispatchRate: 2), .init(seconds: 10, addRate: 0, dispatchRate: 10)])
        let history = RateHistory(interval: .seconds(5), capacity: 3)
        let key = RateHistory.Key(namespace: "default", name: "q", kind: .activity)
        for index in 0..<5 { history.record(key, .init(seconds: Double(index), added: index, dispatched: 0)) }
        #expect(history.points(key).count == 2)
        // Counters that go back (a reopened engine) start the ring over.
        history.record(key, .init(seconds: 9, added: 0, dispatched: 0))
        #expect(history.points(key).isEmpty)
    }
}
