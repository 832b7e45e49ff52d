import FoundationEssentials
import GRPCCore
import Spool
import SpoolServerProtos

/// Queries: asked by clients, answered by workers.
extension WorkflowService {
    func queryWorkflow(request: Temporal_Api_Workflowservice_V1_QueryWorkflowRequest,
                       context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_QueryWorkflowResponse {
        let condition: QueryRejectCondition = switch request.queryRejectCondition {
        case .notOpen: .notOpen
        case .notCompletedCleanly: .notCompletedCleanly
        default: .none
        }
        let query = WorkflowQuery(request.query)
        let answer = try await engineCall { () async throws(SpoolError) in
            try await engine.queryWorkflow(namespace: namespace(request.namespace), execution: WorkflowExecution(request.execution),
                                           queryType: query.queryType, args: query.queryArgs, header: query.header,
                                           rejectCondition: condition, timeout: queryTimeout(context))
        }
        var response = Temporal_Api_Workflowservice_V1_QueryWorkflowResponse()
        if let result = answer.queryResult { response.queryResult = protoPayloads(result) }
        if let status = answer.queryRejected {
            var rejected = Temporal_Api_Query_V1_QueryRejected()
            rejected.status = status.proto
            response.queryRejected = rejected
        }
        return response
    }

    /// How long a query waits for a worker: 25 s, inside the 30 s deadline the SDKs give ordinary
    /// calls, so the caller hears why (DEADLINE_EXCEEDED with a message) rather than its own
    /// timeout; at most `pollTimeout`. (The simple service API does not show the call's deadline.)
    fileprivate func queryTimeout(_ context: ServerContext) -> Duration {
        min(pollTimeout, .seconds(25))
    }

    func respondQueryTaskCompleted(request: Temporal_Api_Workflowservice_V1_RespondQueryTaskCompletedRequest,
                                   context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_RespondQueryTaskCompletedResponse {
        let result = WorkflowQueryResult(type: request.completedType, answer: request.queryResult, hasAnswer: request.hasQueryResult,
                                         errorMessage: request.errorMessage, failure: request.failure, hasFailure: request.hasFailure)
        try await engineCall { () async throws(SpoolError) in
            try await engine.respondQueryTaskCompleted(taskToken: try TaskToken(serialized: [UInt8](request.taskToken)), result: result)
        }
        return Temporal_Api_Workflowservice_V1_RespondQueryTaskCompletedResponse()
    }
}
