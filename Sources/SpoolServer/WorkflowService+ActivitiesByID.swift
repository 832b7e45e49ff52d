import FoundationEssentials
import GRPCCore
import Spool
import SpoolServerProtos

/// Asynchronous activity completion: the `…ById` calls, by workflow id, run id and activity id.
extension WorkflowService {
    func respondActivityTaskCompletedById(request: Temporal_Api_Workflowservice_V1_RespondActivityTaskCompletedByIdRequest,
                                          context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RespondActivityTaskCompletedByIdResponse {
        try await engineCall { () async throws(SpoolError) in
            try await engine.respondActivityTaskCompletedByID(
                namespace: namespace(request.namespace), workflowID: request.workflowID, runID: request.runID,
                activityID: request.activityID, result: payloads(request.result, isSet: request.hasResult), identity: request.identity)
        }
        return Temporal_Api_Workflowservice_V1_RespondActivityTaskCompletedByIdResponse()
    }

    func respondActivityTaskFailedById(request: Temporal_Api_Workflowservice_V1_RespondActivityTaskFailedByIdRequest,
                                       context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RespondActivityTaskFailedByIdResponse {
        try await engineCall { () async throws(SpoolError) in
            try await engine.respondActivityTaskFailedByID(
                namespace: namespace(request.namespace), workflowID: request.workflowID, runID: request.runID,
                activityID: request.activityID,
                failure: request.hasFailure ? Failure(request.failure) : Failure(message: "activity failed"),
                lastHeartbeatDetails: payloads(request.lastHeartbeatDetails, isSet: request.hasLastHeartbeatDetails),
                identity: request.identity)
        }
        return Temporal_Api_Workflowservice_V1_RespondActivityTaskFailedByIdResponse()
    }

    func respondActivityTaskCanceledById(request: Temporal_Api_Workflowservice_V1_RespondActivityTaskCanceledByIdRequest,
                                         context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RespondActivityTaskCanceledByIdResponse {
        try await engineCall { () async throws(SpoolError) in
            try await engine.respondActivityTaskCanceledByID(
                namespace: namespace(request.namespace), workflowID: request.workflowID, runID: request.runID,
                activityID: request.activityID, details: payloads(request.details, isSet: request.hasDetails), identity: request.identity)
        }
        return Temporal_Api_Workflowservice_V1_RespondActivityTaskCanceledByIdResponse()
    }

    func recordActivityTaskHeartbeatById(request: Temporal_Api_Workflowservice_V1_RecordActivityTaskHeartbeatByIdRequest,
                                         context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RecordActivityTaskHeartbeatByIdResponse {
        let answer = try await engineCall { () async throws(SpoolError) in
            try await engine.recordActivityTaskHeartbeatByID(
                namespace: namespace(request.namespace), workflowID: request.workflowID, runID: request.runID,
                activityID: request.activityID, details: payloads(request.details, isSet: request.hasDetails), identity: request.identity)
        }
        var response = Temporal_Api_Workflowservice_V1_RecordActivityTaskHeartbeatByIdResponse()
        response.cancelRequested = answer.cancelRequested
        return response
    }
}
