import GRPCCore
import GRPCProtobuf
import Spool
import SpoolServerProtos
import SwiftProtobuf

extension SpoolError {
    /// The gRPC status Temporal's server gives for the same failure, with Temporal's error
    /// details (temporal.api.errordetails.v1, Any-packed in grpc-status-details-bin), so SDKs
    /// react as they do against Temporal: retry on UNAVAILABLE, raise their typed exception
    /// (Python's `WorkflowAlreadyStartedError`) on ALREADY_EXISTS, give up on NOT_FOUND.
    var rpcError: GoogleRPCStatus {
        var details: [any SwiftProtobuf.Message] = []
        let code: RPCError.Code
        switch self.code {
        case .invalidArgument, .invalidTaskToken, .invalidPageToken:
            code = .invalidArgument
        case .notFound, .staleTaskToken:
            code = .notFound
            details.append(Temporal_Api_Errordetails_V1_NotFoundFailure())
        case .workflowExecutionAlreadyStarted:
            code = .alreadyExists
            var failure = Temporal_Api_Errordetails_V1_WorkflowExecutionAlreadyStartedFailure()
            failure.runID = runID ?? ""
            details.append(failure)
        case .namespaceNotFound:
            code = .notFound
            var failure = Temporal_Api_Errordetails_V1_NamespaceNotFoundFailure()
            failure.namespace = namespace ?? ""
            details.append(failure)
        case .namespaceAlreadyExists:
            code = .alreadyExists
            details.append(Temporal_Api_Errordetails_V1_NamespaceAlreadyExistsFailure())
        case .alreadyExists:
            code = .alreadyExists
        case .closed:
            code = .unavailable
        case .queryFailed:
            // Temporal's QueryFailed: the SDKs raise their query-failed error (Python's
            // WorkflowQueryFailedError) on INVALID_ARGUMENT with these details.
            code = .invalidArgument
            var queryFailure = Temporal_Api_Errordetails_V1_QueryFailedFailure()
            if let failure { queryFailure.failure = failure.proto }
            details.append(queryFailure)
        case .queryTimedOut:
            code = .deadlineExceeded
        case .workflowNotReady:
            code = .failedPrecondition
            details.append(Temporal_Api_Errordetails_V1_WorkflowNotReadyFailure())
        default:
            code = .internalError
        }
        // A failed query's message is the worker's, as Temporal passes it on (the SDKs show it).
        return GoogleRPCStatus(code: code, message: self.code == .queryFailed ? message : description,
                               details: details.compactMap { try? ErrorDetails.any(Google_Protobuf_Any(message: $0)) })
    }
}

extension TranslationError {
    var rpcError: RPCError { RPCError(code: .invalidArgument, message: message) }
}

/// Runs an engine call, turning its errors into Temporal's gRPC statuses.
func engineCall<T>(_ body: () async throws(SpoolError) -> T) async throws -> T {
    do { return try await body() } catch { throw error.rpcError }
}
