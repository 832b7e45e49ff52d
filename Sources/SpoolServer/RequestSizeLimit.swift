import GRPCCore
import SwiftProtobuf

/// Refuses a request message larger than the server's limit with RESOURCE_EXHAUSTED, as
/// Temporal's server does, before the method sees it.
///
/// The transport has a limit of its own, but it answers a message over it by resetting the
/// HTTP/2 stream, which the SDKs see as CANCELLED and retry. So the transport's limit is set
/// well above this one (``transportLimit(for:)``) and this interceptor gives the status: it
/// measures each message as the protobuf encoding of what was decoded, the size Temporal's
/// server compares (after decompression).
struct RequestSizeLimit: ServerInterceptor {
    let maximumBytes: Int

    /// The transport's own limit for a server whose requests are limited to `maximumBytes`: a
    /// request between the two gets RESOURCE_EXHAUSTED from this interceptor, a larger one (or
    /// a compressed one that would inflate past it) a stream reset from the transport.
    static func transportLimit(for maximumBytes: Int) -> Int {
        let (scaled, overflow) = maximumBytes.multipliedReportingOverflow(by: 4)
        return overflow ? Int(Int32.max) : min(Int(Int32.max), max(scaled, maximumBytes + (16 << 20)))
    }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let maximumBytes = self.maximumBytes
        let method = context.descriptor.method
        var checked = request
        checked.messages = RPCAsyncSequence(wrapping: request.messages.map { message in
            if let message = message as? any SwiftProtobuf.Message {
                let size = (try message.serializedBytes() as [UInt8]).count
                if size > maximumBytes {
                    throw RPCError(code: .resourceExhausted, message: "\(method): the request is \(size) bytes, over this server's limit "
                                   + "of \(maximumBytes) bytes (spool serve --max-request-bytes)")
                }
            }
            return message
        })
        return try await next(checked, context)
    }
}
