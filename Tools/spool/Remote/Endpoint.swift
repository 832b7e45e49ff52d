import ArgumentParser
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SpoolLog
import Spool
import SpoolServerProtos
import SpoolToolSupport

/// `--data DIR` or `--address HOST:PORT`: where a workflow or task-queue command works. A data
/// directory is opened by the command itself; while `spool serve` holds it (the directory's
/// lock), the same command goes to the server through Temporal's WorkflowService instead.
struct EndpointOptions: ParsableArguments {
    @Option(name: .long, help: "The data directory: the engine's history in DIR/history. Not while a server has it open: use --address.")
    var data: String?

    @Option(name: .long, help: "A running `spool serve` (or any Temporal frontend), host:port, instead of --data.")
    var address: String?

    @Option(name: .long, help: "With --address: a file of API keys (as `spool serve --api-key-file` reads it); the first is sent as `authorization: Bearer KEY`.")
    var apiKeyFile: String?

    @Option(name: .long, help: "With --address: connect with TLS, trusting the CA certificates in this PEM file.")
    var tlsCa: String?

    func validate() throws {
        switch (data, address) {
        case (nil, nil): throw ValidationError("give --data DIR (a data directory) or --address HOST:PORT (a running spool serve)")
        case (_?, _?): throw ValidationError("--data and --address name two places: give one")
        case (_?, nil) where apiKeyFile != nil || tlsCa != nil:
            throw ValidationError("--api-key-file and --tls-ca go with --address")
        case (nil, let address?): _ = try RemoteServer.target(address)
        default: break
        }
    }

    /// The directory `--data` names; only when there is no `--address`.
    var directory: DataDirectory { DataDirectory(data ?? "") }

    /// The server `--address` names, or nil to open `--data`.
    func remote(command: String) throws -> RemoteServer? {
        guard let address else { return nil }
        // The server's key file works here too: its first key is sent.
        let apiKey = try apiKeyFile.map { try ServeCommand.apiKeys(in: $0)[0] }
        return RemoteServer(address: address, apiKey: apiKey, tlsCA: tlsCa, command: command)
    }
}

/// One command's calls to a server's WorkflowService, with the command's error reporting: a
/// call the server rejects (not found, already started, bad argument) exits 1, a server that
/// cannot be reached or refuses the caller exits 2, as a data directory that cannot be used.
struct RemoteServer {
    let address: String
    let apiKey: String?
    let tlsCA: String?
    let command: String

    /// How long one call may take, connecting included.
    static let callTimeout = Duration.seconds(15)

    typealias Client = Temporal_Api_Workflowservice_V1_WorkflowService.Client<HTTP2ClientTransport.Posix>

    /// The resolvable target of `host:port` (`[v6]:port` for IPv6); throws a usage error naming the problem.
    static func target(_ address: String) throws -> any ResolvableTarget {
        let host: Substring, portText: Substring
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            host = address[address.index(after: address.startIndex)..<close]
            let rest = address[address.index(after: close)...]
            guard rest.hasPrefix(":") else { throw ValidationError("bad --address '\(address)': expected [IPv6]:PORT") }
            portText = rest.dropFirst()
        } else {
            guard let colon = address.lastIndex(of: ":") else {
                throw ValidationError("bad --address '\(address)': expected HOST:PORT, for example 127.0.0.1:7233")
            }
            host = address[..<colon]
            portText = address[address.index(after: colon)...]
        }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ValidationError("bad --address '\(address)': the port must be a number from 1 to 65535")
        }
        guard !host.isEmpty else { throw ValidationError("bad --address '\(address)': no host") }
        if address.hasPrefix("[") { return .ipv6(address: String(host), port: port) }
        if host.allSatisfy({ $0.isNumber || $0 == "." }) { return .ipv4(address: String(host), port: port) }
        return .dns(host: String(host), port: port)
    }

    /// Runs `body` with a client connected to the server; reports the call's errors and exits
    /// with the command's status.
    func call<Result: Sendable>(rejectInvalidArgumentAsUsage: Bool = false,
                                _ body: (Client, CallOptions, Metadata) async throws -> Result) async throws -> Result {
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let tlsCA {
            security = .tls { $0.trustRoots = .certificates([.file(path: tlsCA, format: .pem)]) }
        } else {
            security = .plaintext
        }
        var metadata = Metadata()
        if let apiKey { metadata.addString("Bearer \(apiKey)", forKey: "authorization") }
        var options = CallOptions.defaults
        options.timeout = Self.callTimeout
        do {
            let transport = try HTTP2ClientTransport.Posix(target: try Self.target(address), transportSecurity: security)
            return try await withGRPCClient(transport: transport) { client in
                try await body(Client(wrapping: client), options, metadata)
            }
        } catch let error as RPCError {
            switch error.code {
            case .notFound, .alreadyExists, .failedPrecondition, .outOfRange:
                printError("spool \(command): \(address): \(error.message)")
                throw WorkflowExit.rejected
            case .invalidArgument:
                printError("spool \(command): \(address): \(error.message)")
                throw rejectInvalidArgumentAsUsage ? ExitCode.validationFailure : WorkflowExit.rejected
            case .unavailable, .deadlineExceeded:
                printError("spool \(command): cannot reach a server at \(address): \(error.message)")
                throw WorkflowExit.unusableDirectory
            default:
                printError("spool \(command): \(address): \(error.code): \(error.message)")
                throw WorkflowExit.unusableDirectory
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("spool \(command): cannot reach a server at \(address): \(error)")
            throw WorkflowExit.unusableDirectory
        }
    }
}
