import Foundation
import Spool
import SpoolToolSupport

/// One run: its summary, what is pending (activities with their attempts, last failures and next
/// retry, children, timers, the workflow task), the history as a timeline and as a table with
/// payloads decoded and failures with their causes, and the signal, cancel and terminate forms.
enum WorkflowPage {
    /// The most events the page reads and shows.
    static let eventLimit = 5000

    static func execution(_ request: ConsoleRequest, from index: Int) throws(PageError) -> WorkflowExecution {
        let workflowID = request.segments[index]
        let runID = request.segments.count > index + 1 ? request.segments[index + 1] : ""
        guard !workflowID.isEmpty else { throw .badRequest("The workflow id is empty.") }
        if !runID.isEmpty && runID.utf8.count > 255 { throw .badRequest("The run id is longer than 255 bytes.") }
        return WorkflowExecution(workflowID: workflowID, runID: runID)
    }

    static func describe(_ engine: SpoolEngine, _ namespace: String, _ execution: WorkflowExecution) throws -> DescribeWorkflowExecutionResponse {
        do {
            return try engine.describeWorkflowExecution(namespace: namespace, execution: execution)
        } catch {
            guard error.code == .notFound else { throw error }
            throw PageError.notFound(execution.runID.isEmpty
                ? "No workflow with the id \u{201C}\(execution.workflowID)\u{201D} in namespace \(namespace)."
                : "No run \u{201C}\(execution.runID)\u{201D} of the workflow \u{201C}\(execution.workflowID)\u{201D} in namespace \(namespace).")
        }
    }

    static func render(engine: SpoolEngine, namespace: String, request: ConsoleRequest, layout: Layout, notice: String?) async throws -> HTML {
        let requested = try execution(request, from: 3)
        let described = try describe(engine, namespace, requested)
        let info = described.executionInfo
        var events: [HistoryEvent] = []
        var token: [UInt8]? = nil
        repeat {
            let page = try await engine.getWorkflowExecutionHistory(namespace: namespace, execution: info.execution,
                                                                    maximumPageSize: 1000, nextPageToken: token)
            events += page.history
            token = page.nextPageToken
        } while token != nil && events.count < eventLimit
        let truncated = token != nil
        let now = Timestamp(nanosecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1e9))
        let timeline = Timeline.bars(events, pending: described.pendingActivities, now: info.closeTime ?? now)

