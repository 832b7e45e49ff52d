import Foundation
import Spool

/// Every task queue of a namespace (pollers, backlog, oldest task, rates over the last minutes,
/// rate limits, paused), and one queue's page with its backlog per priority, pollers, settings
/// and the pause / resume / rate forms.
enum TaskQueuesPage {
    static func kind(_ text: String) throws(PageError) -> TaskQueueKind {
        switch text {
        case "workflow": return .workflow
        case "activity": return .activity
        default: throw .notFound("No task queue kind \u{201C}\(text)\u{201D}: it is workflow or activity.")
        }
    }

    static func oldest(_ info: TaskQueueInfo) -> Duration? { info.backlog.compactMap(\.oldestAge).max() }

    static func limit(_ value: Double?) -> HTML {
        guard let value else { return "<span class=\"none\">unlimited</span>" }
        return "\(Format.rate(value))/s"
    }

    static func list(engine: SpoolEngine, namespace: String, rates: RateHistory, layout: Layout) throws -> HTML {
        let queues = try engine.taskQueueNames(namespace: namespace)
        let window = Double(rates.capacity) * Double(rates.interval.components.seconds)
        let rows = HTML.join(try queues.map { queue throws in
            let info = try engine.describeTaskQueue(namespace: namespace, taskQueue: queue.name, kind: queue.kind)
            let points = rates.points(.init(namespace: namespace, name: queue.name, kind: queue.kind))
            return """
                <tr data-queue="\(queue.name)" data-kind="\(Links.kindName(queue.kind))"><td><a href="\(Links.taskQueue(namespace, queue.name, queue.kind))">\(queue.name)</a></td>\
                <td>\(Links.kindName(queue.kind))</td><td class="num pollers">\(info.pollers.count)</td><td class="num backlog">\(info.backlogCount)</td>\
                <td>\(Format.duration(oldest(info)))</td><td>\(RateHistory.chart(points, window: window))</td>\
                <td>\(limit(info.config.queueRateLimit?.requestsPerSecond))</td><td>\(limit(info.effectiveRateLimit))</td>\
                <td class="paused">\(info.isPaused ? "<span class=\"badge paused\">paused</span>" as HTML : "no")</td></tr>
                """
        })
        let table: HTML = queues.isEmpty ? "<p class=\"empty\">No task queue has been used in this namespace since the server started.</p>" : """
            <div class="scroll"><table class="queues" id="queues"><thead><tr><th>Name</th><th>Kind</th><th class="num">Pollers</th><th class="num">Backlog</th>\
            <th>Oldest task</th><th>Adds <span class="legend-add">━</span> / dispatches <span class="legend-dispatch">┅</span>, last \(Int(window / 60)) min</th>\
            <th>Configured rate</th><th>Effective rate</th><th>Paused</th></tr></thead><tbody>\(rows)</tbody></table></div>
            """
        return layout.page(title: "Task queues", "<h1>Task queues</h1>\(table)")
    }

