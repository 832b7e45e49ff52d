import Spool

/// A run's history as bars on a time axis: the run itself, each activity (scheduled to closed,
/// with its attempt; the started part darker), each timer, each child; signals as marks.
/// Drawn as inline SVG by ``svg(_:)``; the bars are computed from the events by ``bars(_:pending:now:)``.
enum Timeline {
    struct Bar: Equatable {
        enum Kind: String { case workflow, activity, timer, child }
        enum Outcome: String { case running, completed, failed, timedOut = "timed-out", canceled, retrying }
        var kind: Kind
        var label: String
        var start: Timestamp
        /// When an activity's last attempt started (the darker part), if it did.
        var started: Timestamp? = nil
        var end: Timestamp
        var outcome: Outcome
        var attempt: Int32 = 1
        /// For an activity waiting out a retry backoff: when its next attempt is due.
        var nextAttempt: Timestamp? = nil
    }

    /// The bars of a history; `pending` (from describe) marks open activities' attempts and
    /// retries, `now` ends what is still open.
    static func bars(_ events: [HistoryEvent], pending: [PendingActivityInfo] = [], now: Timestamp) -> (bars: [Bar], marks: [(Timestamp, String)]) {
        guard let first = events.first else { return ([], []) }
        var bars: [Bar] = []
        var marks: [(Timestamp, String)] = []
        var activityIndex: [Int64: Int] = [:]
        var timerIndex: [Int64: Int] = [:]
        var childIndex: [Int64: Int] = [:]
        var workflow = Bar(kind: .workflow, label: "workflow", start: first.eventTime, end: now, outcome: .running)
        for event in events {
            let time = event.eventTime
            switch event.attributes {
            case .workflowExecutionStarted(let a):
                workflow.label = a.workflowType
            case .workflowExecutionCompleted: workflow.end = time; workflow.outcome = .completed
            case .workflowExecutionFailed: workflow.end = time; workflow.outcome = .failed
            case .workflowExecutionTimedOut: workflow.end = time; workflow.outcome = .timedOut
            case .workflowExecutionCanceled, .workflowExecutionTerminated: workflow.end = time; workflow.outcome = .canceled
            case .workflowExecutionContinuedAsNew: workflow.end = time; workflow.outcome = .completed
            case .activityTaskScheduled(let a):
                activityIndex[event.eventID] = bars.count
                bars.append(Bar(kind: .activity, label: "\(a.activityType) \(a.activityID)", start: time, end: now, outcome: .running))
            case .activityTaskStarted(let a):
                if let i = activityIndex[a.scheduledEventID] { bars[i].started = time; bars[i].attempt = a.attempt }
            case .activityTaskCompleted(let a):
                if let i = activityIndex[a.scheduledEventID] { bars[i].end = time; bars[i].outcome = .completed }
            case .activityTaskFailed(let a):
                if let i = activityIndex[a.scheduledEventID] { bars[i].end = time; bars[i].outcome = .failed }
            case .activityTaskTimedOut(let a):
                if let i = activityIndex[a.scheduledEventID] { bars[i].end = time; bars[i].outcome = .timedOut }
            case .activityTaskCanceled(let a):
                if let i = activityIndex[a.scheduledEventID] { bars[i].end = time; bars[i].outcome = .canceled }
            case .timerStarted(let a):
                timerIndex[event.eventID] = bars.count
                bars.append(Bar(kind: .timer, label: "timer \(a.timerID) (\(Format.duration(a.startToFireTimeout)))", start: time,
                                end: now, outcome: .running))
            case .timerFired(let a):
                if let i = timerIndex[a.startedEventID] { bars[i].end = time; bars[i].outcome = .completed }
            case .timerCanceled(let a):
                if let i = timerIndex[a.startedEventID] { bars[i].end = time; bars[i].outcome = .canceled }
            case .startChildWorkflowExecutionInitiated(let a):
                childIndex[event.eventID] = bars.count
                bars.append(Bar(kind: .child, label: "child \(a.workflowType) \(a.workflowID)", start: time, end: now, outcome: .running))
            case .startChildWorkflowExecutionFailed(let a):
                if let i = childIndex[a.initiatedEventID] { bars[i].end = time; bars[i].outcome = .failed }
            case .childWorkflowExecutionClosed(let a):
                if let i = childIndex[a.initiatedEventID] {
                    bars[i].end = time
                    switch a.outcome {
                    case .completed: bars[i].outcome = .completed
                    case .failed: bars[i].outcome = .failed
                    case .canceled, .terminated: bars[i].outcome = .canceled
                    case .timedOut: bars[i].outcome = .timedOut
                    }
                }
            case .workflowExecutionSignaled(let a):
                marks.append((time, "signal \(a.signalName)"))
            case .workflowExecutionCancelRequested:
                marks.append((time, "cancel requested"))
            default:
                break
            }
        }
        for activity in pending {
            guard let i = activityIndex[activity.scheduledEventID] else { continue }
            bars[i].attempt = activity.attempt
            if let started = activity.lastStartedTime, activity.state != .scheduled { bars[i].started = started }
            if activity.attempt > 1 && activity.state == .scheduled {
                bars[i].outcome = .retrying
                bars[i].nextAttempt = activity.currentAttemptScheduledTime
            }
        }
        if workflow.outcome == .running, let last = events.last, last.eventType.isClosing { workflow.end = last.eventTime }
        return ([workflow] + bars, marks)
    }

