import GRPCCore

/// Refuses every call that does not carry one of the server's API keys as
/// `authorization: Bearer <key>`, the header Temporal's SDKs send for their `api_key` option.
struct APIKeyCheck: ServerInterceptor {
    /// The keys, as the bytes of the header's value after `Bearer `.
    private let keys: [[UInt8]]

    init(keys: Set<String>) {
        self.keys = keys.map { Array($0.utf8) }
    }

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let presented = request.metadata[stringValues: "authorization"].first { _ in true }
        guard let presented else {
            throw RPCError(code: .unauthenticated, message: "\(context.descriptor.method): no API key: send the header 'authorization: Bearer <key>' (the SDKs' api_key option)")
        }
        guard presented.hasPrefix("Bearer "), accepts(Array(presented.utf8.dropFirst(7))) else {
            throw RPCError(code: .unauthenticated, message: "\(context.descriptor.method): the API key is not one of this server's keys")
        }
        return try await next(request, context)
    }

    /// Whether `key` is one of the keys; compares every key in full, whatever matches, so that
    /// the time taken says nothing about how much of a key was right.
    private func accepts(_ key: [UInt8]) -> Bool {
        var found = false
        for candidate in keys {
            var difference = UInt8(candidate.count == key.count ? 0 : 1)
            for i in 0..<candidate.count { difference |= candidate[i] ^ (i < key.count ? key[i] : 0) }
            found = found || difference == 0
        }
        return found
    }
}
