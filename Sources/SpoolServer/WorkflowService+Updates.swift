import GRPCCore
import Spool
import SpoolServerProtos

extension WorkflowService {
    // The update RPCs wait for the engine's updates (issue 19, point 3); until then they answer
    // as an unknown method does, naming themselves.

    func updateWorkflowExecution(request: Temporal_Api_Workflowservice_V1_UpdateWorkflowExecutionRequest,
                                 context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_UpdateWorkflowExecutionResponse {
        throw RPCError(code: .unimplemented, message: "spool serve does not implement UpdateWorkflowExecution yet")
    }

    func pollWorkflowExecutionUpdate(request: Temporal_Api_Workflowservice_V1_PollWorkflowExecutionUpdateRequest,
                                     context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_PollWorkflowExecutionUpdateResponse {
        throw RPCError(code: .unimplemented, message: "spool serve does not implement PollWorkflowExecutionUpdate yet")
    }

    func executeMultiOperation(request: Temporal_Api_Workflowservice_V1_ExecuteMultiOperationRequest,
                               context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_ExecuteMultiOperationResponse {
        throw RPCError(code: .unimplemented, message: "spool serve does not implement ExecuteMultiOperation yet")
    }
}
