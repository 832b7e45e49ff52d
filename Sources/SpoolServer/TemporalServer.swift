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

        /// A configuration; the defaults are Temporal's port on loopback.
        public init(host: String = "127.0.0.1", port: Int = 7233, pollTimeout: Duration = .seconds(55)) {
            self.host = host
            self.port = port
            self.pollTimeout = pollTimeout
        }
    }

    /// The engine the server serves; the caller opens it before ``run(onListening:)`` and closes
    /// it after.
    public let engine: SpoolEngine
    /// Where the server listens.
    public let configuration: Configuration

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
        let transport = HTTP2ServerTransport.Posix(
            address: address, transportSecurity: .plaintext,
            config: .defaults { $0.compression.enabledAlgorithms = .all })
        let service = WorkflowService(engine: engine, polls: polls, pollTimeout: configuration.pollTimeout)
        // The unimplemented stubs first: the implemented methods replace theirs.
        let grpcServer = GRPCServer(transport: transport, services: [UnimplementedMethods(), service])
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
