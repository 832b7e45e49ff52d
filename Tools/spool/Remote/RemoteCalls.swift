import FoundationEssentials
import GRPCCore
import Spool
import SpoolServerProtos
import SpoolToolSupport
import SwiftProtobuf

// What the workflow commands do through a server (`--address`): the same calls as on a data
// directory, made with Temporal's WorkflowService messages, and printed the way the local
// commands print (tables), or as Temporal's JSON (`--json`: the messages' protobuf JSON, as the
// `temporal` CLI prints with `-o json`).

typealias ProtoExecutionInfo = Temporal_Api_Workflow_V1_WorkflowExecutionInfo

extension RemoteServer {
    /// The namespace the commands use (the engine's default namespace, Temporal's "default").
    static let namespace = defaultNamespace

    func execution(_ target: ExecutionOptions) -> Temporal_Api_Common_V1_WorkflowExecution {
        var execution = Temporal_Api_Common_V1_WorkflowExecution()
        execution.workflowID = target.id
        execution.runID = target.runID
        return execution
    }

    /// Every event of a run's history, page after page.
    func history(_ target: ExecutionOptions) async throws -> [Temporal_Api_History_V1_HistoryEvent] {
        try await call { client, options, metadata in
            var events: [Temporal_Api_History_V1_HistoryEvent] = []
            var request = Temporal_Api_Workflowservice_V1_GetWorkflowExecutionHistoryRequest()
            request.namespace = Self.namespace
            request.execution = execution(target)
            repeat {
                let page = try await client.getWorkflowExecutionHistory(request, metadata: metadata, options: options)
                events += page.history.events
                request.nextPageToken = page.nextPageToken
            } while !request.nextPageToken.isEmpty
            return events
        }
    }

    /// The runs a visibility query selects, up to `limit`.
    func list(query: String, limit: Int?) async throws -> [ProtoExecutionInfo] {
        try await call(rejectInvalidArgumentAsUsage: true) { client, options, metadata in
            var runs: [ProtoExecutionInfo] = []
            var request = Temporal_Api_Workflowservice_V1_ListWorkflowExecutionsRequest()
            request.namespace = Self.namespace
            request.query = query
            request.pageSize = Int32(min(limit ?? 1000, 1000))
            repeat {
                let page = try await client.listWorkflowExecutions(request, metadata: metadata, options: options)
                runs += page.executions
                request.nextPageToken = page.nextPageToken
            } while !request.nextPageToken.isEmpty && runs.count < (limit ?? .max)
            if let limit, runs.count > limit { runs.removeLast(runs.count - limit) }
            return runs
        }
    }
}

/// `text` as one `binary/plain` payload, as the local commands send their `--input`.
func plainTextPayload(_ text: String) -> Temporal_Api_Common_V1_Payload {
    var payload = Temporal_Api_Common_V1_Payload()
    payload.metadata = ["encoding": [UInt8]("binary/plain".utf8)].mapValues { Data($0) }
    payload.data = Data(text.utf8)
    return payload
}

/// A fresh request id (a random UUID), so that a retried call is not applied twice.
func randomRequestID() -> String {
    var generator = SystemRandomNumberGenerator()
    var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
    bytes[6] = bytes[6] & 0x0F | 0x40
    bytes[8] = bytes[8] & 0x3F | 0x80
    let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
    return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(separator: "-")
}

/// Temporal's proto JSON of a message on one line (`{}` if it cannot be encoded).
func protoJSON(_ message: any SwiftProtobuf.Message) -> String {
    (try? message.jsonString()) ?? "{}"
}

extension Google_Protobuf_Timestamp {
    var spool: Timestamp { Timestamp(nanosecondsSinceEpoch: seconds * 1_000_000_000 + Int64(nanos)) }
}

/// A Temporal status as the local commands name it (`running`, `continued-as-new`, …).
func statusName(_ status: Temporal_Api_Enums_V1_WorkflowExecutionStatus) -> String {
    WorkflowExecutionStatus(rawValue: UInt8(clamping: status.rawValue))?.description ?? "unspecified"
}

