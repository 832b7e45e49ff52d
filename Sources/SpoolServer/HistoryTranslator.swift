// History events, engine to Temporal (see Translation.swift).

import FoundationEssentials
import Spool
import SpoolServerProtos
import SwiftProtobuf

/// Converts a run's events, knowing its own task queue (a workflow task scheduled on any other
/// queue was scheduled on a sticky queue).
struct HistoryTranslator {
    var runTaskQueue: String
    /// The run the events belong to, for the fields of its started event that Temporal fills
    /// from the run (`workflow_id`, `original_execution_run_id`); nil when unknown.
    var execution: WorkflowExecution?

    init(runTaskQueue: String, execution: WorkflowExecution? = nil) {
        self.runTaskQueue = runTaskQueue
        self.execution = execution
    }

    /// The run's task queue read from its first event, when `events` starts there.
    init(events: [HistoryEvent], execution: WorkflowExecution? = nil, fallback: String = "") {
        if case .workflowExecutionStarted(let started)? = events.first?.attributes {
            runTaskQueue = started.taskQueue
        } else {
            runTaskQueue = fallback
        }
        self.execution = execution
    }

    func history(_ events: [HistoryEvent]) -> Temporal_Api_History_V1_History {
        var history = Temporal_Api_History_V1_History()
        history.events = events.map(event)
        return history
    }

    func queue(_ name: String) -> ProtoTaskQueue {
        name == runTaskQueue || runTaskQueue.isEmpty
            ? taskQueue(name) : { var q = taskQueue(name, kind: .sticky); q.normalName = runTaskQueue; return q }()
    }

