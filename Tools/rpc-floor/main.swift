// spool-rpc-floor: the least a gRPC server on NIO + NIOHTTP2 can do for a unary call, to measure
// the CPU floor of one RPC on this stack (Docs/measurements/2026-12-06-serve-rpc-floor.md).
//
// It answers every call on the event loop, synchronously, with the bytes of the
// GetSystemInfoResponse that `spool serve` sends (whatever the method): response HEADERS
// (`:status: 200`, `content-type: application/grpc`), one DATA frame with the length-prefixed
// message, and trailers `grpc-status: 0`. It does not read the request (GetSystemInfo's is
// empty), inflate gzip, check deadlines, metadata or sizes: the floor, not a server.
//
//   spool-rpc-floor [--port 0] [--threads N] [--mode streams|hop|frames]
//
// `streams` (default): NIOHTTP2's multiplexer gives each call a child stream channel, as a real
// server would (flow control per stream). `frames`: one handler sees every frame of the
// connection, no stream channels, and returns the connection's flow-control window itself.
// `hop`: `streams` with one round trip through Swift's cooperative pool per call (a task that
// hops back to the event loop), where a server would await the engine.
// Prints `listening on 127.0.0.1:PORT` once bound, then serves until killed.
// Not a product; nothing depends on it.

#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix

/// GetSystemInfoResponse{server_version: "spool-0.1", capabilities: the seven Spool advertises},
/// as `spool serve` encodes it, behind gRPC's 5-byte prefix (not compressed, 27 bytes).
let responseMessage: ByteBuffer = {
    let message: [UInt8] = [
        0x0a, 0x09, 0x73, 0x70, 0x6f, 0x6f, 0x6c, 0x2d, 0x30, 0x2e, 0x31, 0x12, 0x0e, 0x08, 0x01, 0x10,
        0x01, 0x18, 0x01, 0x28, 0x01, 0x38, 0x01, 0x40, 0x01, 0x48, 0x01,
    ]
    var buffer = ByteBufferAllocator().buffer(capacity: 5 + message.count)
    buffer.writeInteger(UInt8(0))
    buffer.writeInteger(UInt32(message.count))
    buffer.writeBytes(message)
    return buffer
}()
let responseHeaders: HPACKHeaders = [":status": "200", "content-type": "application/grpc"]
let responseTrailers: HPACKHeaders = ["grpc-status": "0"]

/// Whether `payload` is the request's last frame (a unary call is answered once it arrives).
func requestEnded(_ payload: HTTP2Frame.FramePayload) -> Bool {
    switch payload {
    case .headers(let headers): headers.endStream
    case .data(let body): body.endStream
    default: false
    }
}

/// One call's stream channel: answers when the request's last frame arrives.
final class UnaryStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard requestEnded(unwrapInboundIn(data)) else { return }
        context.write(wrapOutboundOut(.headers(.init(headers: responseHeaders))), promise: nil)
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(responseMessage)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: responseTrailers, endStream: true))), promise: nil)
    }
}

/// ``UnaryStreamHandler`` with one round trip through Swift's cooperative pool per call: a task
/// (where a server would call the engine's async API) that hops back to the event loop to answer.
final class HopStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard requestEnded(unwrapInboundIn(data)) else { return }
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        Task {
            loop.execute {
                let (handler, context) = bound.value
                context.write(handler.wrapOutboundOut(.headers(.init(headers: responseHeaders))), promise: nil)
                context.write(handler.wrapOutboundOut(.data(.init(data: .byteBuffer(responseMessage)))), promise: nil)
                context.writeAndFlush(handler.wrapOutboundOut(.headers(.init(headers: responseTrailers, endStream: true))), promise: nil)
            }
        }
    }
}

/// Every frame of one connection, no stream channels: answers each stream whose request
/// ended, returns the connection window every 16 KiB of request bodies, flushes once per read.
final class UnaryFrameHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private var consumed = 0
    private var pending = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        let ended: Bool
        switch frame.payload {
        case .headers(let headers): ended = headers.endStream
        case .data(let body):
            ended = body.endStream
            if case .byteBuffer(let bytes) = body.data { consumed += bytes.readableBytes }
            consumed += body.paddingBytes ?? 0
            if consumed >= 16384 {
                context.write(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: consumed))), promise: nil)
                consumed = 0
                pending = true
            }
        default: ended = false
        }
        guard ended else { return }
        let stream = frame.streamID
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: responseHeaders)))), promise: nil)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .data(.init(data: .byteBuffer(responseMessage))))), promise: nil)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(.init(headers: responseTrailers, endStream: true)))), promise: nil)
        pending = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if pending {
            pending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }
}

var port = 0
var threads = System.coreCount
var mode = "streams"
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--port": port = Int(arguments.popFirst() ?? "") ?? -1
    case "--threads": threads = Int(arguments.popFirst() ?? "") ?? -1
    case "--mode":
        mode = arguments.popFirst() ?? ""
        if !["streams", "hop", "frames"].contains(mode) { port = -1 }
    default: port = -1
    }
    if port < 0 || threads < 1 {
        print("usage: spool-rpc-floor [--port N] [--threads N] [--mode streams|hop|frames]")
        exit(2)
    }
}

let settings = nioDefaultSettings + [HTTP2Setting(parameter: .maxConcurrentStreams, value: 1000)]
let chosenMode = mode
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            if chosenMode == "frames" {
                try pipeline.addHandler(NIOHTTP2Handler(mode: .server, initialSettings: settings))
                try pipeline.addHandler(UnaryFrameHandler())
            } else {
                var connection = NIOHTTP2Handler.ConnectionConfiguration()
                connection.initialSettings = settings
                _ = try pipeline.configureHTTP2Pipeline(
                    mode: .server, connectionConfiguration: connection, streamConfiguration: .init()
                ) { stream in
                    stream.eventLoop.makeCompletedFuture {
                        let handler: any ChannelHandler = chosenMode == "hop" ? HopStreamHandler() : UnaryStreamHandler()
                        try stream.pipeline.syncOperations.addHandler(handler)
                    }
                }
            }
        }
    }
    .bind(host: "127.0.0.1", port: port).wait()
print("listening on 127.0.0.1:\(channel.localAddress?.port ?? 0), mode \(chosenMode), \(threads) event loop(s)")
fflush(nil)
try channel.closeFuture.wait()
