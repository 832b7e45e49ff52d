import FoundationEssentials
import GRPCCore
import Spool
import SpoolServerProtos
import SwiftProtobuf

typealias WS = Temporal_Api_Workflowservice_V1_WorkflowService

/// Temporal's WorkflowService on a ``SpoolEngine``: each method checks and translates its
/// request, calls the engine's public API, and translates the answer. The engine decides.
struct WorkflowService: WS.SimpleServiceProtocol {
    let engine: SpoolEngine
    let polls: PollGate
    /// How long an idle poll waits before answering empty; below the SDKs' 70 s deadline.
    let pollTimeout: Duration

    // MARK: Cluster and namespaces

    func getSystemInfo(request: Temporal_Api_Workflowservice_V1_GetSystemInfoRequest,
                       context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_GetSystemInfoResponse {
        var response = Temporal_Api_Workflowservice_V1_GetSystemInfoResponse()
        response.serverVersion = spoolServerVersion
        // Only what Spool honours: eager workflow start, the last heartbeat details of a failed
        // attempt kept for the next one, and signal headers, SDK metadata and encoded failure
        // attributes kept as sent, and memo upserts (ModifyWorkflowProperties). What Spool lacks
        // (build ids, schedules, Nexus) stays off.
        var capabilities = Temporal_Api_Workflowservice_V1_GetSystemInfoResponse.Capabilities()
        capabilities.signalAndQueryHeader = true
        capabilities.sdkMetadata = true
        capabilities.encodedFailureAttributes = true
        capabilities.eagerWorkflowStart = true
        capabilities.activityFailureIncludeHeartbeat = true
        capabilities.internalErrorDifferentiation = true
        capabilities.upsertMemo = true
        response.capabilities = capabilities
        return response
    }

    // MARK: Clients

    func startWorkflowExecution(request: Temporal_Api_Workflowservice_V1_StartWorkflowExecutionRequest,
                                context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_StartWorkflowExecutionResponse {
        let start = startRequest(request, conflictPolicy: WorkflowIDConflictPolicy(rawValue: UInt8(clamping: request.workflowIDConflictPolicy.rawValue)) ?? .fail,
                                 requestEagerExecution: request.requestEagerExecution)
        let started = try await engineCall { () async throws(SpoolError) in try await engine.startWorkflowExecution(start) }
        var response = Temporal_Api_Workflowservice_V1_StartWorkflowExecutionResponse()
        response.runID = started.runID
        response.started = started.started
        response.status = .running
        if let task = started.eagerWorkflowTask { response.eagerWorkflowTask = task.proto }
        return response
    }

    func signalWithStartWorkflowExecution(request: Temporal_Api_Workflowservice_V1_SignalWithStartWorkflowExecutionRequest,
                                          context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_SignalWithStartWorkflowExecutionResponse {
        // Temporal's default for signal-with-start is USE_EXISTING; FAIL is refused by the engine.
        let conflict: WorkflowIDConflictPolicy = switch request.workflowIDConflictPolicy {
        case .fail: .fail
        case .terminateExisting: .terminateExisting
        default: .useExisting
        }
        let start = startRequest(request, conflictPolicy: conflict, requestEagerExecution: false)
        let answer = try await engineCall { () async throws(SpoolError) in
            try await engine.signalWithStartWorkflowExecution(start, signalName: request.signalName,
                                                              signalInput: payloads(request.signalInput, isSet: request.hasSignalInput))
        }
        var response = Temporal_Api_Workflowservice_V1_SignalWithStartWorkflowExecutionResponse()
        response.runID = answer.runID
        response.started = answer.started
        return response
    }

    func getWorkflowExecutionHistory(request: Temporal_Api_Workflowservice_V1_GetWorkflowExecutionHistoryRequest,
                                     context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_GetWorkflowExecutionHistoryResponse {
        let ns = namespace(request.namespace)
        let engine = self.engine
        let execution = WorkflowExecution(request.execution)
        let filter: HistoryEventFilterType = request.historyEventFilterType == .closeEvent ? .closeEvent : .allEvent
        let pageSize = request.maximumPageSize > 0 ? Int(request.maximumPageSize) : 1000
        let token = request.nextPageToken.isEmpty ? nil : [UInt8](request.nextPageToken)
        let timeout = pollTimeout
        let page = try await engineCall { () async throws(SpoolError) in
            try await polls.run { () async throws(SpoolError) in
                try await engine.getWorkflowExecutionHistory(
                    namespace: ns, execution: execution, maximumPageSize: pageSize, nextPageToken: token,
                    waitNewEvent: request.waitNewEvent, historyEventFilterType: filter, timeout: timeout)
            }
        }
        var response = Temporal_Api_Workflowservice_V1_GetWorkflowExecutionHistoryResponse()
        guard let page else {
            // The server is shutting down: an empty page, and the client asks again.
            response.nextPageToken = request.nextPageToken
            return response
        }
        // The run the engine read (the current one when the request named none): its started
        // event carries its run id.
        var translator = HistoryTranslator(events: page.history, execution: page.execution)
        if translator.runTaskQueue.isEmpty, !page.history.isEmpty,
           let described = try? engine.describeWorkflowExecution(namespace: ns, execution: page.execution) {
            translator.runTaskQueue = described.executionInfo.taskQueue
        }
        response.history = translator.history(page.history)
        if let next = page.nextPageToken { response.nextPageToken = Data(next) }
        return response
    }

    func signalWorkflowExecution(request: Temporal_Api_Workflowservice_V1_SignalWorkflowExecutionRequest,
                                 context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_SignalWorkflowExecutionResponse {
        // TODO(issue 18): the engine deduplicates signals by request_id (it records it).
        try await engineCall { () async throws(SpoolError) in
            try await engine.signalWorkflowExecution(
                namespace: namespace(request.namespace), execution: WorkflowExecution(request.workflowExecution),
                signalName: request.signalName, input: payloads(request.input, isSet: request.hasInput), identity: request.identity,
                header: Header(request.header), requestID: request.requestID)
        }
        return Temporal_Api_Workflowservice_V1_SignalWorkflowExecutionResponse()
    }

    func requestCancelWorkflowExecution(request: Temporal_Api_Workflowservice_V1_RequestCancelWorkflowExecutionRequest,
                                        context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RequestCancelWorkflowExecutionResponse {
        // TODO(issue 18): first_execution_run_id (cancel only within that chain) and request_id dedup.
        try await engineCall { () async throws(SpoolError) in
            try await engine.requestCancelWorkflowExecution(
                namespace: namespace(request.namespace), execution: WorkflowExecution(request.workflowExecution),
                reason: request.reason, identity: request.identity)
        }
        return Temporal_Api_Workflowservice_V1_RequestCancelWorkflowExecutionResponse()
    }

    func terminateWorkflowExecution(request: Temporal_Api_Workflowservice_V1_TerminateWorkflowExecutionRequest,
                                    context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_TerminateWorkflowExecutionResponse {
        // TODO(issue 18): first_execution_run_id (terminate only within that chain).
        try await engineCall { () async throws(SpoolError) in
            try await engine.terminateWorkflowExecution(
                namespace: namespace(request.namespace), execution: WorkflowExecution(request.workflowExecution),
                reason: request.reason, details: payloads(request.details, isSet: request.hasDetails), identity: request.identity)
        }
        return Temporal_Api_Workflowservice_V1_TerminateWorkflowExecutionResponse()
    }

    func describeWorkflowExecution(request: Temporal_Api_Workflowservice_V1_DescribeWorkflowExecutionRequest,
                                   context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_DescribeWorkflowExecutionResponse {
        let described = try await engineCall { () async throws(SpoolError) in
            try engine.describeWorkflowExecution(namespace: namespace(request.namespace), execution: WorkflowExecution(request.execution))
        }
        let info = described.executionInfo
        var response = Temporal_Api_Workflowservice_V1_DescribeWorkflowExecutionResponse()
        var config = Temporal_Api_Workflow_V1_WorkflowExecutionConfig()
        config.taskQueue = taskQueue(info.taskQueue)
        // Unset timeouts are zero durations in Temporal's answer, not absent.
        config.workflowExecutionTimeout = (described.workflowExecutionTimeout ?? .zero).proto
        config.workflowRunTimeout = (described.workflowRunTimeout ?? .zero).proto
        config.defaultWorkflowTaskTimeout = described.workflowTaskTimeout.proto
        response.executionConfig = config
        var execution = info.proto
        execution.firstRunID = described.firstExecutionRunID
        execution.stateTransitionCount = described.stateTransitionCount
        response.workflowExecutionInfo = execution
        response.pendingChildren = described.pendingChildren.map { child in
            var p = Temporal_Api_Workflow_V1_PendingChildExecutionInfo()
            p.workflowID = child.workflowID
            p.runID = child.runID
            p.workflowTypeName = child.workflowTypeName
            p.initiatedID = child.initiatedID
            p.parentClosePolicy = child.parentClosePolicy.proto
            return p
        }
        response.pendingActivities = described.pendingActivities.map { activity in
            var p = Temporal_Api_Workflow_V1_PendingActivityInfo()
            p.activityID = activity.activityID
            p.activityType = protoActivityType(activity.activityType)
            p.state = Temporal_Api_Enums_V1_PendingActivityState(rawValue: Int(activity.state.rawValue)) ?? .unspecified
            if let details = activity.heartbeatDetails { p.heartbeatDetails = protoPayloads(details) }
            if let time = activity.lastHeartbeatTime { p.lastHeartbeatTime = time.proto }
            if let time = activity.lastStartedTime { p.lastStartedTime = time.proto }
            p.attempt = activity.attempt
            p.maximumAttempts = activity.maximumAttempts
            p.scheduledTime = activity.scheduledTime.proto
            if let time = activity.expirationTime { p.expirationTime = time.proto }
            if let failure = activity.lastFailure { p.lastFailure = failure.proto }
            p.lastWorkerIdentity = activity.lastWorkerIdentity
            return p
        }
        if let task = described.pendingWorkflowTask {
            var p = Temporal_Api_Workflow_V1_PendingWorkflowTaskInfo()
            p.state = task.started ? .started : .scheduled
            p.scheduledTime = task.scheduledTime.proto
            p.originalScheduledTime = task.scheduledTime.proto
            if let time = task.startedTime { p.startedTime = time.proto }
            p.attempt = task.attempt
            response.pendingWorkflowTask = p
        }
        return response
    }
}

/// The fields StartWorkflowExecution and SignalWithStartWorkflowExecution share (same names in
/// both generated messages), so one translation serves both.
protocol StartRequestFields {
    var namespace: String { get }
    var workflowID: String { get }
    var workflowType: Temporal_Api_Common_V1_WorkflowType { get }
    var taskQueue: Temporal_Api_Taskqueue_V1_TaskQueue { get }
    var input: Temporal_Api_Common_V1_Payloads { get }
    var hasInput: Bool { get }
    var workflowExecutionTimeout: Google_Protobuf_Duration { get }
    var hasWorkflowExecutionTimeout: Bool { get }
    var workflowRunTimeout: Google_Protobuf_Duration { get }
    var hasWorkflowRunTimeout: Bool { get }
    var workflowTaskTimeout: Google_Protobuf_Duration { get }
    var hasWorkflowTaskTimeout: Bool { get }
    var identity: String { get }
    var requestID: String { get }
    var workflowIDReusePolicy: Temporal_Api_Enums_V1_WorkflowIdReusePolicy { get }
    var retryPolicy: Temporal_Api_Common_V1_RetryPolicy { get }
    var hasRetryPolicy: Bool { get }
    var cronSchedule: String { get }
    var memo: Temporal_Api_Common_V1_Memo { get }
    var searchAttributes: Temporal_Api_Common_V1_SearchAttributes { get }
    var header: Temporal_Api_Common_V1_Header { get }
    var workflowStartDelay: Google_Protobuf_Duration { get }
    var hasWorkflowStartDelay: Bool { get }
    var userMetadata: Temporal_Api_Sdk_V1_UserMetadata { get }
    var hasUserMetadata: Bool { get }
    var priority: Temporal_Api_Common_V1_Priority { get }
}

extension Temporal_Api_Workflowservice_V1_StartWorkflowExecutionRequest: StartRequestFields {}
extension Temporal_Api_Workflowservice_V1_SignalWithStartWorkflowExecutionRequest: StartRequestFields {}

/// The engine's start request for a start or signal-with-start. A bad priority is refused by the
/// engine (INVALID_ARGUMENT naming the field); the engine fills the run timeout from the
/// execution timeout as Temporal does.
func startRequest(_ request: some StartRequestFields, conflictPolicy: WorkflowIDConflictPolicy,
                  requestEagerExecution: Bool) -> StartWorkflowExecutionRequest {
    var start = StartWorkflowExecutionRequest(
        namespace: namespace(request.namespace), workflowID: request.workflowID, workflowType: request.workflowType.name,
        taskQueue: request.taskQueue.name, input: payloads(request.input, isSet: request.hasInput),
        workflowRunTimeout: duration(request.workflowRunTimeout, isSet: request.hasWorkflowRunTimeout),
        workflowTaskTimeout: duration(request.workflowTaskTimeout, isSet: request.hasWorkflowTaskTimeout),
        identity: request.identity, requestID: request.requestID,
        workflowIDReusePolicy: WorkflowIDReusePolicy(rawValue: UInt8(clamping: request.workflowIDReusePolicy.rawValue)) ?? .allowDuplicate,
        workflowIDConflictPolicy: conflictPolicy, requestEagerExecution: requestEagerExecution, header: Header(request.header),
        userMetadata: UserMetadata(request.userMetadata, isSet: request.hasUserMetadata),
        workflowExecutionTimeout: duration(request.workflowExecutionTimeout, isSet: request.hasWorkflowExecutionTimeout),
        retryPolicy: request.hasRetryPolicy ? RetryPolicy(request.retryPolicy) : nil,
        cronSchedule: request.cronSchedule, memo: payloadFields(request.memo.fields),
        searchAttributes: payloadFields(request.searchAttributes.indexedFields),
        startDelay: duration(request.workflowStartDelay, isSet: request.hasWorkflowStartDelay))
    start.priority = Priority(request.priority)
    return start
}
