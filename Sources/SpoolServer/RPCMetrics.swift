import GRPCCore
import Metrics

/// Counts every call by method, its failures by method and gRPC status code, and times it:
/// `spool_rpc_requests_total{method}`, `spool_rpc_errors_total{method,code}`,
/// `spool_rpc_duration_seconds{method}` (long polls included: their time is mostly waiting).
struct RPCMetrics: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.method
        Counter(label: "spool_rpc_requests_total", dimensions: [("method", method)]).increment()
        let started = ContinuousClock.now
        defer {
            Metrics.Timer(label: "spool_rpc_duration_seconds", dimensions: [("method", method)])
                .recordNanoseconds((ContinuousClock.now - started).nanosecondsClamped)
        }
        do {
            let response = try await next(request, context)
            if case .failure(let error) = response.accepted {
                Counter(label: "spool_rpc_errors_total", dimensions: [("method", method), ("code", "\(error.code)")]).increment()
            }
            return response
        } catch {
            let code = (error as? RPCError)?.code ?? (error as? any RPCErrorConvertible)?.rpcErrorCode ?? .unknown
            Counter(label: "spool_rpc_errors_total", dimensions: [("method", method), ("code", "\(code)")]).increment()
            throw error
        }
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to Int64.
    fileprivate var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : product &+ attoseconds / 1_000_000_000
    }
}