/// An event type as the local history table names it.
func eventTypeName(_ type: Temporal_Api_Enums_V1_EventType) -> String {
    EventType(rawValue: UInt8(clamping: type.rawValue))?.description ?? "\(type)"
}

enum RemoteRendering {
    /// `spool workflow list`'s table, from a server's answer.
    static func runRows(_ runs: [ProtoExecutionInfo]) -> [RunRow] {
        runs.map { info in
            RunRow(workflowID: info.execution.workflowID, runID: info.execution.runID, type: info.type.name,
                   status: statusName(info.status), startTime: info.startTime.spool,
                   closeTime: info.hasCloseTime ? info.closeTime.spool : nil, historyLength: info.historyLength)
        }
    }

    /// `spool workflow describe`'s lines, from a server's answer.
    static func describeLines(_ response: Temporal_Api_Workflowservice_V1_DescribeWorkflowExecutionResponse) -> [String] {
        let info = response.workflowExecutionInfo
        var out = [
            "workflow id    \(info.execution.workflowID)",
            "run id         \(info.execution.runID)",
            "type           \(info.type.name)",
            "task queue     \(info.taskQueue)",
            "status         \(statusName(info.status))",
            "started        \(isoTime(info.startTime.spool))",
            "closed         \(info.hasCloseTime ? isoTime(info.closeTime.spool) : "-")",
            "history        \(info.historyLength) events",
        ]
        if info.hasParentExecution {
            out.append("parent         \(info.parentExecution.workflowID) run \(info.parentExecution.runID)")
        }
        if response.hasPendingWorkflowTask {
            let task = response.pendingWorkflowTask
            out.append("workflow task  \(task.state == .started ? "started" : "scheduled") (attempt \(task.attempt), "
                       + "scheduled \(isoTime(task.scheduledTime.spool)))")
        } else {
            out.append("workflow task  none")
        }
        if response.pendingActivities.isEmpty {
            out.append("activities     none pending")
        } else {
            out.append("activities     \(response.pendingActivities.count) pending:")
            for activity in response.pendingActivities {
                var line = "  \(activity.activityType.name) id=\(activity.activityID) \(pendingActivityStateName(activity.state)) attempt=\(activity.attempt)"
                if activity.hasLastFailure { line += " lastFailure='\(activity.lastFailure.message)'" }
                out.append(line)
            }
        }
        if !response.pendingChildren.isEmpty {
            out.append("children       \(response.pendingChildren.count) pending:")
            for child in response.pendingChildren {
                out.append("  \(child.workflowTypeName) id=\(child.workflowID) run=\(child.runID) initiated=\(child.initiatedID)")
            }
        }
        return out
    }

    /// `spool workflow show`'s table, from a server's history: the attributes as Temporal's JSON.
    static func historyTable(_ events: [Temporal_Api_History_V1_HistoryEvent]) -> [String] {
        HistoryRendering.table(events.map { event in
            HistoryRendering.Row(eventID: event.eventID, time: event.eventTime.spool, type: eventTypeName(event.eventType),
                                 details: attributesJSON(event))
        })
    }

    /// The event's attributes message as Temporal's JSON.
    static func attributesJSON(_ event: Temporal_Api_History_V1_HistoryEvent) -> String {
        // The attributes are the one field of the event's oneof: encode the event without its
        // common fields and take the single attributes member.
        var attributes = event
        attributes.eventID = 0
        attributes.clearEventTime()
        attributes.eventType = .unspecified
        attributes.taskID = 0
        attributes.version = 0
        let json = protoJSON(attributes)
        // {"somethingEventAttributes":{...}} → {...}
        guard let colon = json.firstIndex(of: ":"), json.hasSuffix("}") else { return json }
        return String(json[json.index(after: colon)..<json.index(before: json.endIndex)])
    }

