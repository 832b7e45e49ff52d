/// The queries Temporal's SDKs answer themselves, without a handler of the workflow's:
/// `__stack_trace` and `__temporal_workflow_metadata`. A handler registered under one of these
/// names replaces the built-in answer.
extension SpoolWorker {
    /// Temporal's built-in query for a workflow's stack trace.
    public static let stackTraceQueryType = "__stack_trace"
    /// Temporal's built-in query for a workflow's definition (its query, signal and update names).
    public static let workflowMetadataQueryType = "__temporal_workflow_metadata"

    static let builtInQueryTypes = [stackTraceQueryType, workflowMetadataQueryType]

    /// The built-in answer to `query`, or nil when `queryType` is not a built-in one.
    ///
    /// - `__stack_trace`: a ``WorkflowDefinition`` is a function of the history, not a suspended
    ///   coroutine, so there are no frames to show. What the worker reports instead is what the
    ///   run waits on, read from the history the query came with: the activities scheduled and
    ///   not closed, the timers started and neither fired nor canceled, a cancel request, or the
    ///   event that closed the run. One JSON string (`json/plain`), as the SDKs answer.
    /// - `__temporal_workflow_metadata`: Temporal's `temporal.api.sdk.v1.WorkflowMetadata` as
    ///   proto JSON (`json/protobuf`): the workflow type and its query names (the registered ones
    ///   and these two). SpoolWorker has no signal or update handlers: definitions read signals
    ///   from the history, so none are listed.
    func builtInAnswer(_ queryType: String, workflowType: String, history: [HistoryEvent],
                       registeredQueries: [String]) -> Payloads? {
        switch queryType {
        case Self.stackTraceQueryType:
            return [Payload.jsonString(Self.pendingWork(workflowType: workflowType, history: history))]
        case Self.workflowMetadataQueryType:
            let names = (Self.builtInQueryTypes + registeredQueries.filter { !Self.builtInQueryTypes.contains($0) }).sorted()
            let queries = names.map { "{\"name\":\(Self.jsonString($0))}" }.joined(separator: ",")
            let json = "{\"definition\":{\"type\":\(Self.jsonString(workflowType)),\"queryDefinitions\":[\(queries)]}}"
            var payload = Payload.json(json)
            payload.metadata[Payload.encodingKey] = Array("json/protobuf".utf8)
            payload.metadata["messageType"] = Array("temporal.api.sdk.v1.WorkflowMetadata".utf8)
            return [payload]
        default:
            return nil
        }
    }

    /// `string` as a quoted, escaped JSON string.
    private static func jsonString(_ string: String) -> String {
        String(decoding: Payload.jsonString(string).data, as: UTF8.self)
    }

    /// What the run waits on after `history`, one line each.
    static func pendingWork(workflowType: String, history: [HistoryEvent]) -> String {
        var activities: [Int64: (id: String, type: String)] = [:]
        var timers: [String: (startedEventID: Int64, timeout: Duration)] = [:]
        var cancelRequested = false
        var closedBy: EventType?
        for event in history {
            switch event.attributes {
            case .activityTaskScheduled(let a): activities[event.eventID] = (a.activityID, a.activityType)
            case .activityTaskCompleted(let a): activities[a.scheduledEventID] = nil
            case .activityTaskFailed(let a): activities[a.scheduledEventID] = nil
            case .activityTaskTimedOut(let a): activities[a.scheduledEventID] = nil
            case .activityTaskCanceled(let a): activities[a.scheduledEventID] = nil
            case .timerStarted(let a): timers[a.timerID] = (event.eventID, a.startToFireTimeout)
            case .timerFired(let a): timers[a.timerID] = nil
            case .timerCanceled(let a): timers[a.timerID] = nil
            case .workflowExecutionCancelRequested: cancelRequested = true
            default: if event.eventType.isClosing { closedBy = event.eventType }
            }
        }
        var lines = ["workflow \(workflowType) after event \(history.last?.eventID ?? 0)"]
        if let closedBy {
            lines.append("closed by \(closedBy)")
            return lines.joined(separator: "\n")
        }
        for (scheduledEventID, activity) in activities.sorted(by: { $0.key < $1.key }) {
            lines.append("waiting on activity \(activity.id) (\(activity.type)), scheduled by event \(scheduledEventID)")
        }
        for (timerID, timer) in timers.sorted(by: { $0.value.startedEventID < $1.value.startedEventID }) {
            lines.append("waiting on timer \(timerID) (\(timer.timeout)), started by event \(timer.startedEventID)")
        }
        if cancelRequested { lines.append("cancellation requested") }
        if lines.count == 1 { lines.append("waiting on nothing: the next signal or the workflow's own decision") }
        return lines.joined(separator: "\n")
    }
}
