import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// Prometheus text exposition of the process's swift-metrics over HTTP: `GET /metrics` answers
/// every metric the engine and the server record (RPC counts, errors and latency; log appends;
/// tasks dispatched; workflows started and closed; timers; checkpoints). Anything else is 404.
///
/// ```swift
/// let metrics = try await MetricsEndpoint.start(host: "127.0.0.1", port: 9090)  // bootstraps swift-metrics
/// print(metrics.address)
/// ```
public final class MetricsEndpoint: Sendable {
    /// The bound `host:port`.
    public let address: String
    private let channel: any Channel

    private init(address: String, channel: any Channel) {
        self.address = address
        self.channel = channel
    }

    /// Bootstraps swift-metrics with a Prometheus registry (once per process: a second call
    /// fails) and serves it on `host:port` (port 0 picks a free one).
    /// - Throws: when the address cannot be bound.
    public static func start(host: String, port: Int) async throws -> MetricsEndpoint {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // From a tenth of a millisecond (an fdatasync on fast disks) to ten seconds (a long poll is not timed).
        factory.defaultDurationHistogramBuckets = [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
                                                   .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                                   .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                                   .seconds(1), .seconds(2.5), .seconds(10)]
        MetricsSystem.bootstrap(factory)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(ExpositionHandler(registry: registry))
                }
            }
            .bind(host: host, port: port).get()
        let bound = channel.localAddress
        let shown = bound.map { address -> String in
            let ip = address.ipAddress ?? host
            return (ip.contains(":") ? "[\(ip)]" : ip) + ":\(address.port ?? port)"
        } ?? "\(host):\(port)"
        return MetricsEndpoint(address: shown, channel: channel)
    }

    /// Stops listening.
    public func stop() async {
        try? await channel.close().get()
    }
}

/// Answers `GET /metrics` with the registry's text exposition.
private final class ExpositionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private var request: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            let found = head.method == .GET && (head.uri == "/metrics" || head.uri.hasPrefix("/metrics?"))
            var body = [UInt8]()
            if found { registry.emit(into: &body) } else { body = Array("not found: metrics are at /metrics\n".utf8) }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8")
            headers.add(name: "Content-Length", value: String(body.count))
            let keepAlive = head.isKeepAlive
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: found ? .ok : .notFound, headers: headers))),
                          promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}
