// History events of child workflows and of signals and cancels to other workflows, engine to
// Temporal (see HistoryTranslator.swift).

import Spool
import SpoolServerProtos

extension HistoryTranslator {
    /// Sets the attributes of a child workflow's or an external request's event.
    func relatedRunAttributes(_ attributes: HistoryEvent.Attributes, into proto: inout ProtoHistoryEvent) {
        switch attributes {
        case .startChildWorkflowExecutionInitiated(let a):
            var p = Temporal_Api_History_V1_StartChildWorkflowExecutionInitiatedEventAttributes()
            p.namespace = a.namespace
            p.workflowID = a.workflowID
            p.workflowType = protoWorkflowType(a.workflowType)
            p.taskQueue = taskQueue(a.taskQueue)
            if let input = a.input { p.input = protoPayloads(input) }
            // Temporal writes unset timeouts as zero durations, as on WorkflowExecutionStarted.
            p.workflowExecutionTimeout = (a.workflowExecutionTimeout ?? .zero).proto
            p.workflowRunTimeout = (a.workflowRunTimeout ?? .zero).proto
            p.workflowTaskTimeout = (a.workflowTaskTimeout ?? .zero).proto
            p.parentClosePolicy = a.parentClosePolicy.proto
            p.control = a.control
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.workflowIDReusePolicy = a.workflowIDReusePolicy.proto
            if let policy = a.retryPolicy { p.retryPolicy = policy.proto }
            p.cronSchedule = a.cronSchedule
            p.header = a.header.proto
            if !a.memo.isEmpty { p.memo = protoMemo(a.memo) }
            if !a.searchAttributes.isEmpty { p.searchAttributes = protoSearchAttributes(a.searchAttributes) }
            if !a.priority.isUnset { p.priority = a.priority.proto }
            proto.startChildWorkflowExecutionInitiatedEventAttributes = p
        case .startChildWorkflowExecutionFailed(let a):
            var p = Temporal_Api_History_V1_StartChildWorkflowExecutionFailedEventAttributes()
            p.namespace = a.namespace
            p.workflowID = a.workflowID
            p.workflowType = protoWorkflowType(a.workflowType)
            p.cause = Temporal_Api_Enums_V1_StartChildWorkflowExecutionFailedCause(rawValue: Int(a.cause.rawValue)) ?? .unspecified
            p.control = a.control
            p.initiatedEventID = a.initiatedEventID
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            proto.startChildWorkflowExecutionFailedEventAttributes = p
        case .childWorkflowExecutionStarted(let a):
            var p = Temporal_Api_History_V1_ChildWorkflowExecutionStartedEventAttributes()
            p.namespace = a.namespace
            p.initiatedEventID = a.initiatedEventID
            p.workflowExecution = a.workflowExecution.proto
            p.workflowType = protoWorkflowType(a.workflowType)
            p.header = a.header.proto
            proto.childWorkflowExecutionStartedEventAttributes = p
        case .childWorkflowExecutionClosed(let a):
            let execution = a.workflowExecution.proto, type = protoWorkflowType(a.workflowType)
            switch a.outcome {
            case .completed(let result):
                var p = Temporal_Api_History_V1_ChildWorkflowExecutionCompletedEventAttributes()
                if let result { p.result = protoPayloads(result) }
                p.namespace = a.namespace; p.workflowExecution = execution; p.workflowType = type
                p.initiatedEventID = a.initiatedEventID; p.startedEventID = a.startedEventID
                proto.childWorkflowExecutionCompletedEventAttributes = p
            case .failed(let failure, let retryState):
                var p = Temporal_Api_History_V1_ChildWorkflowExecutionFailedEventAttributes()
                p.failure = failure.proto
                p.namespace = a.namespace; p.workflowExecution = execution; p.workflowType = type
                p.initiatedEventID = a.initiatedEventID; p.startedEventID = a.startedEventID
                p.retryState = retryState.proto
                proto.childWorkflowExecutionFailedEventAttributes = p
            case .canceled(let details):
                var p = Temporal_Api_History_V1_ChildWorkflowExecutionCanceledEventAttributes()
                if let details { p.details = protoPayloads(details) }
                p.namespace = a.namespace; p.workflowExecution = execution; p.workflowType = type
                p.initiatedEventID = a.initiatedEventID; p.startedEventID = a.startedEventID
                proto.childWorkflowExecutionCanceledEventAttributes = p
            case .timedOut(let retryState):
                var p = Temporal_Api_History_V1_ChildWorkflowExecutionTimedOutEventAttributes()
                p.namespace = a.namespace; p.workflowExecution = execution; p.workflowType = type
                p.initiatedEventID = a.initiatedEventID; p.startedEventID = a.startedEventID
                p.retryState = retryState.proto
                proto.childWorkflowExecutionTimedOutEventAttributes = p
            case .terminated:
                var p = Temporal_Api_History_V1_ChildWorkflowExecutionTerminatedEventAttributes()
                p.namespace = a.namespace; p.workflowExecution = execution; p.workflowType = type
                p.initiatedEventID = a.initiatedEventID; p.startedEventID = a.startedEventID
                proto.childWorkflowExecutionTerminatedEventAttributes = p
            }
        case .signalExternalWorkflowExecutionInitiated(let a):
            var p = Temporal_Api_History_V1_SignalExternalWorkflowExecutionInitiatedEventAttributes()
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.namespace = a.namespace
            p.workflowExecution = a.workflowExecution.proto
            p.signalName = a.signalName
            if let input = a.input { p.input = protoPayloads(input) }
            p.control = a.control
            p.childWorkflowOnly = a.childWorkflowOnly
            p.header = a.header.proto
            proto.signalExternalWorkflowExecutionInitiatedEventAttributes = p
        case .signalExternalWorkflowExecutionFailed(let a):
            var p = Temporal_Api_History_V1_SignalExternalWorkflowExecutionFailedEventAttributes()
            p.cause = Temporal_Api_Enums_V1_SignalExternalWorkflowExecutionFailedCause(rawValue: Int(a.cause.rawValue)) ?? .unspecified
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.namespace = a.namespace
            p.workflowExecution = a.workflowExecution.proto
            p.initiatedEventID = a.initiatedEventID
            p.control = a.control
            proto.signalExternalWorkflowExecutionFailedEventAttributes = p
        case .externalWorkflowExecutionSignaled(let a):
            var p = Temporal_Api_History_V1_ExternalWorkflowExecutionSignaledEventAttributes()
            p.initiatedEventID = a.initiatedEventID
            p.namespace = a.namespace
            p.workflowExecution = a.workflowExecution.proto
            p.control = a.control
            proto.externalWorkflowExecutionSignaledEventAttributes = p
        case .requestCancelExternalWorkflowExecutionInitiated(let a):
            var p = Temporal_Api_History_V1_RequestCancelExternalWorkflowExecutionInitiatedEventAttributes()
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.namespace = a.namespace
            p.workflowExecution = a.workflowExecution.proto
            p.control = a.control
            p.childWorkflowOnly = a.childWorkflowOnly
            p.reason = a.reason
            proto.requestCancelExternalWorkflowExecutionInitiatedEventAttributes = p
        case .requestCancelExternalWorkflowExecutionFailed(let a):
            var p = Temporal_Api_History_V1_RequestCancelExternalWorkflowExecutionFailedEventAttributes()
            p.cause = Temporal_Api_Enums_V1_CancelExternalWorkflowExecutionFailedCause(rawValue: Int(a.cause.rawValue)) ?? .unspecified
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.namespace = a.namespace
            p.workflowExecution = a.workflowExecution.proto
            p.initiatedEventID = a.initiatedEventID
            p.control = a.control
            proto.requestCancelExternalWorkflowExecutionFailedEventAttributes = p
        case .externalWorkflowExecutionCancelRequested(let a):
            var p = Temporal_Api_History_V1_ExternalWorkflowExecutionCancelRequestedEventAttributes()
            p.initiatedEventID = a.initiatedEventID
            p.namespace = a.namespace
            p.workflowExecution = a.workflowExecution.proto
            proto.externalWorkflowExecutionCancelRequestedEventAttributes = p
        default:
            break
        }
    }
}

