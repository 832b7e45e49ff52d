// Workflow, activity and query tasks, commands and their results, both ways (see Translation.swift).

import FoundationEssentials
import Spool
import SpoolServerProtos
import SwiftProtobuf

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
        response.messages = messages.map(\.proto)
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
/// have yet (child workflows, external signals and cancels, protocol messages).
func command(_ proto: ProtoCommand) throws(TranslationError) -> Command {
    let userMetadata = UserMetadata(proto.userMetadata, isSet: proto.hasUserMetadata)
    switch proto.attributes {
    case .scheduleActivityTaskCommandAttributes(let a):
        var attributes = ScheduleActivityTaskCommandAttributes(
            activityID: a.activityID, activityType: a.activityType.name, taskQueue: a.taskQueue.name,
            input: payloads(a.input, isSet: a.hasInput),
            scheduleToCloseTimeout: duration(a.scheduleToCloseTimeout, isSet: a.hasScheduleToCloseTimeout),
            scheduleToStartTimeout: duration(a.scheduleToStartTimeout, isSet: a.hasScheduleToStartTimeout),
            startToCloseTimeout: duration(a.startToCloseTimeout, isSet: a.hasStartToCloseTimeout),
            heartbeatTimeout: duration(a.heartbeatTimeout, isSet: a.hasHeartbeatTimeout),
            retryPolicy: a.hasRetryPolicy ? RetryPolicy(a.retryPolicy) : nil,
            requestEagerExecution: a.requestEagerExecution, header: Header(a.header), userMetadata: userMetadata)
        // A bad priority fails the workflow task with the engine's cause, as in Temporal.
        attributes.priority = Priority(a.priority)
        return .scheduleActivityTask(attributes)
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
            workflowTaskTimeout: duration(a.workflowTaskTimeout, isSet: a.hasWorkflowTaskTimeout), header: Header(a.header),
            backoffStartInterval: duration(a.backoffStartInterval, isSet: a.hasBackoffStartInterval),
            retryPolicy: a.hasRetryPolicy ? RetryPolicy(a.retryPolicy) : nil, initiator: ContinueAsNewInitiator(a.initiator),
            failure: a.hasFailure ? Failure(a.failure) : nil,
            lastCompletionResult: payloads(a.lastCompletionResult, isSet: a.hasLastCompletionResult),
            // Unset (empty) means the current run's, as in Temporal.
            cronSchedule: a.cronSchedule.isEmpty ? nil : a.cronSchedule,
            memo: a.hasMemo ? payloadFields(a.memo.fields) : nil,
            searchAttributes: a.hasSearchAttributes ? payloadFields(a.searchAttributes.indexedFields) : nil))
    case .upsertWorkflowSearchAttributesCommandAttributes(let a):
        return .upsertWorkflowSearchAttributes(UpsertWorkflowSearchAttributesCommandAttributes(
            searchAttributes: payloadFields(a.searchAttributes.indexedFields)))
    case .modifyWorkflowPropertiesCommandAttributes(let a):
        return .modifyWorkflowProperties(ModifyWorkflowPropertiesCommandAttributes(upsertedMemo: payloadFields(a.upsertedMemo.fields)))
    case .startChildWorkflowExecutionCommandAttributes, .signalExternalWorkflowExecutionCommandAttributes,
         .requestCancelExternalWorkflowExecutionCommandAttributes:
        return relatedRunCommand(proto, userMetadata: userMetadata)!
    case .protocolMessageCommandAttributes(let a):
        return .protocolMessage(ProtocolMessageCommandAttributes(messageID: a.messageID))
    case nil:
        throw TranslationError(message: "command type \(proto.commandType) is not supported by spool serve yet")
    }
}
