#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Dispatch
import Spool
import SpoolConsole
import SpoolLog
import SpoolServer
import SpoolToolSupport

/// `spool serve`: Temporal's WorkflowService over gRPC on a data directory, so Temporal's SDKs
/// and tools run their workers and clients against Spool unmodified.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve Temporal's WorkflowService (gRPC) on a data directory, for Temporal's SDKs and CLI.",
        discussion: """
            Opens the engine on --data (created with mode 0700 if missing; one process at a time) \
            and listens on --listen, loopback by default. Prints one line with the address and the \
            data directory. SIGINT or SIGTERM stops it: no new calls, waiting polls answered empty, \
            calls in flight finished, the engine closed cleanly, within 5 seconds.
            """
    )

    @Option(name: .long, help: "The data directory (created with mode 0700 if missing).")
    var data = "./spool-data"

    @Option(name: .long, help: "The address to listen on, HOST:PORT ([HOST]:PORT for IPv6); port 0 picks a free one.")
    var listen = "127.0.0.1:7233"

    @Option(name: .long, help: "Serve TLS with this certificate chain (PEM, leaf first); needs --tls-key.")
    var tlsCert: String?

    @Option(name: .long, help: "The private key (PEM) of --tls-cert.")
    var tlsKey: String?

    @Option(name: .long, help: "Mutual TLS: clients must present a certificate issued by these CA certificates (PEM); needs --tls-cert.")
    var tlsClientCa: String?

    @Option(name: .long, help: """
        Require an API key: calls must send 'authorization: Bearer <key>' (the SDKs' api_key option) with a key listed \
        in this file, one per line (blank lines and lines starting with # are ignored).
        """)
    var apiKeyFile: String?

    @Option(name: .long, help: "The largest request accepted, in bytes (after decompression); larger ones get RESOURCE_EXHAUSTED.")
    var maxRequestBytes = 4 << 20

    @Option(name: .long, help: "Serve Prometheus metrics at http://HOST:PORT/metrics (off unless given).")
    var metrics: String?

    @Option(name: .long, help: """
        Serve the web console at http://HOST:PORT/ (off unless given; Temporal's UI port is 8233). Keep it on loopback \
        unless you mean otherwise; with --api-key-file it asks for one of the keys once.
        """)
    var ui: String?

    @Option(name: .long, help: "Register this namespace if it is not registered yet (repeatable; `default` always exists).")
    var namespace: [String] = []

    @Option(name: .long, help: "Register a custom search attribute NAME=TYPE (Keyword, Text, Int, Double, Bool, Datetime, KeywordList) in `default` and every --namespace, as Temporal's dev server does (repeatable).")
    var searchAttribute: [String] = []

    /// How long shutdown may take in all, from the signal to the engine closed.
    static let shutdownBudget = Duration.seconds(5)

    /// The --search-attribute values, parsed.
    var searchAttributes: [String: IndexedValueType] {
        get throws {
            var result: [String: IndexedValueType] = [:]
            for spec in searchAttribute {
                let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty,
                      let type = IndexedValueType.allCases.first(where: { $0.description.lowercased() == parts[1].lowercased() }) else {
                    throw ValidationError("--search-attribute \(spec): expected NAME=TYPE, TYPE one of "
                                          + IndexedValueType.allCases.map(\.description).joined(separator: ", "))
                }
                result[parts[0]] = type
            }
            return result
        }
    }

    func validate() throws {
        _ = try searchAttributes
        guard Self.parse(listen: listen) != nil else {
            throw ValidationError("--listen \(listen): expected HOST:PORT, such as 127.0.0.1:7233")
        }
        if let ui, Self.parse(listen: ui) == nil {
            throw ValidationError("--ui \(ui): expected HOST:PORT, such as 127.0.0.1:8233")
        }
        if let metrics, Self.parse(listen: metrics) == nil {
            throw ValidationError("--metrics \(metrics): expected HOST:PORT, such as 127.0.0.1:9090")
        }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if tlsClientCa != nil && tlsCert == nil { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key") }
        for (option, path) in [("--tls-cert", tlsCert), ("--tls-key", tlsKey), ("--tls-client-ca", tlsClientCa), ("--api-key-file", apiKeyFile)] {
            if let path, access(path, R_OK) != 0 {
                throw ValidationError("\(option) \(path): \(String(cString: strerror(errno)))")
            }
        }
        guard (1024...(1 << 30)).contains(maxRequestBytes) else {
            throw ValidationError("--max-request-bytes must be between 1024 and 1073741824 (got \(maxRequestBytes))")
        }
        if let apiKeyFile { _ = try Self.apiKeys(in: apiKeyFile) }
    }

    /// The keys of an API key file in the file's order, none twice: one per line; blank lines and
    /// `#` comments are skipped.
    static func apiKeys(in path: String) throws -> [String] {
        guard let bytes = readWholeFile(path) else {
            throw ValidationError("--api-key-file \(path): \(String(cString: strerror(errno)))")
        }
        var keys: [String] = []
        for (number, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            var text = line[...]
            if text.last == UInt8(ascii: "\r") { text = text.dropLast() }
            while let first = text.first, first == 32 || first == 9 { text = text.dropFirst() }
            while let last = text.last, last == 32 || last == 9 { text = text.dropLast() }
            if text.isEmpty || text.first == UInt8(ascii: "#") { continue }
            guard let key = String(validating: text, as: UTF8.self), key.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
                throw ValidationError("--api-key-file \(path), line \(number + 1): a key must be printable ASCII without spaces")
            }
            if !keys.contains(key) { keys.append(key) }
        }
        if keys.isEmpty { throw ValidationError("--api-key-file \(path): holds no key") }
        return keys
    }

    /// `HOST:PORT` or `[HOST]:PORT` as its parts.
    static func parse(listen: String) -> (host: String, port: Int)? {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    func run() async throws {
        // Bootstrapped before the engine is opened: its instruments bind to the backend at creation.
        let endpoint: MetricsEndpoint?
        if let metrics {
            let (host, port) = Self.parse(listen: metrics)!
            do {
                endpoint = try await MetricsEndpoint.start(host: host, port: port)
            } catch {
                printError("spool serve: --metrics \(metrics): \(error)")
                throw ExitCode(1)
            }
        } else {
            endpoint = nil
        }
        let dataDirectory = DataDirectory(data)
        try dataDirectory.createIfMissing(command: "serve")
        let directory = dataDirectory.path
        let engine: SpoolEngine
        do {
            engine = try SpoolEngine.open(directory: directory)
        } catch {
            printError("spool serve: \(explainOpenFailure(error, directory: dataDirectory))")
            throw ExitCode.unusableDataDirectory
        }
        for name in namespace where (try? engine.describeNamespace(name)) == nil {
            do {
                try engine.registerNamespace(name)
            } catch {
                printError("spool serve: --namespace \(name): \(error.message)")
                try? await engine.close()
                throw error.code == .invalidArgument ? ExitCode.validationFailure : ExitCode.unusableDataDirectory
            }
        }
        if !searchAttribute.isEmpty {
            let attributes = try searchAttributes
            for name in [defaultNamespace] + namespace {
                do {
                    try engine.addSearchAttributes(namespace: name, attributes)
                } catch {
                    printError("spool serve: --search-attribute in namespace \(name): \(error.message)")
                    try? await engine.close()
                    throw error.code == .invalidArgument || error.code == .alreadyExists ? ExitCode.validationFailure : ExitCode.unusableDataDirectory
                }
            }
        }
        let (host, port) = Self.parse(listen: listen)!
        let tls = tlsCert.map { TemporalServer.TLS(certificateChainPath: $0, privateKeyPath: tlsKey!, clientCAPath: tlsClientCa) }
        let keys = Set(try apiKeyFile.map(Self.apiKeys(in:)) ?? [])
        let server = TemporalServer(engine: engine, configuration: .init(host: host, port: port, tls: tls, apiKeys: keys,
                                                                          maxRequestBytes: maxRequestBytes))
        let console = ui.map { ui in
            let (uiHost, uiPort) = Self.parse(listen: ui)!
            return Console(engine: engine, configuration: .init(host: uiHost, port: uiPort, apiKeys: keys))
        }

        // SIGINT/SIGTERM: stop accepting and answer polls empty at once; if calls in flight
        // have not finished within most of the budget, stop serving anyway.
        let signals = [SIGINT, SIGTERM].map { signal -> any DispatchSourceSignal in
            Glibc.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal)
            source.setEventHandler { server.beginShutdown() }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }

        var failure: (any Error)?
        do {
            try await withThrowingTaskGroup { group in
                group.addTask {
                    try await server.run { address in
                        let security = (tls == nil ? "" : tlsClientCa == nil ? ", TLS" : ", mutual TLS")
                            + (keys.isEmpty ? "" : ", API keys required")
                            + (endpoint.map { ", metrics on http://\($0.address)/metrics" } ?? "")
                        print("spool serve: listening on \(address), data directory \(directory)\(security)")
                        fflush(nil)  // every output stream: the line must reach a pipe now
                    }
                }
                if let console {
                    group.addTask {
                        do {
                            try await console.run { address in
                                print("spool serve: web console on http://\(address)/")
                                fflush(nil)
                            }
                        } catch is CancellationError {
                        } catch {
                            throw ConsoleFailure(description: "--ui \(ui!): \(error)")
                        }
                    }
                }
                // Wakes when the server stops by itself, or shortly after a signal.
                group.addTask {
                    while !server.isShuttingDown { try await Task.sleep(for: .milliseconds(50)) }
                    try await Task.sleep(for: Self.shutdownBudget - .seconds(1))
                    throw CancellationError()
                }
                do {
                    try await group.next()
                } catch is CancellationError {
                    // The grace period is over: calls still in flight are cut off.
                }
                group.cancelAll()
            }
        } catch {
            failure = error
        }
        await endpoint?.stop()
        do {
            try await engine.close()
        } catch {
            printError("spool serve: closing \(directory): \(error)")
            throw ExitCode(2)
        }
        if let failure = failure as? ConsoleFailure {
            printError("spool serve: \(failure)")
            throw ExitCode(1)
        }
        if let failure {
            printError("spool serve: \(listen): \(failure)")
            throw ExitCode(1)
        }
    }
}

/// The console could not serve (its address is taken, say): `spool serve` stops with this.
struct ConsoleFailure: Error, CustomStringConvertible {
    var description: String
}
