import Foundation
import Spool

/// The web console of `spool serve --ui`: server-rendered pages over a ``SpoolEngine`` (the same
/// instance the gRPC server uses, read directly, not through gRPC), served by ``run(onListening:)``.
///
/// Pages: the workflows of a namespace (with the visibility query language), one run (summary,
/// pending work, timeline, history; signal, cancel, terminate), the task queues of a namespace
/// and one queue (pause, resume, rate), the namespaces and the store. See Docs/console.md.
public final class Console: Sendable {
    /// Where and how the console listens.
    public struct Configuration: Sendable {
        /// The host to bind (loopback unless the operator says otherwise).
        public var host: String
        /// The port; 0 picks a free one.
        public var port: Int
        /// The API keys a user must enter once (kept as a session cookie); empty: no login.
        public var apiKeys: Set<String>
        /// How often the task queues' add and dispatch counters are sampled for the rate charts.
        public var sampleInterval: Duration

        /// A console on `host:port`, open to anyone who reaches it unless `apiKeys` is not empty.
        public init(host: String = "127.0.0.1", port: Int = 8233, apiKeys: Set<String> = [], sampleInterval: Duration = .seconds(5)) {
            self.host = host
            self.port = port
            self.apiKeys = apiKeys
            self.sampleInterval = sampleInterval
        }
    }

    let engine: SpoolEngine
    /// The settings it was made with.
    public let configuration: Configuration
    let auth: ConsoleAuth
    let rates: RateHistory
    let assets: [String: (contentType: String, bytes: [UInt8])]

    /// A console over `engine`. Nothing listens until ``run(onListening:)``.
    public init(engine: SpoolEngine, configuration: Configuration) {
        self.engine = engine
        self.configuration = configuration
        auth = ConsoleAuth(apiKeys: configuration.apiKeys)
        rates = RateHistory(interval: configuration.sampleInterval)
        var assets: [String: (String, [UInt8])] = [:]
        for (name, type) in [("console.css", "text/css; charset=utf-8"), ("console.js", "text/javascript; charset=utf-8")] {
            if let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Assets"),
               let data = try? Data(contentsOf: url) {
                assets[name] = (type, Array(data))
            }
        }
        self.assets = assets
    }

    /// Answers one request (every page, form and asset goes through here).
    func handle(_ request: ConsoleRequest) async -> ConsoleResponse {
        var newCSRF: String? = nil
        var csrf = request.cookies[ConsoleAuth.csrfCookie] ?? ""
        if csrf.isEmpty {
            csrf = ConsoleAuth.token()
            newCSRF = csrf
        }
        let namespace = request.segments.count >= 2 && request.segments[0] == "namespaces" ? request.segments[1] : defaultNamespace
        let layout = Layout(namespace: namespace, section: Self.section(request.segments), csrf: csrf, signedIn: auth.required && auth.isSignedIn(request))
        var response: ConsoleResponse
        do {
            response = try await route(request, layout: layout)
        } catch let error as PageError {
            response = .page(errorPage(error, layout: layout), status: error.status)
        } catch let error as SpoolError {
            let status = switch error.code {
            case .notFound, .namespaceNotFound: 404
            case .invalidArgument, .invalidPageToken: 400
            case .closed: 503
            default: 500
            }
            let title = status == 404 ? "Not found" : status == 400 ? "Bad request" : "The engine refused"
            response = .page(errorPage(PageError(status: status, title: title, message: error.message), layout: layout), status: status)
        } catch {
            response = .page(errorPage(PageError(status: 500, title: "Internal error", message: "\(error)"), layout: layout), status: 500)
        }
        if let newCSRF { response.headers.append(("Set-Cookie", ConsoleAuth.cookie(ConsoleAuth.csrfCookie, newCSRF))) }
        Self.addSecurityHeaders(&response)
        return response
    }

    /// The headers every response gets: no caching, no sniffing, no framing, no inline script or style.
    static func addSecurityHeaders(_ response: inout ConsoleResponse) {
        response.headers.append(("Cache-Control", "no-store"))
        response.headers.append(("X-Content-Type-Options", "nosniff"))
        response.headers.append(("X-Frame-Options", "DENY"))
        response.headers.append(("Referrer-Policy", "same-origin"))
        response.headers.append(("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"))
    }

    static func section(_ segments: [String]) -> Layout.Section {
        guard segments.count >= 3, segments[0] == "namespaces" else { return segments == ["namespaces"] ? .namespaces : .none }
        return segments[2] == "workflows" ? .workflows : segments[2] == "task-queues" ? .taskQueues : .none
    }

