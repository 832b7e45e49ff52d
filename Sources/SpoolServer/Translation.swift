// Translation between Temporal's protocol messages and the engine's own types. Only shapes are
// converted here: what an event, a command or a task means is decided by the engine.

import FoundationEssentials
import Spool
import SpoolServerProtos
import SwiftProtobuf

typealias ProtoPayloads = Temporal_Api_Common_V1_Payloads
typealias ProtoFailure = Temporal_Api_Failure_V1_Failure
typealias ProtoTaskQueue = Temporal_Api_Taskqueue_V1_TaskQueue
typealias ProtoExecution = Temporal_Api_Common_V1_WorkflowExecution
typealias ProtoRetryPolicy = Temporal_Api_Common_V1_RetryPolicy
typealias ProtoHistoryEvent = Temporal_Api_History_V1_HistoryEvent
typealias ProtoCommand = Temporal_Api_Command_V1_Command

/// A request field the engine cannot take, or a malformed one.
struct TranslationError: Error {
    var message: String
}

// MARK: - Scalars

extension Timestamp {
    var proto: Google_Protobuf_Timestamp {
        let (seconds, nanos) = nanosecondsSinceEpoch.quotientAndRemainder(dividingBy: 1_000_000_000)
        return nanos < 0
            ? Google_Protobuf_Timestamp(seconds: seconds - 1, nanos: Int32(nanos + 1_000_000_000))
            : Google_Protobuf_Timestamp(seconds: seconds, nanos: Int32(nanos))
    }
}

extension Duration {
    var proto: Google_Protobuf_Duration {
        let (seconds, attoseconds) = components
        return Google_Protobuf_Duration(seconds: seconds, nanos: Int32(attoseconds / 1_000_000_000))
    }
}

extension Google_Protobuf_Duration {
    var swift: Duration { .seconds(seconds) + .nanoseconds(Int64(nanos)) }
}

/// A duration field: nil when unset or zero (Temporal's "not set" for timeouts).
func duration(_ value: Google_Protobuf_Duration, isSet: Bool) -> Duration? {
    guard isSet, value.seconds != 0 || value.nanos != 0 else { return nil }
    return value.swift
}

/// An empty namespace means the default one, as in Temporal.
func namespace(_ name: String) -> String { name.isEmpty ? defaultNamespace : name }

func taskQueue(_ name: String, kind: Temporal_Api_Enums_V1_TaskQueueKind = .normal) -> ProtoTaskQueue {
    var queue = ProtoTaskQueue()
    queue.name = name
    queue.kind = kind
    return queue
}

extension WorkflowExecution {
    init(_ proto: ProtoExecution) { self.init(workflowID: proto.workflowID, runID: proto.runID) }

    var proto: ProtoExecution {
        var execution = ProtoExecution()
        execution.workflowID = workflowID
        execution.runID = runID
        return execution
    }
}

func protoWorkflowType(_ name: String) -> Temporal_Api_Common_V1_WorkflowType {
    var type = Temporal_Api_Common_V1_WorkflowType()
    type.name = name
    return type
}

func protoActivityType(_ name: String) -> Temporal_Api_Common_V1_ActivityType {
    var type = Temporal_Api_Common_V1_ActivityType()
    type.name = name
    return type
}

// MARK: - Payloads, headers, user metadata

// Field by field: the engine keeps payload metadata, so what a client sends comes back byte for
// byte, and in-process workers and remote ones see the same payloads.

extension Payload {
    init(_ proto: Temporal_Api_Common_V1_Payload) {
        // Empty metadata (rare: SDKs always write an encoding) makes no dictionary.
        self.init(metadata: proto.metadata.isEmpty ? [:] : proto.metadata.mapValues { [UInt8]($0) }, data: [UInt8](proto.data))
    }

    var proto: Temporal_Api_Common_V1_Payload {
        var payload = Temporal_Api_Common_V1_Payload()
        if !metadata.isEmpty { payload.metadata = metadata.mapValues { Data($0) } }
        payload.data = Data(data)
        return payload
    }
}

/// The engine's payloads for a Payloads field; nil when the field is unset.
func payloads(_ proto: ProtoPayloads, isSet: Bool) -> Payloads? {
    guard isSet else { return nil }
    return proto.payloads.map(Payload.init)
}

/// The Payloads message for the engine's payloads.
func protoPayloads(_ payloads: Payloads) -> ProtoPayloads {
    var message = ProtoPayloads()
    message.payloads = payloads.map(\.proto)
    return message
}

