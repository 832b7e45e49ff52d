import FoundationEssentials
import GRPCCore
import Spool
import SpoolServerProtos

/// The calls of workers: polls for workflow and activity tasks and their answers.
extension WorkflowService {
    func pollWorkflowTaskQueue(request: Temporal_Api_Workflowservice_V1_PollWorkflowTaskQueueRequest,
                               context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_PollWorkflowTaskQueueResponse {
        let ns = namespace(request.namespace), queue = request.taskQueue.name, identity = request.identity
        let engine = self.engine, timeout = pollTimeout
        let task = try await engineCall { () async throws(SpoolError) in
            try await polls.run { () async throws(SpoolError) in
                try await engine.pollWorkflowTaskQueue(namespace: ns, taskQueue: queue, identity: identity, timeout: timeout)
            } undelivered: { task in
                // The worker went away with its poll: the next attempt goes out now, not after the task timeout.
                try? await engine.returnUndeliveredWorkflowTask(taskToken: task.taskToken)
            }
        }
        return task?.proto ?? Temporal_Api_Workflowservice_V1_PollWorkflowTaskQueueResponse()
    }

    func respondWorkflowTaskCompleted(request: Temporal_Api_Workflowservice_V1_RespondWorkflowTaskCompletedRequest,
                                      context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RespondWorkflowTaskCompletedResponse {
        let token = try await engineCall { () throws(SpoolError) in try TaskToken(serialized: [UInt8](request.taskToken)) }
        // A command or message the engine cannot carry out fails the workflow task, as an invalid
        // one does in Temporal, so the history says why the workflow is stuck.
        func failTask(_ error: TranslationError, cause: WorkflowTaskFailedCause) async throws -> Never {
            try await engineCall { () async throws(SpoolError) in
                try await engine.respondWorkflowTaskFailed(
                    taskToken: token, cause: cause, failure: .server(error.message),
                    identity: request.identity, binaryChecksum: request.binaryChecksum,
                    workerVersion: WorkerVersionStamp(request.workerVersionStamp, isSet: request.hasWorkerVersionStamp))
            }
            throw error.rpcError
        }
        var commands: [Command] = []
        for proto in request.commands {
            do throws(TranslationError) { commands.append(try command(proto)) } catch { try await failTask(error, cause: .unhandledCommand) }
        }
        var messages: [ProtocolMessage] = []
        for proto in request.messages {
            do throws(TranslationError) { messages.append(try ProtocolMessage(proto)) } catch {
                try await failTask(error, cause: .badUpdateWorkflowExecutionMessage)
            }
        }
        let sticky = request.hasStickyAttributes && !request.stickyAttributes.workerTaskQueue.name.isEmpty
            ? StickyExecutionAttributes(
                workerTaskQueue: request.stickyAttributes.workerTaskQueue.name,
                scheduleToStartTimeout: duration(request.stickyAttributes.scheduleToStartTimeout,
                                                 isSet: request.stickyAttributes.hasScheduleToStartTimeout) ?? .seconds(5))
            : nil
        let metadata = WorkflowTaskCompletionMetadata(
            binaryChecksum: request.binaryChecksum,
            workerVersion: WorkerVersionStamp(request.workerVersionStamp, isSet: request.hasWorkerVersionStamp),
            sdkMetadata: request.hasSdkMetadata ? WorkflowTaskCompletedMetadata(request.sdkMetadata) : nil,
            meteringMetadata: request.hasMeteringMetadata
                ? MeteringMetadata(nonfirstLocalActivityExecutionAttempts: request.meteringMetadata.nonfirstLocalActivityExecutionAttempts)
                : nil,
            versioningBehavior: VersioningBehavior(rawValue: UInt8(clamping: request.versioningBehavior.rawValue)) ?? .unspecified)
        let queryResults = request.queryResults.mapValues { WorkflowQueryResult($0) }
        let completed = try await engineCall { () async throws(SpoolError) in
            try await engine.respondWorkflowTaskCompleted(taskToken: token, commands: commands, identity: request.identity,
                                                          stickyAttributes: sticky, metadata: metadata, queryResults: queryResults,
                                                          forceCreateNewWorkflowTask: request.forceCreateNewWorkflowTask,
                                                          returnNewWorkflowTask: request.returnNewWorkflowTask, messages: messages)
        }
        var response = Temporal_Api_Workflowservice_V1_RespondWorkflowTaskCompletedResponse()
        response.activityTasks = completed.activityTasks.map(\.proto)
        // The next task, already started for this worker (return_new_workflow_task).
        if let task = completed.workflowTask { response.workflowTask = task.proto }
        response.resetHistoryEventID = completed.resetHistoryEventID
        return response
    }

    func respondWorkflowTaskFailed(request: Temporal_Api_Workflowservice_V1_RespondWorkflowTaskFailedRequest,
                                   context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RespondWorkflowTaskFailedResponse {
        try await engineCall { () async throws(SpoolError) in
            let token = try TaskToken(serialized: [UInt8](request.taskToken))
            let cause = WorkflowTaskFailedCause(temporalValue: request.cause.rawValue) ?? .workflowWorkerUnhandledFailure
            try await engine.respondWorkflowTaskFailed(
                taskToken: token, cause: cause,
                failure: request.hasFailure ? Failure(request.failure) : Failure(message: "workflow task failed"),
                identity: request.identity, binaryChecksum: request.binaryChecksum,
                workerVersion: WorkerVersionStamp(request.workerVersion, isSet: request.hasWorkerVersion))
        }
        return Temporal_Api_Workflowservice_V1_RespondWorkflowTaskFailedResponse()
    }

    func pollActivityTaskQueue(request: Temporal_Api_Workflowservice_V1_PollActivityTaskQueueRequest,
                               context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_PollActivityTaskQueueResponse {
        let ns = namespace(request.namespace), queue = request.taskQueue.name, identity = request.identity
        let engine = self.engine, timeout = pollTimeout
        // The queue-wide rate the worker asks for (the SDKs' max_task_queue_activities_per_second).
        let rate: Double? = request.hasTaskQueueMetadata && request.taskQueueMetadata.hasMaxTasksPerSecond
            ? request.taskQueueMetadata.maxTasksPerSecond.value : nil
        let task = try await engineCall { () async throws(SpoolError) in
            try await polls.run { () async throws(SpoolError) in
                try await engine.pollActivityTaskQueue(namespace: ns, taskQueue: queue, identity: identity, timeout: timeout,
                                                       maxTasksPerSecond: rate)
            } undelivered: { task in
                // The worker went away with its poll: the same attempt goes to the next poller now.
                try? await engine.returnUndeliveredActivityTask(taskToken: task.taskToken)
            }
        }
        return task?.proto ?? Temporal_Api_Workflowservice_V1_PollActivityTaskQueueResponse()
    }

    func recordActivityTaskHeartbeat(request: Temporal_Api_Workflowservice_V1_RecordActivityTaskHeartbeatRequest,
                                     context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RecordActivityTaskHeartbeatResponse {
        let answer = try await engineCall { () async throws(SpoolError) in
            try await engine.recordActivityTaskHeartbeat(
                taskToken: try TaskToken(serialized: [UInt8](request.taskToken)),
                details: payloads(request.details, isSet: request.hasDetails), identity: request.identity)
        }
        var response = Temporal_Api_Workflowservice_V1_RecordActivityTaskHeartbeatResponse()
        response.cancelRequested = answer.cancelRequested
        return response
    }

    func respondActivityTaskCompleted(request: Temporal_Api_Workflowservice_V1_RespondActivityTaskCompletedRequest,
                                      context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RespondActivityTaskCompletedResponse {
        try await engineCall { () async throws(SpoolError) in
            try await engine.respondActivityTaskCompleted(
                taskToken: try TaskToken(serialized: [UInt8](request.taskToken)),
                result: payloads(request.result, isSet: request.hasResult), identity: request.identity,
                workerVersion: WorkerVersionStamp(request.workerVersion, isSet: request.hasWorkerVersion))
        }
        return Temporal_Api_Workflowservice_V1_RespondActivityTaskCompletedResponse()
    }

    func respondActivityTaskFailed(request: Temporal_Api_Workflowservice_V1_RespondActivityTaskFailedRequest,
                                   context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RespondActivityTaskFailedResponse {
        try await engineCall { () async throws(SpoolError) in
            try await engine.respondActivityTaskFailed(
                taskToken: try TaskToken(serialized: [UInt8](request.taskToken)),
                failure: request.hasFailure ? Failure(request.failure) : Failure(message: "activity failed"),
                lastHeartbeatDetails: payloads(request.lastHeartbeatDetails, isSet: request.hasLastHeartbeatDetails),
                identity: request.identity, workerVersion: WorkerVersionStamp(request.workerVersion, isSet: request.hasWorkerVersion))
        }
        return Temporal_Api_Workflowservice_V1_RespondActivityTaskFailedResponse()
    }

    func respondActivityTaskCanceled(request: Temporal_Api_Workflowservice_V1_RespondActivityTaskCanceledRequest,
                                     context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RespondActivityTaskCanceledResponse {
        try await engineCall { () async throws(SpoolError) in
            try await engine.respondActivityTaskCanceled(
                taskToken: try TaskToken(serialized: [UInt8](request.taskToken)),
                details: payloads(request.details, isSet: request.hasDetails), identity: request.identity,
                workerVersion: WorkerVersionStamp(request.workerVersion, isSet: request.hasWorkerVersion))
        }
        return Temporal_Api_Workflowservice_V1_RespondActivityTaskCanceledResponse()
    }

    func shutdownWorker(request: Temporal_Api_Workflowservice_V1_ShutdownWorkerRequest,
                        context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_ShutdownWorkerResponse {
        if !request.stickyTaskQueue.isEmpty {
            _ = try await engineCall { () async throws(SpoolError) in
                try await engine.shutdownWorker(namespace: namespace(request.namespace), stickyTaskQueue: request.stickyTaskQueue)
            }
        }
        return Temporal_Api_Workflowservice_V1_ShutdownWorkerResponse()
    }
}
