import Spool

/// The attributes of a history event worth showing, in Temporal's field names, for the history
/// tables of `spool workflow show` (local and remote) and of the web console.
package enum HistoryAttributes {
    /// A value of an attribute: text for people, a typed JSON value for scripts.
    package enum Value {
        case text(String)
        case integer(Int64)
        case payload(Payloads)
        case duration(Duration)
        case bool(Bool)

        package var json: JSON {
            switch self {
            case .text(let text): .string(text)
            case .integer(let value): .integer(Int(value))
            // One payload (the usual case) as its data's text, several as an array of them.
            case .payload(let payloads) where payloads.count == 1: .string(String(decoding: payloads[0].data, as: UTF8.self))
            case .payload(let payloads): .array(payloads.map { .string(String(decoding: $0.data, as: UTF8.self)) })
            case .duration(let duration): .number(duration.seconds)
            case .bool(let value): .bool(value)
            }
        }
    }

    /// The attributes worth showing, in Temporal's field names; empty and default values left out.
    package static func of(_ event: HistoryEvent) -> [(String, Value)] {
        var out: [(String, Value)] = []
        func text(_ name: String, _ value: String) { if !value.isEmpty { out.append((name, .text(value))) } }
        func id(_ name: String, _ value: Int64) { if value != 0 { out.append((name, .integer(value))) } }
        func payload(_ name: String, _ value: Payloads?) { if let value { out.append((name, .payload(value))) } }
        func failure(_ name: String, _ value: Failure?) {
            guard let value else { return }
            out.append((name, .text(value.description)))
            if case .application(let info)? = value.info, info.nonRetryable { out.append((name + "NonRetryable", .bool(true))) }
        }
        func attempt(_ value: Int32) { if value > 1 { out.append(("attempt", .integer(Int64(value)))) } }
        switch event.attributes {
        case .workflowExecutionStarted(let a):
            text("workflowType", a.workflowType); text("taskQueue", a.taskQueue); payload("input", a.input)
            text("identity", a.identity); text("continuedExecutionRunId", a.continuedExecutionRunID)
            if a.initiator != .unspecified { text("initiator", "\(a.initiator)") }
            attempt(a.attempt); text("cronSchedule", a.cronSchedule)
            if let backoff = a.firstWorkflowTaskBackoff { out.append(("firstWorkflowTaskBackoff", .duration(backoff))) }
            failure("continuedFailure", a.continuedFailure); payload("lastCompletionResult", a.lastCompletionResult)
            if !a.memo.isEmpty { text("memo", a.memo.keys.sorted().joined(separator: ",")) }
            if !a.searchAttributes.isEmpty { text("searchAttributes", a.searchAttributes.keys.sorted().joined(separator: ",")) }
            if let parent = a.parent {
                text("parentWorkflowId", parent.execution.workflowID); text("parentRunId", parent.execution.runID)
                id("parentInitiatedEventId", parent.initiatedEventID)
            }
        case .workflowExecutionCompleted(let a):
            payload("result", a.result); id("workflowTaskCompletedEventId", a.workflowTaskCompletedEventID)
            text("newExecutionRunId", a.newExecutionRunID)
        case .workflowExecutionFailed(let a):
            failure("failure", a.failure); id("workflowTaskCompletedEventId", a.workflowTaskCompletedEventID)
            text("retryState", "\(a.retryState)"); text("newExecutionRunId", a.newExecutionRunID)
        case .workflowExecutionTimedOut(let a):
            text("retryState", "\(a.retryState)"); text("newExecutionRunId", a.newExecutionRunID)
        case .workflowTaskScheduled(let a):
            text("taskQueue", a.taskQueue); attempt(a.attempt)
        case .workflowTaskStarted(let a):
            id("scheduledEventId", a.scheduledEventID); text("identity", a.identity)
        case .workflowTaskCompleted(let a):
            id("scheduledEventId", a.scheduledEventID); id("startedEventId", a.startedEventID); text("identity", a.identity)
        case .workflowTaskTimedOut(let a):
            id("scheduledEventId", a.scheduledEventID); id("startedEventId", a.startedEventID); text("timeoutType", "\(a.timeoutType)")
        case .workflowTaskFailed(let a):
            id("scheduledEventId", a.scheduledEventID); id("startedEventId", a.startedEventID); text("cause", "\(a.cause)")
            failure("failure", a.failure)
        case .activityTaskScheduled(let a):
            text("activityType", a.activityType); text("activityId", a.activityID); text("taskQueue", a.taskQueue)
            payload("input", a.input)
            if a.retryPolicy.maximumAttempts > 0 { out.append(("maximumAttempts", .integer(Int64(a.retryPolicy.maximumAttempts)))) }
            out.append(("retryInitialInterval", .duration(a.retryPolicy.initialInterval)))
            if let heartbeat = a.heartbeatTimeout { out.append(("heartbeatTimeout", .duration(heartbeat))) }
        case .activityTaskStarted(let a):
            id("scheduledEventId", a.scheduledEventID); out.append(("attempt", .integer(Int64(a.attempt))))
            failure("lastFailure", a.lastFailure); text("identity", a.identity)
        case .activityTaskCompleted(let a):
            id("scheduledEventId", a.scheduledEventID); id("startedEventId", a.startedEventID); payload("result", a.result)
        case .activityTaskFailed(let a):
            id("scheduledEventId", a.scheduledEventID); id("startedEventId", a.startedEventID); failure("failure", a.failure)
            text("retryState", "\(a.retryState)")
        case .activityTaskTimedOut(let a):
            id("scheduledEventId", a.scheduledEventID); id("startedEventId", a.startedEventID); failure("failure", a.failure)
            text("retryState", "\(a.retryState)")
        case .activityTaskCancelRequested(let a):
            id("scheduledEventId", a.scheduledEventID)
        case .activityTaskCanceled(let a):
            id("scheduledEventId", a.scheduledEventID); id("startedEventId", a.startedEventID); payload("details", a.details)
        case .timerStarted(let a):
            text("timerId", a.timerID); out.append(("startToFireTimeout", .duration(a.startToFireTimeout)))
        case .timerFired(let a):
            text("timerId", a.timerID); id("startedEventId", a.startedEventID)
        case .timerCanceled(let a):
            text("timerId", a.timerID); id("startedEventId", a.startedEventID)
        case .workflowExecutionCancelRequested(let a):
            text("cause", a.cause); text("identity", a.identity)
        case .workflowExecutionCanceled(let a):
            payload("details", a.details)
        case .markerRecorded(let a):
            text("markerName", a.markerName)
        case .workflowExecutionSignaled(let a):
            text("signalName", a.signalName); payload("input", a.input); text("identity", a.identity)
        case .workflowExecutionTerminated(let a):
            text("reason", a.reason); text("identity", a.identity)
        case .workflowExecutionContinuedAsNew(let a):
            text("newExecutionRunId", a.newExecutionRunID); text("workflowType", a.workflowType)
            if a.initiator != .workflow { text("initiator", "\(a.initiator)") }
        case .upsertWorkflowSearchAttributes(let a):
            text("searchAttributes", a.searchAttributes.keys.sorted().joined(separator: ","))
            id("workflowTaskCompletedEventId", a.workflowTaskCompletedEventID)
        case .workflowPropertiesModified(let a):
            text("upsertedMemo", a.upsertedMemo.keys.sorted().joined(separator: ","))
            id("workflowTaskCompletedEventId", a.workflowTaskCompletedEventID)
        case .workflowExecutionUpdateAccepted(let a):
            text("protocolInstanceId", a.protocolInstanceID); text("name", a.acceptedRequest.input.name)
            payload("args", a.acceptedRequest.input.args)
        case .workflowExecutionUpdateCompleted(let a):
            text("updateId", a.meta.updateID); id("acceptedEventId", a.acceptedEventID)
            switch a.outcome {
            case .success(let result): payload("result", result)
            case .failure(let failure): text("failure", failure.message)
            }
        case .startChildWorkflowExecutionInitiated(let a):
            text("workflowId", a.workflowID); text("workflowType", a.workflowType); text("taskQueue", a.taskQueue)
            text("parentClosePolicy", a.parentClosePolicy.description); payload("input", a.input)
        case .startChildWorkflowExecutionFailed(let a):
            text("workflowId", a.workflowID); text("cause", "\(a.cause)"); id("initiatedEventId", a.initiatedEventID)
        case .childWorkflowExecutionStarted(let a):
            text("workflowId", a.workflowExecution.workflowID); text("runId", a.workflowExecution.runID)
            id("initiatedEventId", a.initiatedEventID)
        case .childWorkflowExecutionClosed(let a):
            text("workflowId", a.workflowExecution.workflowID); id("initiatedEventId", a.initiatedEventID)
            id("startedEventId", a.startedEventID)
            switch a.outcome {
            case .completed(let result): payload("result", result)
            case .failed(let failure, _): text("failure", failure.message)
            case .canceled(let details): payload("details", details)
            case .timedOut, .terminated: break
            }
        case .signalExternalWorkflowExecutionInitiated(let a):
            text("workflowId", a.workflowExecution.workflowID); text("signalName", a.signalName); payload("input", a.input)
        case .signalExternalWorkflowExecutionFailed(let a):
            text("workflowId", a.workflowExecution.workflowID); text("cause", "\(a.cause)"); id("initiatedEventId", a.initiatedEventID)
        case .externalWorkflowExecutionSignaled(let a):
            text("workflowId", a.workflowExecution.workflowID); id("initiatedEventId", a.initiatedEventID)
        case .requestCancelExternalWorkflowExecutionInitiated(let a):
            text("workflowId", a.workflowExecution.workflowID); text("reason", a.reason)
        case .requestCancelExternalWorkflowExecutionFailed(let a):
            text("workflowId", a.workflowExecution.workflowID); text("cause", "\(a.cause)"); id("initiatedEventId", a.initiatedEventID)
        case .externalWorkflowExecutionCancelRequested(let a):
            text("workflowId", a.workflowExecution.workflowID); id("initiatedEventId", a.initiatedEventID)
        }
        return out
    }
}