extension Header {
    init(_ proto: Temporal_Api_Common_V1_Header) {
        self.init(fields: proto.fields.isEmpty ? [:] : proto.fields.mapValues(Payload.init))
    }

    var proto: Temporal_Api_Common_V1_Header {
        var header = Temporal_Api_Common_V1_Header()
        if !fields.isEmpty { header.fields = fields.mapValues(\.proto) }
        return header
    }
}

extension UserMetadata {
    /// The engine's user metadata; nil when the field is unset.
    init?(_ proto: Temporal_Api_Sdk_V1_UserMetadata, isSet: Bool) {
        guard isSet else { return nil }
        self.init(summary: proto.hasSummary ? Payload(proto.summary) : nil, details: proto.hasDetails ? Payload(proto.details) : nil)
    }

    var proto: Temporal_Api_Sdk_V1_UserMetadata {
        var metadata = Temporal_Api_Sdk_V1_UserMetadata()
        if let summary { metadata.summary = summary.proto }
        if let details { metadata.details = details.proto }
        return metadata
    }
}

extension WorkerVersionStamp {
    /// The engine's stamp; nil when the field is unset.
    init?(_ proto: Temporal_Api_Common_V1_WorkerVersionStamp, isSet: Bool) {
        guard isSet else { return nil }
        self.init(buildID: proto.buildID, useVersioning: proto.useVersioning)
    }

    var proto: Temporal_Api_Common_V1_WorkerVersionStamp {
        var stamp = Temporal_Api_Common_V1_WorkerVersionStamp()
        stamp.buildID = buildID
        stamp.useVersioning = useVersioning
        return stamp
    }
}

extension WorkflowTaskCompletedMetadata {
    init(_ proto: Temporal_Api_Sdk_V1_WorkflowTaskCompletedMetadata) {
        self.init(coreUsedFlags: proto.coreUsedFlags, langUsedFlags: proto.langUsedFlags, sdkName: proto.sdkName,
                  sdkVersion: proto.sdkVersion)
    }

    var proto: Temporal_Api_Sdk_V1_WorkflowTaskCompletedMetadata {
        var metadata = Temporal_Api_Sdk_V1_WorkflowTaskCompletedMetadata()
        metadata.coreUsedFlags = coreUsedFlags
        metadata.langUsedFlags = langUsedFlags
        metadata.sdkName = sdkName
        metadata.sdkVersion = sdkVersion
        return metadata
    }
}

// MARK: - Retry policies and failures

extension RetryPolicy {
    init(_ proto: ProtoRetryPolicy) {
        self.init(
            initialInterval: duration(proto.initialInterval, isSet: proto.hasInitialInterval) ?? .seconds(1),
            backoffCoefficient: proto.backoffCoefficient == 0 ? 2.0 : proto.backoffCoefficient,
            maximumInterval: duration(proto.maximumInterval, isSet: proto.hasMaximumInterval),
            maximumAttempts: proto.maximumAttempts,
            nonRetryableErrorTypes: proto.nonRetryableErrorTypes)
    }

    var proto: ProtoRetryPolicy {
        var policy = ProtoRetryPolicy()
        policy.initialInterval = initialInterval.proto
        policy.backoffCoefficient = backoffCoefficient
        policy.maximumInterval = (maximumInterval ?? initialInterval * 100).proto
        policy.maximumAttempts = maximumAttempts
        policy.nonRetryableErrorTypes = nonRetryableErrorTypes
        return policy
    }
}