    func event(_ event: HistoryEvent) -> ProtoHistoryEvent {
        var proto = ProtoHistoryEvent()
        if let metadata = event.userMetadata { proto.userMetadata = metadata.proto }
        proto.eventID = event.eventID
        proto.eventTime = event.eventTime.proto
        proto.eventType = Temporal_Api_Enums_V1_EventType(rawValue: Int(event.eventType.rawValue)) ?? .unspecified
        switch event.attributes {
        case .workflowExecutionStarted(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionStartedEventAttributes()
            p.workflowType = protoWorkflowType(a.workflowType)
            p.taskQueue = taskQueue(a.taskQueue)
            if let input = a.input { p.input = protoPayloads(input) }
            // Temporal writes the unset timeouts and the backoff as zero durations, not absent.
            p.workflowExecutionTimeout = (a.workflowExecutionTimeout ?? .zero).proto
            p.workflowRunTimeout = (a.workflowRunTimeout ?? .zero).proto
            p.firstWorkflowTaskBackoff = (a.firstWorkflowTaskBackoff ?? .zero).proto
            p.workflowTaskTimeout = a.workflowTaskTimeout.proto
            p.continuedExecutionRunID = a.continuedExecutionRunID
            p.initiator = a.initiator.proto
            if let failure = a.continuedFailure { p.continuedFailure = failure.proto }
            if let result = a.lastCompletionResult { p.lastCompletionResult = protoPayloads(result) }
            // The run's own id (recorded by the engine; older records have none: the run read).
            p.originalExecutionRunID = !a.originalExecutionRunID.isEmpty ? a.originalExecutionRunID
                : execution?.runID ?? (a.continuedExecutionRunID.isEmpty ? a.firstExecutionRunID : "")
            p.firstExecutionRunID = a.firstExecutionRunID
            if let execution { p.workflowID = execution.workflowID }
            p.identity = a.identity
            if let policy = a.retryPolicy { p.retryPolicy = policy.proto }
            p.attempt = max(1, a.attempt)
            if let expiration = a.workflowExecutionExpirationTime { p.workflowExecutionExpirationTime = expiration.proto }
            p.cronSchedule = a.cronSchedule
            // Temporal leaves memo and search attributes out when the run has none.
            if !a.memo.isEmpty { p.memo = protoMemo(a.memo) }
            if !a.searchAttributes.isEmpty { p.searchAttributes = protoSearchAttributes(a.searchAttributes) }
            p.header = a.header.proto
            // Temporal leaves the priority out when the request had none.
            if !a.priority.isUnset { p.priority = a.priority.proto }
            if let parent = a.parent {
                p.parentWorkflowNamespace = parent.namespace
                p.parentWorkflowExecution = parent.execution.proto
                p.parentInitiatedEventID = parent.initiatedEventID
                p.rootWorkflowExecution = parent.rootExecution.proto
            }
            proto.workflowExecutionStartedEventAttributes = p
        case .workflowExecutionCompleted(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionCompletedEventAttributes()
            if let result = a.result { p.result = protoPayloads(result) }
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.newExecutionRunID = a.newExecutionRunID
            proto.workflowExecutionCompletedEventAttributes = p
        case .workflowExecutionFailed(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionFailedEventAttributes()
            p.failure = a.failure.proto
            p.retryState = a.retryState.proto
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.newExecutionRunID = a.newExecutionRunID
            proto.workflowExecutionFailedEventAttributes = p
        case .workflowExecutionTimedOut(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionTimedOutEventAttributes()
            p.retryState = a.retryState.proto
            p.newExecutionRunID = a.newExecutionRunID
            proto.workflowExecutionTimedOutEventAttributes = p
        case .workflowTaskScheduled(let a):
            var p = Temporal_Api_History_V1_WorkflowTaskScheduledEventAttributes()
            p.taskQueue = queue(a.taskQueue)
            p.startToCloseTimeout = a.startToCloseTimeout.proto
            p.attempt = a.attempt
            proto.workflowTaskScheduledEventAttributes = p
        case .workflowTaskStarted(let a):
            var p = Temporal_Api_History_V1_WorkflowTaskStartedEventAttributes()
            p.scheduledEventID = a.scheduledEventID
            p.identity = a.identity
            p.requestID = a.requestID
            proto.workflowTaskStartedEventAttributes = p
        case .workflowTaskCompleted(let a):
            var p = Temporal_Api_History_V1_WorkflowTaskCompletedEventAttributes()
            p.scheduledEventID = a.scheduledEventID
            p.startedEventID = a.startedEventID
            p.identity = a.identity
            p.binaryChecksum = a.binaryChecksum
            if let stamp = a.workerVersion { p.workerVersion = stamp.proto }
            if let metadata = a.sdkMetadata { p.sdkMetadata = metadata.proto }
            if let metering = a.meteringMetadata {
                var m = Temporal_Api_Common_V1_MeteringMetadata()
                m.nonfirstLocalActivityExecutionAttempts = metering.nonfirstLocalActivityExecutionAttempts
                p.meteringMetadata = m
            }
            p.versioningBehavior = Temporal_Api_Enums_V1_VersioningBehavior(rawValue: Int(a.versioningBehavior.rawValue)) ?? .unspecified
            p.workerDeploymentName = a.workerDeploymentName
            p.workerDeploymentVersion = a.workerDeploymentVersion
            proto.workflowTaskCompletedEventAttributes = p
        case .workflowTaskTimedOut(let a):
            var p = Temporal_Api_History_V1_WorkflowTaskTimedOutEventAttributes()
            p.scheduledEventID = a.scheduledEventID
            p.startedEventID = a.startedEventID
            p.timeoutType = a.timeoutType.proto
            proto.workflowTaskTimedOutEventAttributes = p
        case .workflowTaskFailed(let a):
            var p = Temporal_Api_History_V1_WorkflowTaskFailedEventAttributes()
            p.scheduledEventID = a.scheduledEventID
            p.startedEventID = a.startedEventID
            p.cause = a.cause.proto
            if let failure = a.failure { p.failure = failure.proto }
            p.identity = a.identity
            p.binaryChecksum = a.binaryChecksum
            if let stamp = a.workerVersion { p.workerVersion = stamp.proto }
            proto.workflowTaskFailedEventAttributes = p
        case .activityTaskScheduled(let a):
            var p = Temporal_Api_History_V1_ActivityTaskScheduledEventAttributes()
            p.activityID = a.activityID
            p.activityType = protoActivityType(a.activityType)
            p.taskQueue = taskQueue(a.taskQueue)
            p.header = a.header.proto
            if let input = a.input { p.input = protoPayloads(input) }
            if let timeout = a.scheduleToCloseTimeout { p.scheduleToCloseTimeout = timeout.proto }
            if let timeout = a.scheduleToStartTimeout { p.scheduleToStartTimeout = timeout.proto }
            p.startToCloseTimeout = a.startToCloseTimeout.proto
            if let timeout = a.heartbeatTimeout { p.heartbeatTimeout = timeout.proto }
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.retryPolicy = a.retryPolicy.proto
            if !a.priority.isUnset { p.priority = a.priority.proto }
            proto.activityTaskScheduledEventAttributes = p
        case .activityTaskStarted(let a):
            var p = Temporal_Api_History_V1_ActivityTaskStartedEventAttributes()
            p.scheduledEventID = a.scheduledEventID
            p.identity = a.identity
            p.requestID = a.requestID
            p.attempt = a.attempt
            if let failure = a.lastFailure { p.lastFailure = failure.proto }
            proto.activityTaskStartedEventAttributes = p
        case .activityTaskCompleted(let a):
            var p = Temporal_Api_History_V1_ActivityTaskCompletedEventAttributes()
            if let result = a.result { p.result = protoPayloads(result) }
            p.scheduledEventID = a.scheduledEventID
            p.startedEventID = a.startedEventID
            p.identity = a.identity
            if let stamp = a.workerVersion { p.workerVersion = stamp.proto }
            proto.activityTaskCompletedEventAttributes = p
        case .activityTaskFailed(let a):
            var p = Temporal_Api_History_V1_ActivityTaskFailedEventAttributes()
            p.failure = a.failure.proto
            p.scheduledEventID = a.scheduledEventID
            p.startedEventID = a.startedEventID
            p.identity = a.identity
            p.retryState = a.retryState.proto
            if let stamp = a.workerVersion { p.workerVersion = stamp.proto }
            proto.activityTaskFailedEventAttributes = p
        case .activityTaskTimedOut(let a):
            var p = Temporal_Api_History_V1_ActivityTaskTimedOutEventAttributes()
            p.failure = a.failure.proto
            p.scheduledEventID = a.scheduledEventID
            p.startedEventID = a.startedEventID
            p.retryState = a.retryState.proto
            proto.activityTaskTimedOutEventAttributes = p
        case .activityTaskCancelRequested(let a):
            var p = Temporal_Api_History_V1_ActivityTaskCancelRequestedEventAttributes()
            p.scheduledEventID = a.scheduledEventID
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            proto.activityTaskCancelRequestedEventAttributes = p
        case .activityTaskCanceled(let a):
            var p = Temporal_Api_History_V1_ActivityTaskCanceledEventAttributes()
            if let details = a.details { p.details = protoPayloads(details) }
            p.latestCancelRequestedEventID = a.latestCancelRequestedEventID
            p.scheduledEventID = a.scheduledEventID
            p.startedEventID = a.startedEventID
            p.identity = a.identity
            if let stamp = a.workerVersion { p.workerVersion = stamp.proto }
            proto.activityTaskCanceledEventAttributes = p
        case .timerStarted(let a):
            var p = Temporal_Api_History_V1_TimerStartedEventAttributes()
            p.timerID = a.timerID
            p.startToFireTimeout = a.startToFireTimeout.proto
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            proto.timerStartedEventAttributes = p
        case .timerFired(let a):
            var p = Temporal_Api_History_V1_TimerFiredEventAttributes()
            p.timerID = a.timerID
            p.startedEventID = a.startedEventID
            proto.timerFiredEventAttributes = p
        case .timerCanceled(let a):
            var p = Temporal_Api_History_V1_TimerCanceledEventAttributes()
            p.timerID = a.timerID
            p.startedEventID = a.startedEventID
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.identity = a.identity
            proto.timerCanceledEventAttributes = p
        case .workflowExecutionCancelRequested(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionCancelRequestedEventAttributes()
            p.cause = a.cause
            p.identity = a.identity
            p.externalInitiatedEventID = a.externalInitiatedEventID
            if let sender = a.externalWorkflowExecution { p.externalWorkflowExecution = sender.proto }
            proto.workflowExecutionCancelRequestedEventAttributes = p
        case .workflowExecutionCanceled(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionCanceledEventAttributes()
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            if let details = a.details { p.details = protoPayloads(details) }
            proto.workflowExecutionCanceledEventAttributes = p
        case .markerRecorded(let a):
            var p = Temporal_Api_History_V1_MarkerRecordedEventAttributes()
            p.markerName = a.markerName
            p.details = a.details.mapValues(protoPayloads)
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            if let failure = a.failure { p.failure = failure.proto }
            p.header = a.header.proto
            proto.markerRecordedEventAttributes = p
        case .workflowExecutionSignaled(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionSignaledEventAttributes()
            p.signalName = a.signalName
            if let input = a.input { p.input = protoPayloads(input) }
            p.identity = a.identity
            p.header = a.header.proto
            p.requestID = a.requestID
            if let sender = a.externalWorkflowExecution { p.externalWorkflowExecution = sender.proto }
            proto.workflowExecutionSignaledEventAttributes = p
        case .workflowExecutionTerminated(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionTerminatedEventAttributes()
            p.reason = a.reason
            if let details = a.details { p.details = protoPayloads(details) }
            p.identity = a.identity
            proto.workflowExecutionTerminatedEventAttributes = p
        case .workflowExecutionContinuedAsNew(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionContinuedAsNewEventAttributes()
            p.newExecutionRunID = a.newExecutionRunID
            p.workflowType = protoWorkflowType(a.workflowType)
            p.taskQueue = taskQueue(a.taskQueue)
            if let input = a.input { p.input = protoPayloads(input) }
            if let timeout = a.workflowRunTimeout { p.workflowRunTimeout = timeout.proto }
            p.workflowTaskTimeout = a.workflowTaskTimeout.proto
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            if let backoff = a.backoffStartInterval { p.backoffStartInterval = backoff.proto }
            p.initiator = a.initiator.proto
            if let failure = a.failure { p.failure = failure.proto }
            if let result = a.lastCompletionResult { p.lastCompletionResult = protoPayloads(result) }
            p.header = a.header.proto
            if !a.memo.isEmpty { p.memo = protoMemo(a.memo) }
            if !a.searchAttributes.isEmpty { p.searchAttributes = protoSearchAttributes(a.searchAttributes) }
            proto.workflowExecutionContinuedAsNewEventAttributes = p
        case .upsertWorkflowSearchAttributes(let a):
            var p = Temporal_Api_History_V1_UpsertWorkflowSearchAttributesEventAttributes()
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.searchAttributes = protoSearchAttributes(a.searchAttributes)
            proto.upsertWorkflowSearchAttributesEventAttributes = p
        case .workflowPropertiesModified(let a):
            var p = Temporal_Api_History_V1_WorkflowPropertiesModifiedEventAttributes()
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            p.upsertedMemo = protoMemo(a.upsertedMemo)
            proto.workflowPropertiesModifiedEventAttributes = p
        case .workflowExecutionUpdateAccepted(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionUpdateAcceptedEventAttributes()
            p.protocolInstanceID = a.protocolInstanceID
            p.acceptedRequestMessageID = a.acceptedRequestMessageID
            p.acceptedRequestSequencingEventID = a.acceptedRequestSequencingEventID
            p.acceptedRequest = a.acceptedRequest.proto
            proto.workflowExecutionUpdateAcceptedEventAttributes = p
        case .workflowExecutionUpdateCompleted(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionUpdateCompletedEventAttributes()
            p.meta.updateID = a.meta.updateID
            p.meta.identity = a.meta.identity
            p.acceptedEventID = a.acceptedEventID
            p.outcome = a.outcome.proto
            proto.workflowExecutionUpdateCompletedEventAttributes = p
        case .startChildWorkflowExecutionInitiated, .startChildWorkflowExecutionFailed, .childWorkflowExecutionStarted,
             .childWorkflowExecutionClosed, .signalExternalWorkflowExecutionInitiated, .signalExternalWorkflowExecutionFailed,
             .externalWorkflowExecutionSignaled, .requestCancelExternalWorkflowExecutionInitiated,
             .requestCancelExternalWorkflowExecutionFailed, .externalWorkflowExecutionCancelRequested:
            relatedRunAttributes(event.attributes, into: &proto)
        }
        return proto
    }
}