        let noticeHTML: HTML = notice.map { "<p class=\"notice\" role=\"status\">\($0)</p>" } ?? ""
        return layout.page(title: info.execution.workflowID, """
            <p class="crumbs"><a href="\(Links.workflows(namespace))">Workflows</a> ›</p>
            <h1 class="id">\(info.execution.workflowID)</h1>
            \(noticeHTML)
            \(summary(described, namespace: namespace))
            \(info.status == .running ? actions(info.execution, namespace: namespace, layout: layout) : "")
            \(pending(described, events: events, namespace: namespace))
            <section><h2>Timeline</h2>\(Timeline.svg(timeline.bars, marks: timeline.marks))</section>
            <section><h2>History <span class="muted">(\(events.count) events\(truncated ? ", the first \(eventLimit) shown" : ""))</span></h2>
            \(historyTable(events))</section>
            """)
    }

    static func summary(_ d: DescribeWorkflowExecutionResponse, namespace: String) -> HTML {
        let info = d.executionInfo
        var rows: [(String, HTML)] = [
            ("Status", Format.status(info.status)),
            ("Run id", "<span class=\"mono\" id=\"run-id\">\(info.execution.runID)</span>"),
            ("Type", "\(info.type)"),
            ("Task queue", "<a href=\"\(Links.taskQueue(namespace, info.taskQueue, .workflow))\">\(info.taskQueue)</a>"),
            ("Started", Format.time(info.startTime)),
            ("Closed", Format.time(info.closeTime)),
            ("History length", "\(info.historyLength)"),
            ("Attempt", "\(d.attempt)"),
            ("Run timeout", Format.duration(d.workflowRunTimeout)),
            ("Execution timeout", Format.duration(d.workflowExecutionTimeout)),
            ("Workflow task timeout", Format.duration(d.workflowTaskTimeout)),
            ("Sticky queue", d.stickyTaskQueue.map { "\($0)" } ?? "<span class=\"none\">—</span>"),
        ]
        if let time = info.executionTime, time != info.startTime { rows.append(("Execution time", Format.time(time))) }
        if d.cancelRequested { rows.append(("Cancel", "requested")) }
        if !d.cronSchedule.isEmpty { rows.append(("Cron", "\(d.cronSchedule)")) }
        if let parent = info.parentExecution {
            rows.append(("Parent", "<a href=\"\(Links.workflow(info.parentNamespace.isEmpty ? namespace : info.parentNamespace, parent))\">\(parent.workflowID)</a>"))
        }
        if !d.firstExecutionRunID.isEmpty && d.firstExecutionRunID != info.execution.runID {
            rows.append(("First run", "<a href=\"\(Links.workflow(namespace, WorkflowExecution(workflowID: info.execution.workflowID, runID: d.firstExecutionRunID)))\">\(d.firstExecutionRunID)</a>"))
        }
        if let next = d.newExecutionRunID, !next.isEmpty {
            rows.append(("Next run", "<a href=\"\(Links.workflow(namespace, WorkflowExecution(workflowID: info.execution.workflowID, runID: next)))\">\(next)</a>"))
        }
        for (name, payload) in info.searchAttributes.sorted(by: { $0.key < $1.key }) {
            rows.append(("\(name)", Format.payloads([payload])))
        }
        let cells = HTML.join(rows.map { "<tr><th>\($0.0)</th><td>\($0.1)</td></tr>" })
        return "<table class=\"summary\" id=\"summary\">\(cells)</table>"
    }

    static func actions(_ execution: WorkflowExecution, namespace: String, layout: Layout) -> HTML {
        let base = Links.workflow(namespace, execution)
        return """
            <section class="actions"><h2>Actions</h2>
            <form method="post" action="\(base)/signal" class="inline" id="signal-form">\(layout.csrfField)
            <input name="name" placeholder="signal name" required aria-label="signal name">
            <input name="input" placeholder="input as JSON (optional)" aria-label="signal input">
            <button type="submit">Signal…</button></form>
            <form method="post" action="\(base)/cancel" class="inline" id="cancel-form">\(layout.csrfField)
            <input name="reason" placeholder="reason" aria-label="cancel reason"><button type="submit">Request cancel…</button></form>
            <form method="post" action="\(base)/terminate" class="inline" id="terminate-form">\(layout.csrfField)
            <input name="reason" placeholder="reason" aria-label="terminate reason"><button type="submit" class="danger">Terminate…</button></form>
            </section>
            """
    }

    static func pending(_ d: DescribeWorkflowExecutionResponse, events: [HistoryEvent], namespace: String) -> HTML {
        var sections: [HTML] = []
        if !d.pendingActivities.isEmpty {
            let rows = HTML.join(d.pendingActivities.map { a in
                let maximum: String = a.maximumAttempts > 0 ? " of \(a.maximumAttempts)" : ""
                let next: HTML = a.state == .scheduled && a.attempt > 1 ? Format.time(a.currentAttemptScheduledTime) : "<span class=\"none\">—</span>"
                let state: String = a.state == .scheduled ? (a.attempt > 1 ? "retrying" : "scheduled") : a.state == .started ? "started" : "cancel requested"
                return """
                    <tr data-activity-id="\(a.activityID)"><td>\(a.activityID)</td><td>\(a.activityType)</td><td>\(state)</td>\
                    <td class="num attempt">\(a.attempt)\(maximum)</td><td>\(Format.time(a.scheduledTime))</td><td>\(Format.time(a.lastStartedTime))</td>\
                    <td>\(next)</td><td>\(Format.failure(a.lastFailure))</td><td>\(a.lastWorkerIdentity)</td></tr>
                    """
            })
            sections.append("""
                <h3>Activities</h3><div class="scroll"><table id="pending-activities"><thead><tr><th>Id</th><th>Type</th><th>State</th><th class="num">Attempt</th>\
                <th>Scheduled</th><th>Last started</th><th>Next attempt</th><th>Last failure</th><th>Last worker</th></tr></thead><tbody>\(rows)</tbody></table></div>
                """)
        }
        if !d.pendingChildren.isEmpty {
            let rows = HTML.join(d.pendingChildren.map { c in
                "<tr><td><a href=\"\(Links.workflow(namespace, WorkflowExecution(workflowID: c.workflowID, runID: c.runID)))\">\(c.workflowID)</a></td><td>\(c.workflowTypeName)</td><td>\(c.parentClosePolicy.description)</td></tr>"
            })
            sections.append("<h3>Children</h3><table id=\"pending-children\"><thead><tr><th>Workflow id</th><th>Type</th><th>Parent close policy</th></tr></thead><tbody>\(rows)</tbody></table>")
        }
        if !d.pendingTimerIDs.isEmpty {
            var fireTimes: [String: Timestamp] = [:]
            for event in events {
                if case .timerStarted(let a) = event.attributes { fireTimes[a.timerID] = event.eventTime.advanced(by: a.startToFireTimeout) }
            }
            let rows = HTML.join(d.pendingTimerIDs.map { "<tr><td>\($0)</td><td>\(Format.time(fireTimes[$0]))</td></tr>" })
            sections.append("<h3>Timers</h3><table id=\"pending-timers\"><thead><tr><th>Timer id</th><th>Fires</th></tr></thead><tbody>\(rows)</tbody></table>")
        }
        if let task = d.pendingWorkflowTask {
            sections.append("""
                <h3>Workflow task</h3><p id="pending-workflow-task">\(task.started ? "started" : "scheduled") on \(task.taskQueue), \
                attempt \(task.attempt), scheduled \(Format.time(task.scheduledTime))</p>
                """)
        }
        guard !sections.isEmpty else { return "" }
        return "<section class=\"pending\"><h2>Pending</h2>\(sections)</section>"
    }

    static func historyTable(_ events: [HistoryEvent]) -> HTML {
        guard let first = events.first else { return "<p class=\"empty\">No events.</p>" }
        let rows = HTML.join(events.map { event in
            var details: [HTML] = []
            var failures: [HTML] = []
            switch event.attributes {
            case .workflowExecutionFailed(let a): failures.append(Format.failure(a.failure))
            case .activityTaskFailed(let a): failures.append(Format.failure(a.failure))
            case .activityTaskTimedOut(let a): failures.append(Format.failure(a.failure))
            case .workflowTaskFailed(let a): failures.append(Format.failure(a.failure))
            case .activityTaskStarted(let a) where a.lastFailure != nil: failures.append(Format.failure(a.lastFailure))
            default: break
            }
            for (name, value) in HistoryAttributes.of(event) {
                let shown: HTML
                switch value {
                case .text(let text):
                    // Failures are shown whole below, with their causes.
                    if !failures.isEmpty && (name == "failure" || name == "lastFailure") { continue }
                    shown = "\(text)"
                case .integer(let n): shown = "\(n)"
                case .payload(let payloads): shown = Format.payloads(payloads)
                case .duration(let duration): shown = "\(Format.duration(duration))"
                case .bool(let b): shown = "\(b ? "true" : "false")"
                }
                details.append("<div class=\"attr\"><span class=\"name\">\(name)</span> \(shown)</div>")
            }
            let elapsed = Format.duration(event.eventTime.duration(since: first.eventTime))
            return """
                <tr class="event \(event.eventType.description)" data-event-id="\(event.eventID)"><td class="num">\(event.eventID)</td>\
                <td>\(Format.time(event.eventTime))<br><span class="muted">+\(elapsed)</span></td><td class="type">\(event.eventType.description)</td>\
                <td>\(details)\(failures)</td></tr>
                """
        })
        return "<div class=\"scroll\"><table class=\"history\" id=\"history\"><thead><tr><th class=\"num\">Id</th><th>Time</th><th>Type</th><th>Details</th></tr></thead><tbody>\(rows)</tbody></table></div>"
    }

    // MARK: Actions

    /// Signal, cancel or terminate: without `confirmed=yes`, a page that asks; with it, the call,
    /// then back to the run's page with a notice.
    static func act(engine: SpoolEngine, namespace: String, request: ConsoleRequest, layout: Layout, action: String) async throws -> ConsoleResponse {
        let execution = try execution(request, from: 3)
        guard !execution.runID.isEmpty else { throw PageError.badRequest("An action needs the run id in its URL.") }
        let described = try describe(engine, namespace, execution)
        let back = Links.workflow(namespace, execution)
        let reason = request.field("reason") ?? ""
        let name = request.field("name") ?? ""
        let input = request.field("input") ?? ""
        var inputPayloads: Payloads? = nil
        switch action {
        case "signal":
            guard !name.isEmpty else { throw PageError.badRequest("A signal needs a name.") }
            if !input.isEmpty {
                guard (try? JSONSerialization.jsonObject(with: Data(input.utf8), options: [.fragmentsAllowed])) != nil else {
                    throw PageError.badRequest("The signal's input is not JSON: \(input.prefix(200))")
                }
                inputPayloads = .json(input)
            }
        case "cancel", "terminate": break
        default: throw PageError.notFound("No action \u{201C}\(action)\u{201D}.")
        }
        guard described.executionInfo.status == .running else {
            throw PageError(status: 409, title: "Already closed",
                            message: "The run is \(described.executionInfo.status.description); it cannot be \(action == "signal" ? "signaled" : action == "cancel" ? "canceled" : "terminated").")
        }
        if request.field("confirmed") != "yes" {
            let what: String = switch action {
            case "signal": "Send the signal \u{201C}\(name)\u{201D} to"
            case "cancel": "Ask to cancel"
            default: "Terminate"
            }
            let hidden = HTML.join(request.form.filter { $0.0 != "confirmed" }.map { "<input type=\"hidden\" name=\"\($0.0)\" value=\"\($0.1)\">" })
            return .page(layout.page(title: "Confirm", """
                <h1>Confirm</h1><p class="confirm-question">\(what) the run <span class="mono">\(execution.runID)</span> of <strong>\(execution.workflowID)</strong>?</p>
                \(reason.isEmpty ? "" : "<p>Reason: \(reason)</p>" as HTML)\(input.isEmpty ? "" : "<p>Input:</p><pre class=\"payload\">\(input)</pre>" as HTML)
                <form method="post" action="\(back)/\(action)" id="confirm-form">\(hidden)<input type="hidden" name="confirmed" value="yes">
                <button type="submit" class="\(action == "terminate" ? "danger" : "")" id="confirm">\(action == "signal" ? "Send the signal" : action == "cancel" ? "Request cancel" : "Terminate")</button>
                <a href="\(back)">Back</a></form>
                """))
        }
        let identity = "spool console"
        switch action {
        case "signal":
            try await engine.signalWorkflowExecution(namespace: namespace, execution: execution, signalName: name, input: inputPayloads,
                                                     identity: identity, requestID: "console-\(UInt64.random(in: 0...UInt64.max))")
        case "cancel":
            try await engine.requestCancelWorkflowExecution(namespace: namespace, execution: execution, reason: reason, identity: identity)
        default:
            try await engine.terminateWorkflowExecution(namespace: namespace, execution: execution, reason: reason, identity: identity)
        }
        return .redirect(back + "?done=" + action)
    }
}
