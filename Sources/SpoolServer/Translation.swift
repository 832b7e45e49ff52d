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

// MARK: - Payloads

// The engine keeps payloads as opaque bytes without metadata. The server stores Temporal's
// whole `Payloads` message in those bytes, so encodings and other metadata come back exactly as
// the client sent them. TODO(issue 18): the engine keeps payload metadata itself; then this
// envelope goes and in-process workers and remote ones see the same payloads.

/// The engine's bytes for a Payloads field; nil when the field is unset.
func payloads(_ proto: ProtoPayloads, isSet: Bool) -> Payloads? {
    guard isSet else { return nil }
    return (try? proto.serializedBytes()) ?? []
}

/// The Payloads message for the engine's bytes. Bytes written by an in-process worker (not a
/// Payloads message) come back as one payload with `encoding: binary/plain`.
func protoPayloads(_ bytes: Payloads) -> ProtoPayloads {
    if let decoded = try? ProtoPayloads(serializedBytes: bytes) { return decoded }
    var payload = Temporal_Api_Common_V1_Payload()
    payload.metadata = ["encoding": Data("binary/plain".utf8)]
    payload.data = Data(bytes)
    var wrapped = ProtoPayloads()
    wrapped.payloads = [payload]
    return wrapped
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
    /// The engine's failure for a Temporal failure.
    ///
    /// TODO(issue 18): the engine keeps a failure's `source`, `stack_trace`, `encoded_attributes`
    /// and `cause` chain; until then they are dropped here, and only the application (or timeout,
    /// canceled) information of the outermost failure is kept.
    init(_ proto: ProtoFailure) {
        switch proto.failureInfo {
        case .applicationFailureInfo(let info):
            self.init(message: proto.message, type: info.type, nonRetryable: info.nonRetryable,
                      details: payloads(info.details, isSet: info.hasDetails),
                      nextRetryDelay: duration(info.nextRetryDelay, isSet: info.hasNextRetryDelay))
        case .timeoutFailureInfo(let info):
            self.init(message: proto.message, type: "TimeoutError",
                      timeoutType: TimeoutType(rawValue: UInt8(clamping: info.timeoutType.rawValue)),
                      lastHeartbeatDetails: payloads(info.lastHeartbeatDetails, isSet: info.hasLastHeartbeatDetails))
        case .canceledFailureInfo(let info):
            self.init(message: proto.message, type: "CanceledError", details: payloads(info.details, isSet: info.hasDetails))
        case .terminatedFailureInfo:
            self.init(message: proto.message, type: "TerminatedError", nonRetryable: true)
        case .serverFailureInfo(let info):
            self.init(message: proto.message, type: "ServerError", nonRetryable: info.nonRetryable)
        case .activityFailureInfo, nil:
            self.init(message: proto.message)
        }
    }

    var proto: ProtoFailure {
        var failure = ProtoFailure()
        failure.message = message
        if let timeoutType {
            var info = Temporal_Api_Failure_V1_TimeoutFailureInfo()
            info.timeoutType = Temporal_Api_Enums_V1_TimeoutType(rawValue: Int(timeoutType.rawValue)) ?? .unspecified
            if let lastHeartbeatDetails { info.lastHeartbeatDetails = protoPayloads(lastHeartbeatDetails) }
            failure.timeoutFailureInfo = info
        } else if type == "CanceledError" {
            var info = Temporal_Api_Failure_V1_CanceledFailureInfo()
            if let details { info.details = protoPayloads(details) }
            failure.canceledFailureInfo = info
        } else {
            var info = Temporal_Api_Failure_V1_ApplicationFailureInfo()
            info.type = type
            info.nonRetryable = nonRetryable
            if let details { info.details = protoPayloads(details) }
            if let nextRetryDelay { info.nextRetryDelay = nextRetryDelay.proto }
            failure.applicationFailureInfo = info
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

    init(runTaskQueue: String) { self.runTaskQueue = runTaskQueue }

    /// The run's task queue read from its first event, when `events` starts there.
    init(events: [HistoryEvent], fallback: String = "") {
        if case .workflowExecutionStarted(let started)? = events.first?.attributes {
            runTaskQueue = started.taskQueue
        } else {
            runTaskQueue = fallback
        }
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

    // TODO(issue 18): headers, memo, search attributes and the SDK metadata of
    // WorkflowTaskCompleted are not kept by the engine, so events carry none.
    func event(_ event: HistoryEvent) -> ProtoHistoryEvent {
        var proto = ProtoHistoryEvent()
        proto.eventID = event.eventID
        proto.eventTime = event.eventTime.proto
        proto.eventType = Temporal_Api_Enums_V1_EventType(rawValue: Int(event.eventType.rawValue)) ?? .unspecified
        switch event.attributes {
        case .workflowExecutionStarted(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionStartedEventAttributes()
            p.workflowType = protoWorkflowType(a.workflowType)
            p.taskQueue = taskQueue(a.taskQueue)
            if let input = a.input { p.input = protoPayloads(input) }
            if let timeout = a.workflowRunTimeout { p.workflowRunTimeout = timeout.proto }
            p.workflowTaskTimeout = a.workflowTaskTimeout.proto
            p.continuedExecutionRunID = a.continuedExecutionRunID
            p.originalExecutionRunID = a.firstExecutionRunID
            p.firstExecutionRunID = a.firstExecutionRunID
            p.identity = a.identity
            p.attempt = max(1, a.attempt)
            p.header = Temporal_Api_Common_V1_Header()
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
            proto.workflowTaskFailedEventAttributes = p
        case .activityTaskScheduled(let a):
            var p = Temporal_Api_History_V1_ActivityTaskScheduledEventAttributes()
            p.activityID = a.activityID
            p.activityType = protoActivityType(a.activityType)
            p.taskQueue = taskQueue(a.taskQueue)
            p.header = Temporal_Api_Common_V1_Header()
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
            proto.activityTaskCompletedEventAttributes = p
        case .activityTaskFailed(let a):
            var p = Temporal_Api_History_V1_ActivityTaskFailedEventAttributes()
            p.failure = a.failure.proto
            p.scheduledEventID = a.scheduledEventID
            p.startedEventID = a.startedEventID
            p.identity = a.identity
            p.retryState = a.retryState.proto
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
            proto.markerRecordedEventAttributes = p
        case .workflowExecutionSignaled(let a):
            var p = Temporal_Api_History_V1_WorkflowExecutionSignaledEventAttributes()
            p.signalName = a.signalName
            if let input = a.input { p.input = protoPayloads(input) }
            p.identity = a.identity
            p.header = Temporal_Api_Common_V1_Header()
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
        response.history = HistoryTranslator(runTaskQueue: workflowExecutionTaskQueue).history(history)
        response.workflowExecutionTaskQueue = taskQueue(workflowExecutionTaskQueue)
        response.scheduledTime = scheduledTime.proto
        response.startedTime = startedTime.proto
        return response
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
        // TODO(issue 18): the engine keeps the activity's header; until then it is empty.
        response.header = Temporal_Api_Common_V1_Header()
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
    switch proto.attributes {
    case .scheduleActivityTaskCommandAttributes(let a):
        // TODO(issue 18): the engine keeps the activity's header and priority.
        return .scheduleActivityTask(ScheduleActivityTaskCommandAttributes(
            activityID: a.activityID, activityType: a.activityType.name, taskQueue: a.taskQueue.name,
            input: payloads(a.input, isSet: a.hasInput),
            scheduleToCloseTimeout: duration(a.scheduleToCloseTimeout, isSet: a.hasScheduleToCloseTimeout),
            scheduleToStartTimeout: duration(a.scheduleToStartTimeout, isSet: a.hasScheduleToStartTimeout),
            startToCloseTimeout: duration(a.startToCloseTimeout, isSet: a.hasStartToCloseTimeout),
            heartbeatTimeout: duration(a.heartbeatTimeout, isSet: a.hasHeartbeatTimeout),
            retryPolicy: a.hasRetryPolicy ? RetryPolicy(a.retryPolicy) : nil,
            requestEagerExecution: a.requestEagerExecution))
    case .requestCancelActivityTaskCommandAttributes(let a):
        return .requestCancelActivityTask(RequestCancelActivityTaskCommandAttributes(scheduledEventID: a.scheduledEventID))
    case .startTimerCommandAttributes(let a):
        return .startTimer(StartTimerCommandAttributes(timerID: a.timerID, startToFireTimeout: a.startToFireTimeout.swift))
    case .cancelTimerCommandAttributes(let a):
        return .cancelTimer(CancelTimerCommandAttributes(timerID: a.timerID))
    case .recordMarkerCommandAttributes(let a):
        return .recordMarker(RecordMarkerCommandAttributes(
            markerName: a.markerName, details: a.details.mapValues { payloads($0, isSet: true) ?? [] },
            failure: a.hasFailure ? Failure(a.failure) : nil))
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
            workflowTaskTimeout: duration(a.workflowTaskTimeout, isSet: a.hasWorkflowTaskTimeout)))
    case nil:
        throw TranslationError(message: "command type \(proto.commandType) is not supported by spool serve yet")
    }
}