extension ParentClosePolicy {
    init(_ proto: Temporal_Api_Enums_V1_ParentClosePolicy) {
        self = ParentClosePolicy(rawValue: UInt8(clamping: proto.rawValue)) ?? .unspecified
    }

    var proto: Temporal_Api_Enums_V1_ParentClosePolicy {
        Temporal_Api_Enums_V1_ParentClosePolicy(rawValue: Int(rawValue)) ?? .unspecified
    }
}

/// The engine's commands for child workflows and external requests.
func relatedRunCommand(_ proto: ProtoCommand, userMetadata: UserMetadata?) -> Command? {
    switch proto.attributes {
    case .startChildWorkflowExecutionCommandAttributes(let a):
        return .startChildWorkflowExecution(StartChildWorkflowExecutionCommandAttributes(
            namespace: a.namespace, workflowID: a.workflowID, workflowType: a.workflowType.name, taskQueue: a.taskQueue.name,
            input: payloads(a.input, isSet: a.hasInput),
            workflowExecutionTimeout: duration(a.workflowExecutionTimeout, isSet: a.hasWorkflowExecutionTimeout),
            workflowRunTimeout: duration(a.workflowRunTimeout, isSet: a.hasWorkflowRunTimeout),
            workflowTaskTimeout: duration(a.workflowTaskTimeout, isSet: a.hasWorkflowTaskTimeout),
            parentClosePolicy: ParentClosePolicy(a.parentClosePolicy), control: a.control,
            workflowIDReusePolicy: WorkflowIDReusePolicy(a.workflowIDReusePolicy),
            retryPolicy: a.hasRetryPolicy ? RetryPolicy(a.retryPolicy) : nil, cronSchedule: a.cronSchedule,
            header: Header(a.header), memo: a.hasMemo ? payloadFields(a.memo.fields) : [:],
            searchAttributes: a.hasSearchAttributes ? payloadFields(a.searchAttributes.indexedFields) : [:],
            priority: Priority(a.priority), userMetadata: userMetadata))
    case .signalExternalWorkflowExecutionCommandAttributes(let a):
        return .signalExternalWorkflowExecution(SignalExternalWorkflowExecutionCommandAttributes(
            namespace: a.namespace, execution: WorkflowExecution(a.execution), signalName: a.signalName,
            input: payloads(a.input, isSet: a.hasInput), control: a.control, childWorkflowOnly: a.childWorkflowOnly,
            header: Header(a.header)))
    case .requestCancelExternalWorkflowExecutionCommandAttributes(let a):
        return .requestCancelExternalWorkflowExecution(RequestCancelExternalWorkflowExecutionCommandAttributes(
            namespace: a.namespace, execution: WorkflowExecution(workflowID: a.workflowID, runID: a.runID), control: a.control,
            childWorkflowOnly: a.childWorkflowOnly, reason: a.reason))
    default:
        return nil
    }
}

extension WorkflowIDReusePolicy {
    /// UNSPECIFIED is ALLOW_DUPLICATE, Temporal's default.
    init(_ proto: Temporal_Api_Enums_V1_WorkflowIdReusePolicy) {
        self = WorkflowIDReusePolicy(rawValue: UInt8(clamping: proto.rawValue)) ?? .allowDuplicate
    }

    var proto: Temporal_Api_Enums_V1_WorkflowIdReusePolicy {
        Temporal_Api_Enums_V1_WorkflowIdReusePolicy(rawValue: Int(rawValue)) ?? .unspecified
    }
}
