import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Spool
import Synchronization

/// The version `spool serve` reports in GetSystemInfo.
let spoolServerVersion = "spool-0.1"

/// Temporal's WorkflowService over gRPC for a ``SpoolEngine``: unmodified Temporal SDKs and
/// tools connect to it as to a Temporal server.
///
/// The server translates between Temporal's protocol and the engine's public API; what a call
/// means is the engine's business. Requests may be gzip- or deflate-compressed (the Rust-core
/// SDKs send gzip). Methods Spool does not implement answer UNIMPLEMENTED, naming the method.
///
/// ```swift
/// let server = TemporalServer(engine: engine, configuration: .init(host: "127.0.0.1", port: 7233))
/// try await server.run { address in print("listening on \(address)") }
/// ```
public final class TemporalServer: Sendable {
    /// Where the server listens and how long idle polls wait.
    public struct Configuration: Sendable {
        /// The address to bind: an IPv4 or IPv6 address, `127.0.0.1` (loopback) by default.
        public var host: String
        /// The TCP port; 0 picks a free one (``TemporalServer/run(onListening:)`` reports it).
        public var port: Int
        /// How long a task poll or history long poll waits before answering empty. Temporal
        /// answers after about 60 s; the SDKs give up after 70 s.
        public var pollTimeout: Duration

        /// TLS for every connection; nil serves plaintext.
        public var tls: TLS?
        /// The API keys a call may present as `authorization: Bearer <key>` (what the SDKs'
        /// `api_key` option sends); a call without one of them fails with UNAUTHENTICATED.
        /// Empty: no key is asked for.
        public var apiKeys: Set<String>
        /// The largest request message accepted, in bytes (after decompression); a larger one
        /// fails with RESOURCE_EXHAUSTED before the engine sees it. Default 4 MiB, Temporal's.
        public var maxRequestBytes: Int

        /// A configuration; the defaults are Temporal's port on loopback, plaintext, no API
        /// keys, Temporal's 4 MiB request limit.
        public init(host: String = "127.0.0.1", port: Int = 7233, pollTimeout: Duration = .seconds(55),
                    tls: TLS? = nil, apiKeys: Set<String> = [], maxRequestBytes: Int = 4 << 20) {
            self.host = host
            self.port = port
            self.pollTimeout = pollTimeout
            self.tls = tls
            self.apiKeys = apiKeys
            self.maxRequestBytes = maxRequestBytes
        }
    }

    /// The server's TLS identity, from PEM files, and optionally the CA its clients'
    /// certificates must chain to (mutual TLS).
    public struct TLS: Sendable {
        /// The server's certificate chain, leaf first (PEM).
        public var certificateChainPath: String
        /// The leaf certificate's private key (PEM).
        public var privateKeyPath: String
        /// With mutual TLS, the CA certificates (PEM) a client's certificate must chain to; a
        /// client without such a certificate cannot connect. Nil: clients are not asked for one.
        public var clientCAPath: String?

        /// A TLS identity; `clientCAPath` turns on mutual TLS.
        public init(certificateChainPath: String, privateKeyPath: String, clientCAPath: String? = nil) {
            self.certificateChainPath = certificateChainPath
            self.privateKeyPath = privateKeyPath
            self.clientCAPath = clientCAPath
        }
    }

    /// The engine the server serves; the caller opens it before ``run(onListening:)`` and closes
    /// it after.
    public let engine: SpoolEngine
    /// Where the server listens.
    public let configuration: Configuration

    /// The calls one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); the
    /// SDKs queue further calls until one finishes. Long polls hold a stream for up to
    /// ``Configuration/pollTimeout``, so this leaves room for many pollers besides the calls.
    static let maxConcurrentStreamsPerConnection = 1000

    private let polls = PollGate()
    private let server = Mutex<GRPCServer<HTTP2ServerTransport.Posix>?>(nil)
    private let shutdownRequested = Atomic<Bool>(false)

    /// A server for `engine`; nothing is bound until ``run(onListening:)``.
    public init(engine: SpoolEngine, configuration: Configuration = Configuration()) {
        self.engine = engine
        self.configuration = configuration
    }