extension Failure {
    /// The engine's failure for a Temporal failure, field by field, its cause chain included.
    /// Failure kinds the engine does not have yet (child workflow, Nexus, reset) come through
    /// with no kind (``Failure/info`` nil); their other fields are kept.
    init(_ proto: ProtoFailure) {
        let info: FailureInfo?
        switch proto.failureInfo {
        case .applicationFailureInfo(let a):
            info = .application(ApplicationFailureInfo(
                type: a.type, nonRetryable: a.nonRetryable, details: payloads(a.details, isSet: a.hasDetails),
                nextRetryDelay: duration(a.nextRetryDelay, isSet: a.hasNextRetryDelay),
                category: ApplicationErrorCategory(rawValue: UInt8(clamping: a.category.rawValue)) ?? .unspecified))
        case .timeoutFailureInfo(let a):
            info = TimeoutType(rawValue: UInt8(clamping: a.timeoutType.rawValue)).map {
                .timeout(TimeoutFailureInfo(timeoutType: $0, lastHeartbeatDetails: payloads(a.lastHeartbeatDetails,
                                                                                             isSet: a.hasLastHeartbeatDetails)))
            }
        case .canceledFailureInfo(let a):
            info = .canceled(CanceledFailureInfo(details: payloads(a.details, isSet: a.hasDetails), identity: a.identity))
        case .terminatedFailureInfo(let a):
            info = .terminated(TerminatedFailureInfo(identity: a.identity))
        case .serverFailureInfo(let a):
            info = .server(ServerFailureInfo(nonRetryable: a.nonRetryable))
        case .activityFailureInfo(let a):
            info = .activity(ActivityFailureInfo(
                scheduledEventID: a.scheduledEventID, startedEventID: a.startedEventID, identity: a.identity,
                activityType: a.activityType.name, activityID: a.activityID,
                retryState: RetryState(rawValue: UInt8(clamping: a.retryState.rawValue)) ?? .unspecified))
        case nil:
            info = nil
        }
        self.init(message: proto.message, source: proto.source, stackTrace: proto.stackTrace,
                  encodedAttributes: proto.hasEncodedAttributes ? Payload(proto.encodedAttributes) : nil,
                  cause: proto.hasCause ? Failure(proto.cause) : nil, info: info)
    }

    var proto: ProtoFailure {
        var failure = ProtoFailure()
        failure.message = message
        failure.source = source
        failure.stackTrace = stackTrace
        if let encodedAttributes { failure.encodedAttributes = encodedAttributes.proto }
        if let cause { failure.cause = cause.proto }
        switch info {
        case .application(let a)?:
            var p = Temporal_Api_Failure_V1_ApplicationFailureInfo()
            p.type = a.type
            p.nonRetryable = a.nonRetryable
            if let details = a.details { p.details = protoPayloads(details) }
            if let delay = a.nextRetryDelay { p.nextRetryDelay = delay.proto }
            p.category = Temporal_Api_Enums_V1_ApplicationErrorCategory(rawValue: Int(a.category.rawValue)) ?? .unspecified
            failure.applicationFailureInfo = p
        case .timeout(let a)?:
            var p = Temporal_Api_Failure_V1_TimeoutFailureInfo()
            p.timeoutType = a.timeoutType.proto
            if let details = a.lastHeartbeatDetails { p.lastHeartbeatDetails = protoPayloads(details) }
            failure.timeoutFailureInfo = p
        case .canceled(let a)?:
            var p = Temporal_Api_Failure_V1_CanceledFailureInfo()
            if let details = a.details { p.details = protoPayloads(details) }
            p.identity = a.identity
            failure.canceledFailureInfo = p
        case .terminated(let a)?:
            var p = Temporal_Api_Failure_V1_TerminatedFailureInfo()
            p.identity = a.identity
            failure.terminatedFailureInfo = p
        case .server(let a)?:
            var p = Temporal_Api_Failure_V1_ServerFailureInfo()
            p.nonRetryable = a.nonRetryable
            failure.serverFailureInfo = p
        case .activity(let a)?:
            var p = Temporal_Api_Failure_V1_ActivityFailureInfo()
            p.scheduledEventID = a.scheduledEventID
            p.startedEventID = a.startedEventID
            p.identity = a.identity
            p.activityType = protoActivityType(a.activityType)
            p.activityID = a.activityID
            p.retryState = a.retryState.proto
            failure.activityFailureInfo = p
        case nil:
            break
        }
        return failure
    }
}

// MARK: - Enums (the engine uses Temporal's numbers)

extension WorkflowExecutionStatus {
    var proto: Temporal_Api_Enums_V1_WorkflowExecutionStatus {
        Temporal_Api_Enums_V1_WorkflowExecutionStatus(rawValue: Int(rawValue)) ?? .unspecified
    }
}

extension RetryState {
    var proto: Temporal_Api_Enums_V1_RetryState { Temporal_Api_Enums_V1_RetryState(rawValue: Int(rawValue)) ?? .unspecified }
}

extension TimeoutType {
    var proto: Temporal_Api_Enums_V1_TimeoutType { Temporal_Api_Enums_V1_TimeoutType(rawValue: Int(rawValue)) ?? .unspecified }
}

extension WorkflowTaskFailedCause {
    var proto: Temporal_Api_Enums_V1_WorkflowTaskFailedCause {
        Temporal_Api_Enums_V1_WorkflowTaskFailedCause(rawValue: Int(rawValue)) ?? .unspecified
    }
}

