import Dispatch
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Spool

extension Console {
    /// The largest form the console reads (a signal's input included).
    static let maximumFormBytes = 1 << 20

    /// Serves the console until the calling task is cancelled, and samples the task queues'
    /// rates meanwhile. `onListening` gets `HOST:PORT` once the socket is bound.
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws {
        var logger = Logger(label: "spool.console")
        logger.logLevel = .warning
        let app = Application(
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in
                try await self.respond(request)
            },
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in
                let address = channel.localAddress
                let host = address?.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? self.configuration.host
                onListening("\(host):\(address?.port ?? self.configuration.port)")
            },
            logger: logger
        )
        // A closed-run table written by an older Spool has no visibility section: the first List or
        // Count after open indexes its runs (seconds on a store of a million runs). Do it now, on a
        // thread of its own, rather than in the first page's request (it costs nothing otherwise).
        let engine = self.engine
        DispatchQueue.global(qos: .utility).async { _ = try? engine.countWorkflowExecutions(query: "") }
        try await withThrowingTaskGroup { group in
            group.addTask { await self.rates.run(self.engine) }
            group.addTask { try await app.run() }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    func respond(_ request: Request) async throws -> Response {
        let started = ContinuousClock.now
        var request = request
        let method: ConsoleRequest.Method = switch request.method {
        case .get: .get
        case .head: .head
        case .post: .post
        default: .other
        }
        let rawPath = request.uri.path
        var segments: [String] = []
        var malformed = false
        for piece in rawPath.split(separator: "/", omittingEmptySubsequences: true) {
            guard let decoded = percentDecode(piece) else { malformed = true; break }
            segments.append(decoded)
        }
        let query: [(String, String)]? = request.uri.query.map { parseFormEncoded($0) } ?? []
        var answer: ConsoleResponse
        if malformed || query == nil {
            answer = .page(errorPage(.badRequest("The address is not well formed (a bad % escape, or bytes that are not UTF-8)."),
                                     layout: Layout(namespace: defaultNamespace, section: .none, csrf: "", signedIn: false)), status: 400)
            Self.addSecurityHeaders(&answer)
        } else {
            var form: [(String, String)] = []
            if method == .post {
                let body = try await request.collectBody(upTo: Self.maximumFormBytes)
                form = parseFormEncoded(String(buffer: body)) ?? []
            }
            var cookies: [String: String] = [:]
            for header in request.headers[values: .cookie] {
                for part in header.split(separator: ";") {
                    let pair = part.split(separator: "=", maxSplits: 1)
                    guard pair.count == 2 else { continue }
                    cookies[pair[0].trimmingCharacters(in: .whitespaces)] = String(pair[1]).trimmingCharacters(in: .whitespaces)
                }
            }
            answer = await handle(ConsoleRequest(method: method, segments: segments, rawPath: rawPath, query: query ?? [], form: form,
                                                 cookies: cookies, origin: request.headers[.origin], host: request.head.authority))
        }
        let elapsed = ContinuousClock.now - started
        var headers = HTTPFields()
        headers[.contentType] = answer.contentType
        for (name, value) in answer.headers {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        headers.append(HTTPField(name: HTTPField.Name("Server-Timing")!, value: "render;dur=\(String(format: "%.1f", milliseconds))"))
        let body = method == .head ? ByteBuffer() : ByteBuffer(bytes: answer.body)
        return Response(status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: body))
    }
}