    /// Binds the address, calls `onListening` with the bound `host:port`, and serves until
    /// ``beginShutdown()`` has been called and the calls in flight have finished.
    /// - Throws: when the address cannot be bound, or the transport fails.
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws {
        let address: GRPCNIOTransportCore.SocketAddress = configuration.host.contains(":")
            ? .ipv6(host: configuration.host, port: configuration.port)
            : .ipv4(host: configuration.host, port: configuration.port)
        let maxRequestBytes = configuration.maxRequestBytes
        let transport = HTTP2ServerTransport.Posix(
            address: address, transportSecurity: transportSecurity,
            config: .defaults {
                $0.compression.enabledAlgorithms = .all
                $0.rpc.maxRequestPayloadSize = RequestSizeLimit.transportLimit(for: maxRequestBytes)
                // The Rust-core SDKs ping every 30 s to keep their connection alive, and hyper's
                // adaptive flow control pings to measure bandwidth. The transport's default policy
                // (gRFC A8: a ping less than 5 minutes after the last one is a strike, with calls
                // open or not; three strikes close the connection with "too_many_pings") is
                // stricter than Temporal's frontend, which permits pings without calls and 10 s
                // apart. One second apart is allowed here, and NIOHTTP2 still refuses more than
                // 200 control frames in 30 s. (The broken connections seen under load were the
                // stream limit below, not pings.)
                $0.connection.keepalive.clientBehavior = .init(minPingIntervalWithoutCalls: .seconds(1), allowWithoutCalls: true)
                // Advertise the concurrent-stream limit. Without SETTINGS_MAX_CONCURRENT_STREAMS the
                // client assumes no limit, but NIOHTTP2 (1.46) still enforces an unadvertised 100 and
                // answers the 101st open stream with GOAWAY PROTOCOL_ERROR, dropping every call on the
                // connection. Advertised, the SDKs' h2 client queues calls beyond the limit instead.
                $0.http2.maxConcurrentStreams = TemporalServer.maxConcurrentStreamsPerConnection
                // Responses go uncompressed: a compressor per call costs more than it saves here.
                $0.channelDebuggingCallbacks.onAcceptHTTP2Stream = ResponseCompressionOff.install(on:)
            })
        let service = WorkflowService(engine: engine, polls: polls, pollTimeout: configuration.pollTimeout)
        // Metrics see every call; then the key: a caller without one learns nothing else, not even a size limit.
        var interceptors: [any ServerInterceptor] = [RPCMetrics()]
        if !configuration.apiKeys.isEmpty { interceptors.append(APIKeyCheck(keys: configuration.apiKeys)) }
        interceptors.append(RequestSizeLimit(maximumBytes: maxRequestBytes))
        // The unimplemented stubs first: the implemented methods replace theirs.
        let grpcServer = GRPCServer(transport: transport, services: [UnimplementedMethods(), service, OperatorService(engine: engine)], interceptors: interceptors)
        server.withLock { $0 = grpcServer }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await grpcServer.serve() }
            let bound = try await transport.listeningAddress
            if shutdownRequested.load(ordering: .acquiring) { grpcServer.beginGracefulShutdown() }
            if let ipv4 = bound.ipv4 {
                onListening("\(ipv4.host):\(ipv4.port)")
            } else if let ipv6 = bound.ipv6 {
                onListening("[\(ipv6.host)]:\(ipv6.port)")
            } else {
                onListening("\(bound)")
            }
        }
    }

    private var transportSecurity: HTTP2ServerTransport.Posix.TransportSecurity {
        guard let tls = configuration.tls else { return .plaintext }
        let chain: [TLSConfig.CertificateSource] = [.file(path: tls.certificateChainPath, format: .pem)]
        let key: TLSConfig.PrivateKeySource = .file(path: tls.privateKeyPath, format: .pem)
        guard let clientCA = tls.clientCAPath else { return .tls(certificateChain: chain, privateKey: key) }
        return .mTLS(certificateChain: chain, privateKey: key) { config in
            config.trustRoots = .certificates([.file(path: clientCA, format: .pem)])
            // Clients connect by address, not by a name in their certificate.
            config.clientCertificateVerification = .noHostnameVerification
        }
    }

    /// Whether ``beginShutdown()`` was called.
    public var isShuttingDown: Bool { shutdownRequested.load(ordering: .acquiring) }

    /// Stops accepting calls, answers every waiting poll empty, and lets the calls in flight
    /// finish; ``run(onListening:)`` returns when they have. Safe to call more than once, and
    /// from any thread (a signal handler's queue, say).
    public func beginShutdown() {
        shutdownRequested.store(true, ordering: .releasing)
        polls.close()
        server.withLock { $0 }?.beginGracefulShutdown()
    }
}
