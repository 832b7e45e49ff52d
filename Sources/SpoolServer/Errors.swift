import GRPCCore
import Spool

extension SpoolError {
    /// The gRPC status Temporal's server gives for the same failure, so SDKs react as they do
    /// against Temporal (retry on UNAVAILABLE, give up on NOT_FOUND, raise on ALREADY_EXISTS).
    ///
    /// TODO(issue 22, later round): attach temporal.api.errordetails.v1 details
    /// (WorkflowExecutionAlreadyStartedFailure, NotFoundFailure, …) in grpc-status-details-bin,
    /// so SDKs raise their typed exceptions.
    var rpcError: RPCError {
        let code: RPCError.Code
        switch self.code {
        case .invalidArgument, .invalidTaskToken, .invalidPageToken: code = .invalidArgument
        case .notFound, .staleTaskToken: code = .notFound
        case .workflowExecutionAlreadyStarted: code = .alreadyExists
        case .closed: code = .unavailable
        default: code = .internalError
        }
        return RPCError(code: code, message: description)
    }
}

extension TranslationError {
    var rpcError: RPCError { RPCError(code: .invalidArgument, message: message) }
}

/// Runs an engine call, turning its errors into Temporal's gRPC statuses.
func engineCall<T>(_ body: () async throws(SpoolError) -> T) async throws(RPCError) -> T {
    do { return try await body() } catch { throw error.rpcError }
}
