import NIOCore
import NIOHTTP2

/// Drops `grpc-accept-encoding` from the headers that open a call, so the transport sends its
/// responses uncompressed (requests compressed with gzip are still accepted and inflated).
///
/// Why: grpc-swift-nio-transport (2.9.2) makes a response compressor when a call's headers
/// arrive, if the client accepts gzip, which the Rust-core SDKs always do. zlib's deflate state
/// is about 256 KiB allocated and 70 KiB resident per call, made and zeroed for every call,
/// mostly long polls that answer a few hundred bytes; 1,000 waiting polls held 129 MiB. Temporal's
/// clients read uncompressed responses whatever they advertise (gRPC's `grpc-encoding` says what
/// a message is), so the only cost is bandwidth on large histories, which a loopback or LAN
/// server does not feel.
///
/// Installed first in each HTTP/2 stream's pipeline (before the transport's gRPC handler); it
/// removes itself after the first HEADERS frame, so later frames pass no extra handler.
final class ResponseCompressionOff: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload

    static let acceptEncoding = "grpc-accept-encoding"

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .headers(var headers) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        headers.headers.remove(name: Self.acceptEncoding)
        context.fireChannelRead(wrapInboundOut(.headers(headers)))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// The transport's stream callback that installs it.
    @Sendable static func install(on channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ResponseCompressionOff(), position: .first)
        }
    }
}