    /// The bars as an SVG drawing (at most `limit` rows; the rest are counted under it).
    static func svg(_ bars: [Bar], marks: [(Timestamp, String)], limit: Int = 150) -> HTML {
        guard let workflow = bars.first else { return "" }
        let shown = Array(bars.prefix(limit))
        let start = workflow.start.nanosecondsSinceEpoch
        let end = max(shown.map(\.end.nanosecondsSinceEpoch).max() ?? start,
                      shown.compactMap(\.nextAttempt?.nanosecondsSinceEpoch).max() ?? start, start + 1)
        let labelWidth = 260.0, width = 1000.0, row = 22.0, top = 24.0
        let span = Double(end - start)
        func x(_ t: Timestamp) -> Double { labelWidth + (width - labelWidth - 10) * Double(t.nanosecondsSinceEpoch - start) / span }
        func f(_ value: Double) -> String { String(Int(value.rounded())) }
        let height = top + row * Double(shown.count) + 10
        var body: [HTML] = []
        // The axis: the start, the middle and the end, as offsets from the start.
        for fraction in [0.0, 0.5, 1.0] {
            let t = Timestamp(nanosecondsSinceEpoch: start + Int64(span * fraction))
            let offset = Format.duration(.nanoseconds(Int64(span * fraction)))
            body.append("<text class=\"axis\" x=\"\(f(x(t)))\" y=\"14\" text-anchor=\"\(fraction == 0 ? "start" : fraction == 1 ? "end" : "middle")\">+\(offset)</text>")
            body.append("<line class=\"grid\" x1=\"\(f(x(t)))\" y1=\"18\" x2=\"\(f(x(t)))\" y2=\"\(f(height))\"/>")
        }
        for (index, bar) in shown.enumerated() {
            let y = top + row * Double(index)
            let x0 = x(bar.start), x1 = max(x(bar.end), x0 + 2)
            let label = bar.attempt > 1 ? "\(bar.label) · attempt \(bar.attempt)" : bar.label
            let tip = "\(label): \(Format.isoUTC(bar.start)) → \(Format.isoUTC(bar.end)) (\(Format.duration(bar.end.duration(since: bar.start)))), \(bar.outcome.rawValue)"
                + (bar.nextAttempt.map { ", next attempt \(Format.isoUTC($0))" } ?? "")
            var group: HTML = "<g class=\"bar \(bar.kind.rawValue) \(bar.outcome.rawValue)\" data-attempt=\"\(bar.attempt)\"><title>\(tip)</title>"
            group += "<text x=\"4\" y=\"\(f(y + 14))\" class=\"label\">\(String(label.prefix(38)))</text>"
            group += "<rect class=\"span\" x=\"\(f(x0))\" y=\"\(f(y + 4))\" width=\"\(f(x1 - x0))\" height=\"14\" rx=\"2\"/>"
            if let started = bar.started {
                let s = max(x(started), x0)
                group += "<rect class=\"run\" x=\"\(f(s))\" y=\"\(f(y + 4))\" width=\"\(f(max(x1 - s, 2)))\" height=\"14\" rx=\"2\"/>"
            }
            if let next = bar.nextAttempt {
                group += "<line class=\"retry\" x1=\"\(f(x(next)))\" y1=\"\(f(y + 2))\" x2=\"\(f(x(next)))\" y2=\"\(f(y + 20))\"/>"
            }
            group += "</g>"
            body.append(group)
        }
        for (time, label) in marks.prefix(200) {
            let mx = x(time)
            body.append("<g class=\"mark\"><title>\(label) at \(Format.isoUTC(time))</title><path d=\"M\(f(mx - 4)) 18 L\(f(mx + 4)) 18 L\(f(mx)) 24 Z\"/></g>")
        }
        let more: HTML = bars.count > limit ? "<p class=\"muted\">\(bars.count - limit) more not drawn.</p>" : ""
        return """
            <svg class="timeline" viewBox="0 0 \(f(width)) \(f(height))" role="img" aria-label="timeline" preserveAspectRatio="xMinYMin meet">\(body)</svg>\(more)
            """
    }
}