    static func queue(engine: SpoolEngine, namespace: String, request: ConsoleRequest, rates: RateHistory, layout: Layout) throws -> HTML {
        let kind = try kind(request.segments[3])
        let name = request.segments[4]
        let info: TaskQueueInfo
        do {
            info = try engine.describeTaskQueue(namespace: namespace, taskQueue: name, kind: kind, fairnessKeys: true)
        } catch {
            if error.code == .invalidArgument { throw PageError.badRequest(error.message) }
            throw error
        }
        let window = Double(rates.capacity) * Double(rates.interval.components.seconds)
        let points = rates.points(.init(namespace: namespace, name: name, kind: kind))
        let backlog = HTML.join(info.backlog.map { priority in
            let keyed = priority.fairnessKeys.reduce(0) { $0 + $1.count }
            let shown = priority.fairnessKeys.prefix(20).map { key in
                "<li data-fairness-key=\"\(key.key)\"><span class=\"mono\">\(key.key)</span> \(key.count) (oldest \(Format.duration(key.oldestAge)))</li>" as HTML
            }
            let more: HTML = priority.fairnessKeys.count > 20 ? "<li class=\"muted\">\(priority.fairnessKeys.count - 20) more keys</li>" : ""
            let unkeyed: HTML = keyed > 0 && priority.count > keyed ? "<li class=\"muted\">no key: \(priority.count - keyed)</li>" : ""
            let keys: HTML = keyed == 0 ? "<span class=\"none\">—</span>" : "<ul class=\"keys\">\(shown)\(more)\(unkeyed)</ul>"
            return "<tr data-priority=\"\(priority.priority)\"><td class=\"num\">\(priority.priority)</td><td class=\"num\">\(priority.count)</td><td>\(Format.duration(priority.oldestAge))</td><td>\(keys)</td></tr>"
        })
        let pollers: HTML = !info.pollersVisible ? "<p class=\"muted\">Pollers are only visible in the process they poll.</p>"
            : info.pollers.isEmpty ? "<p class=\"empty\">No poller in the last 5 minutes.</p>"
            : "<table id=\"pollers\"><thead><tr><th>Identity</th><th>Last poll</th><th>Own rate limit</th><th class=\"num\">Tasks dispatched</th></tr></thead><tbody>\(HTML.join(info.pollers.map { "<tr><td>\($0.identity)</td><td>\(Format.time($0.lastAccessTime))</td><td>\(limit($0.ratePerSecond))</td><td class=\"num\">\($0.dispatched)</td></tr>" }))</tbody></table>"
        func rateConfig(_ config: TaskQueueRateLimitConfig?) -> HTML {
            guard let config else { return "<span class=\"none\">not set</span>" }
            return "\(Format.rate(config.requestsPerSecond))/s <span class=\"muted\">by \(config.updateIdentity.isEmpty ? "?" : config.updateIdentity), \(Format.time(config.updateTime))\(config.reason.isEmpty ? "" : ": " + config.reason)</span>"
        }
        let pause: HTML = info.config.pause.map { "paused \(Format.time($0.time))\($0.reason.isEmpty ? "" : ": " + $0.reason)\($0.identity.isEmpty ? "" : " (by " + $0.identity + ")")" }
            ?? (info.isPaused ? "held back (rate 0)" : "no")
        let base = Links.taskQueue(namespace, name, kind)
        let pauseForm: HTML = info.config.pause == nil
            ? "<form method=\"post\" action=\"\(base)/pause\" class=\"inline\" id=\"pause-form\">\(layout.csrfField)<input name=\"reason\" placeholder=\"reason\" aria-label=\"pause reason\"><button type=\"submit\">Pause</button></form>"
            : "<form method=\"post\" action=\"\(base)/resume\" class=\"inline\" id=\"resume-form\">\(layout.csrfField)<button type=\"submit\">Resume</button></form>"
        let notice: HTML = request.parameter("done").map { "<p class=\"notice\" role=\"status\">Done: \($0).</p>" } ?? ""
        return layout.page(title: name, """
            <p class="crumbs"><a href="\(Links.taskQueues(namespace))">Task queues</a> ›</p>
            <h1 class="id">\(name) <span class="muted">\(Links.kindName(kind))</span></h1>\(notice)
            <table class="summary" id="queue-summary">
            <tr><th>Paused</th><td id="paused">\(pause)</td></tr>
            <tr><th>Backlog</th><td id="backlog">\(info.backlogCount)</td></tr>
            <tr><th>Oldest task</th><td>\(Format.duration(oldest(info)))</td></tr>
            <tr><th>Configured rate</th><td id="configured-rate">\(rateConfig(info.config.queueRateLimit))</td></tr>
            <tr><th>Pollers' rate</th><td>\(limit(info.pollerRateLimit))</td></tr>
            <tr><th>Effective rate</th><td id="effective-rate">\(limit(info.effectiveRateLimit))</td></tr>
            <tr><th>Fairness key rate</th><td>\(rateConfig(info.config.fairnessKeyRateLimit))</td></tr>
            <tr><th>Partitions</th><td>\(info.partitions)</td></tr>
            <tr><th>Added / dispatched since open</th><td>\(info.added) / \(info.dispatched) (\(Format.rate(info.addRate))/s, \(Format.rate(info.dispatchRate))/s on average)</td></tr>
            <tr><th>Pollers waiting now</th><td>\(info.waitingPollers)</td></tr>
            </table>
            <section><h2>Adds <span class="legend-add">━</span> and dispatches <span class="legend-dispatch">┅</span> per second, last \(Int(window / 60)) minutes</h2>\(RateHistory.chart(points, width: 600, height: 120, window: window))</section>
            <section class="actions"><h2>Settings</h2>\(pauseForm)
            <form method="post" action="\(base)/rate" class="inline" id="rate-form">\(layout.csrfField)
            <input name="rate" inputmode="decimal" placeholder="tasks per second, empty to remove" aria-label="rate limit">
            <input name="reason" placeholder="reason" aria-label="rate reason"><button type="submit">Set rate</button></form></section>
            <section><h2>Backlog by priority</h2><table id="backlog-by-priority"><thead><tr><th class="num">Priority</th><th class="num">Tasks</th><th>Oldest</th><th>By fairness key (most tasks first)</th></tr></thead><tbody>\(backlog)</tbody></table></section>
            <section><h2>Pollers</h2>\(pollers)</section>
            """)
    }

    static func act(engine: SpoolEngine, namespace: String, request: ConsoleRequest, action: String) throws -> ConsoleResponse {
        let kind = try kind(request.segments[3])
        let name = request.segments[4]
        let reason = request.field("reason") ?? ""
        let identity = "spool console"
        do {
            switch action {
            case "pause":
                try engine.pauseTaskQueue(namespace: namespace, taskQueue: name, kind: kind, reason: reason, identity: identity)
            case "resume":
                try engine.resumeTaskQueue(namespace: namespace, taskQueue: name, kind: kind)
            case "rate":
                let text = (request.field("rate") ?? "").trimmingCharacters(in: .whitespaces)
                let update: UpdateTaskQueueConfigRequest.RateLimitUpdate
                if text.isEmpty {
                    update = .unset(reason: reason)
                } else {
                    guard let rate = Double(text), rate.isFinite, rate >= 0 else {
                        throw PageError.badRequest("The rate must be a number of tasks per second, 0 or more (got \(text)).")
                    }
                    update = .set(requestsPerSecond: rate, reason: reason)
                }
                var change = UpdateTaskQueueConfigRequest(namespace: namespace, taskQueue: name, kind: kind, identity: identity)
                change.queueRateLimit = update
                _ = try engine.updateTaskQueueConfig(change)
            default:
                throw PageError.notFound("No action \u{201C}\(action)\u{201D}.")
            }
        } catch let error as SpoolError {
            if error.code == .invalidArgument { throw PageError.badRequest(error.message) }
            throw error
        }
        return .redirect(Links.taskQueue(namespace, name, kind) + "?done=" + action)
    }
}