// MARK: - History

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

    // TODO(issue 18): memo and search attributes (point 5) are not kept by the engine yet, so
    // events carry none.
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
            // Spool has no execution timeout or first-task backoff yet (issue 18, point 4).
            p.workflowExecutionTimeout = Duration.zero.proto
            p.workflowRunTimeout = (a.workflowRunTimeout ?? .zero).proto
            p.firstWorkflowTaskBackoff = Duration.zero.proto
            p.workflowTaskTimeout = a.workflowTaskTimeout.proto
            p.continuedExecutionRunID = a.continuedExecutionRunID
            // The run's own id; a first run's is its chain's first run id.
            p.originalExecutionRunID = execution?.runID ?? (a.continuedExecutionRunID.isEmpty ? a.firstExecutionRunID : "")
            p.firstExecutionRunID = a.firstExecutionRunID
            if let execution { p.workflowID = execution.workflowID }
            p.identity = a.identity
            p.attempt = max(1, a.attempt)
            p.header = a.header.proto
            proto.workflowExecutionStartedEventAttributes = p
        case .workflowExecutionCompleted(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionCompletedEventAttributes()
            if let result = a.result { p.result = protoPayloads(result) }
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            proto.workflowExecutionCompletedEventAttributes = p
        case .workflowExecutionFailed(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionFailedEventAttributes()
            p.failure = a.failure.proto
            p.retryState = a.retryState.proto
            p.workflowTaskCompletedEventID = a.workflowTaskCompletedEventID
            proto.workflowExecutionFailedEventAttributes = p
        case .workflowExecutionTimedOut(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionTimedOutEventAttributes()
            p.retryState = a.retryState.proto
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
            p.header = a.header.proto
            proto.workflowExecutionContinuedAsNewEventAttributes = p
        }
        return proto
    }
}

// MARK: - Tasks

extension WorkflowTask {
    var proto: Temporal_Api_Workflowservice_V1_PollWorkflowTaskQueueResponse {
        var response = Temporal_Api_Workflowservice_V1_PollWorkflowTaskQueueResponse()
        response.taskToken = Data(taskToken.serialized)
        response.workflowExecution = workflowExecution.proto
        response.workflowType = protoWorkflowType(self.workflowType)
        response.previousStartedEventID = previousStartedEventID
        response.startedEventID = startedEventID
        response.attempt = attempt
        response.history = HistoryTranslator(runTaskQueue: workflowExecutionTaskQueue, execution: workflowExecution).history(history)
        response.workflowExecutionTaskQueue = taskQueue(workflowExecutionTaskQueue)
        response.scheduledTime = scheduledTime.proto
        response.startedTime = startedTime.proto
        if let query { response.query = query.proto }
        if !queries.isEmpty { response.queries = queries.mapValues(\.proto) }
        return response
    }
}

// MARK: - Queries

extension WorkflowQuery {
    init(_ proto: Temporal_Api_Query_V1_WorkflowQuery) {
        self.init(queryType: proto.queryType, queryArgs: payloads(proto.queryArgs, isSet: proto.hasQueryArgs),
                  header: Header(proto.header))
    }

    var proto: Temporal_Api_Query_V1_WorkflowQuery {
        var query = Temporal_Api_Query_V1_WorkflowQuery()
        query.queryType = queryType
        if let queryArgs { query.queryArgs = protoPayloads(queryArgs) }
        if !header.fields.isEmpty { query.header = header.proto }
        return query
    }
}

extension WorkflowQueryResult {
    /// A worker's answer, from a completion's `query_results` or RespondQueryTaskCompleted's
    /// fields; anything but FAILED counts as answered.
    init(type: Temporal_Api_Enums_V1_QueryResultType, answer: ProtoPayloads, hasAnswer: Bool, errorMessage: String,
         failure: ProtoFailure, hasFailure: Bool) {
        if type == .failed {
            self = .failed(errorMessage, failure: hasFailure ? Failure(failure) : nil)
        } else {
            self = .answered(payloads(answer, isSet: hasAnswer))
        }
    }

    init(_ proto: Temporal_Api_Query_V1_WorkflowQueryResult) {
        self.init(type: proto.resultType, answer: proto.answer, hasAnswer: proto.hasAnswer, errorMessage: proto.errorMessage,
                  failure: proto.failure, hasFailure: proto.hasFailure)
    }
}