    func route(_ request: ConsoleRequest, layout: Layout) async throws -> ConsoleResponse {
        let s = request.segments
        let isGet = request.method == .get || request.method == .head
        let isPost = request.method == .post
        // Open to everyone: the assets and the login form.
        if s.count == 2 && s[0] == "assets" && isGet {
            guard let asset = assets[s[1]] else { throw PageError.notFound("No asset \u{201C}\(s[1])\u{201D}.") }
            return ConsoleResponse(status: 200, contentType: asset.contentType, body: asset.bytes)
        }
        if s == ["login"] { return login(request, layout: layout) }
        if s == ["favicon.ico"] { return ConsoleResponse(status: 404, contentType: "text/plain", body: []) }
        guard auth.isSignedIn(request) else {
            return .redirect("/login?next=" + percentEncode(request.method == .get ? request.pathAndQuery : "/"))
        }
        if isPost, let problem = ConsoleAuth.csrfProblem(request) {
            throw PageError(status: 403, title: "Refused", message: problem)
        }
        if s == ["logout"] && isPost {
            auth.signOut(request)
            var response = ConsoleResponse.redirect("/login")
            response.headers.append(("Set-Cookie", ConsoleAuth.cookie(ConsoleAuth.sessionCookie, "", maxAge: 0)))
            return response
        }
        if s.isEmpty && isGet { return .redirect(Links.workflows(defaultNamespace)) }
        if s == ["namespaces"] && isGet { return .page(try NamespacesPage.render(engine: engine, layout: layout)) }
        guard s.count >= 3, s[0] == "namespaces" else { throw PageError.notFound("No page at \(request.rawPath).") }
        let namespace = s[1]
        do {
            _ = try engine.describeNamespace(namespace)
        } catch {
            throw PageError.notFound("No namespace \u{201C}\(namespace)\u{201D}.")
        }
        switch (s[2], s.count, isGet, isPost) {
        case ("workflows", 3, true, _):
            return .page(try WorkflowsPage.render(engine: engine, namespace: namespace, request: request, layout: layout))
        case ("workflows", 4, true, _), ("workflows", 5, true, _):
            let notice = request.parameter("done").map { action in
                switch action {
                case "signal": "The signal was sent."
                case "cancel": "Cancellation was requested."
                case "terminate": "The run was terminated."
                default: "Done."
                }
            }
            return .page(try await WorkflowPage.render(engine: engine, namespace: namespace, request: request, layout: layout, notice: notice))
        case ("workflows", 6, _, true):
            return try await WorkflowPage.act(engine: engine, namespace: namespace, request: request, layout: layout, action: s[5])
        case ("task-queues", 3, true, _):
            return .page(try TaskQueuesPage.list(engine: engine, namespace: namespace, rates: rates, layout: layout))
        case ("task-queues", 5, true, _):
            return .page(try TaskQueuesPage.queue(engine: engine, namespace: namespace, request: request, rates: rates, layout: layout))
        case ("task-queues", 6, _, true):
            return try TaskQueuesPage.act(engine: engine, namespace: namespace, request: request, action: s[5])
        default:
            throw PageError.notFound("No page at \(request.rawPath).")
        }
    }

    func login(_ request: ConsoleRequest, layout: Layout) -> ConsoleResponse {
        let next = request.parameter("next").flatMap { $0.hasPrefix("/") && !$0.hasPrefix("//") && !$0.hasPrefix("/\\") ? $0 : nil } ?? "/"
        var message: HTML = ""
        if request.method == .post {
            if let problem = ConsoleAuth.csrfProblem(request) {
                message = "<p class=\"error-message\">\(problem)</p>"
            } else if let session = auth.signIn(key: request.field("key") ?? "") {
                var response = ConsoleResponse.redirect(next)
                response.headers.append(("Set-Cookie", ConsoleAuth.cookie(ConsoleAuth.sessionCookie, session)))
                return response
            } else {
                message = "<p class=\"error-message\">That key is not one of the server's.</p>"
            }
        } else if !auth.required {
            return .redirect(next)
        }
        let form: HTML = """
            <h1>Log in</h1>\(message)<p>This server requires an API key (one of its <code>--api-key-file</code>).</p>
            <form method="post" action="/login?next=\(percentEncode(next))" id="login-form">\(layout.csrfField)
            <input type="password" name="key" autocomplete="current-password" aria-label="API key" required autofocus>
            <button type="submit">Log in</button></form>
            """
        return .page(Layout(namespace: layout.namespace, section: .none, csrf: layout.csrf, signedIn: false).page(title: "Log in", form),
                     status: message == "" ? 200 : 401)
    }
}