    /// `spool task-queue describe`'s lines, from a server's DescribeTaskQueue.
    static func taskQueueLines(_ response: Temporal_Api_Workflowservice_V1_DescribeTaskQueueResponse,
                               target: TaskQueueTarget) -> [String] {
        let stats = response.stats
        var lines = [
            "task queue     \(target.taskQueue) (\(target.kind.rawValue), namespace \(target.namespace))",
            "backlog        \(stats.approximateBacklogCount) tasks" + (stats.approximateBacklogCount > 0
                ? ", oldest \(Double(stats.approximateBacklogAge.seconds) + Double(stats.approximateBacklogAge.nanos) / 1e9) s" : ""),
            "rates          \(stats.tasksAddRate)/s added, \(stats.tasksDispatchRate)/s dispatched"
                + (stats.rateLimitingActive ? " (rate limited)" : ""),
        ]
        lines += configLines(response.config)
        if response.hasEffectiveRateLimit {
            lines.append("effective rate \(response.effectiveRateLimit.requestsPerSecond)/s")
        }
        lines.append("pollers        \(response.pollers.count)" + (response.pollers.isEmpty ? "" : ":"))
        for poller in response.pollers {
            lines.append("  \(poller.identity) last poll \(isoTime(poller.lastAccessTime.spool)) rate \(poller.ratePerSecond)/s")
        }
        return lines
    }

    /// A queue's configured rate limit, from a server.
    static func configLines(_ config: Temporal_Api_Taskqueue_V1_TaskQueueConfig) -> [String] {
        func line(_ label: String, _ isSet: Bool, _ limit: Temporal_Api_Taskqueue_V1_RateLimitConfig, per: String = "") -> String {
            guard isSet, limit.hasRateLimit else { return label + "none configured" }
            let reason = limit.metadata.reason.isEmpty ? "no reason given" : limit.metadata.reason
            return label + "\(limit.rateLimit.requestsPerSecond)/s\(per) (\(reason); set by "
                + "\(limit.metadata.updateIdentity.isEmpty ? "?" : limit.metadata.updateIdentity) at \(isoTime(limit.metadata.updateTime.spool)))"
        }
        return [line("rate limit     ", config.hasQueueRateLimit, config.queueRateLimit),
                line("key rate limit ", config.hasFairnessKeysRateLimitDefault, config.fairnessKeysRateLimitDefault,
                     per: " per fairness key × its weight")]
    }

    static func pendingActivityStateName(_ state: Temporal_Api_Enums_V1_PendingActivityState) -> String {
        switch state {
        case .scheduled: "scheduled"
        case .started: "started"
        case .cancelRequested: "cancel-requested"
        default: "\(state)"
        }
    }
}

/// One row of `spool workflow list`'s table, local or remote.
struct RunRow {
    var workflowID: String
    var runID: String
    var type: String
    var status: String
    var startTime: Timestamp
    var closeTime: Timestamp?
    var historyLength: Int64

    /// The table's lines, header first.
    static func table(_ rows: [RunRow]) -> [String] {
        let widths = (id: max(11, rows.map(\.workflowID.count).max() ?? 0), type: max(4, rows.map(\.type.count).max() ?? 0))
        var lines = [pad("WORKFLOW ID", widths.id, right: false) + "  " + pad("RUN ID", 36, right: false) + "  "
                     + pad("TYPE", widths.type, right: false) + "  " + pad("STATUS", 14, right: false) + "  "
                     + pad("STARTED (UTC)", 24, right: false) + "  " + pad("CLOSED (UTC)", 24, right: false) + "  EVENTS"]
        for row in rows {
            lines.append(pad(row.workflowID, widths.id, right: false) + "  " + pad(row.runID, 36, right: false) + "  "
                         + pad(row.type, widths.type, right: false) + "  " + pad(row.status, 14, right: false) + "  "
                         + pad(isoTime(row.startTime), 24, right: false) + "  " + pad(row.closeTime.map(isoTime) ?? "-", 24, right: false)
                         + "  " + String(row.historyLength))
        }
        return lines
    }
}