extension ActivityTask {
    var proto: Temporal_Api_Workflowservice_V1_PollActivityTaskQueueResponse {
        var response = Temporal_Api_Workflowservice_V1_PollActivityTaskQueueResponse()
        response.taskToken = Data(taskToken.serialized)
        response.workflowNamespace = workflowNamespace
        response.workflowType = protoWorkflowType(self.workflowType)
        response.workflowExecution = workflowExecution.proto
        response.activityType = protoActivityType(self.activityType)
        response.activityID = activityID
        response.header = header.proto
        if let input { response.input = protoPayloads(input) }
        if let heartbeatDetails { response.heartbeatDetails = protoPayloads(heartbeatDetails) }
        response.scheduledTime = scheduledTime.proto
        response.currentAttemptScheduledTime = currentAttemptScheduledTime.proto
        response.startedTime = startedTime.proto
        response.attempt = attempt
        if let scheduleToCloseTimeout { response.scheduleToCloseTimeout = scheduleToCloseTimeout.proto }
        response.startToCloseTimeout = startToCloseTimeout.proto
        if let heartbeatTimeout { response.heartbeatTimeout = heartbeatTimeout.proto }
        response.retryPolicy = retryPolicy.proto
        return response
    }
}

// MARK: - Commands

/// The engine's command for a Temporal command; throws for a command type the engine does not
/// have yet (child workflows, external signals and cancels, search attributes, protocol messages).
func command(_ proto: ProtoCommand) throws(TranslationError) -> Command {
    let userMetadata = UserMetadata(proto.userMetadata, isSet: proto.hasUserMetadata)
    switch proto.attributes {
    case .scheduleActivityTaskCommandAttributes(let a):
        // TODO(issue 18): the engine keeps the activity's priority.
        return .scheduleActivityTask(ScheduleActivityTaskCommandAttributes(
            activityID: a.activityID, activityType: a.activityType.name, taskQueue: a.taskQueue.name,
            input: payloads(a.input, isSet: a.hasInput),
            scheduleToCloseTimeout: duration(a.scheduleToCloseTimeout, isSet: a.hasScheduleToCloseTimeout),
            scheduleToStartTimeout: duration(a.scheduleToStartTimeout, isSet: a.hasScheduleToStartTimeout),
            startToCloseTimeout: duration(a.startToCloseTimeout, isSet: a.hasStartToCloseTimeout),
            heartbeatTimeout: duration(a.heartbeatTimeout, isSet: a.hasHeartbeatTimeout),
            retryPolicy: a.hasRetryPolicy ? RetryPolicy(a.retryPolicy) : nil,
            requestEagerExecution: a.requestEagerExecution, header: Header(a.header), userMetadata: userMetadata))
    case .requestCancelActivityTaskCommandAttributes(let a):
        return .requestCancelActivityTask(RequestCancelActivityTaskCommandAttributes(scheduledEventID: a.scheduledEventID))
    case .startTimerCommandAttributes(let a):
        return .startTimer(StartTimerCommandAttributes(timerID: a.timerID, startToFireTimeout: a.startToFireTimeout.swift,
                                                       userMetadata: userMetadata))
    case .cancelTimerCommandAttributes(let a):
        return .cancelTimer(CancelTimerCommandAttributes(timerID: a.timerID))
    case .recordMarkerCommandAttributes(let a):
        return .recordMarker(RecordMarkerCommandAttributes(
            markerName: a.markerName, details: a.details.mapValues { payloads($0, isSet: true) ?? [] },
            failure: a.hasFailure ? Failure(a.failure) : nil, header: Header(a.header)))
    case .completeWorkflowExecutionCommandAttributes(let a):
        return .completeWorkflowExecution(CompleteWorkflowExecutionCommandAttributes(result: payloads(a.result, isSet: a.hasResult)))
    case .failWorkflowExecutionCommandAttributes(let a):
        return .failWorkflowExecution(FailWorkflowExecutionCommandAttributes(failure: Failure(a.failure)))
    case .cancelWorkflowExecutionCommandAttributes(let a):
        return .cancelWorkflowExecution(CancelWorkflowExecutionCommandAttributes(details: payloads(a.details, isSet: a.hasDetails)))
    case .continueAsNewWorkflowExecutionCommandAttributes(let a):
        return .continueAsNewWorkflowExecution(ContinueAsNewWorkflowExecutionCommandAttributes(
            workflowType: a.workflowType.name, taskQueue: a.taskQueue.name, input: payloads(a.input, isSet: a.hasInput),
            workflowRunTimeout: duration(a.workflowRunTimeout, isSet: a.hasWorkflowRunTimeout),
            workflowTaskTimeout: duration(a.workflowTaskTimeout, isSet: a.hasWorkflowTaskTimeout), header: Header(a.header)))
    case nil:
        throw TranslationError(message: "command type \(proto.commandType) is not supported by spool serve yet")
    }
}
