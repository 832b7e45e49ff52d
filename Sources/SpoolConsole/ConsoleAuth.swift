import Synchronization

/// Who may use the console, and the check that a form was posted by the console's own page.
///
/// With API keys (`spool serve --api-key-file`), every page but the login form and the assets
/// needs a session: the login form takes a key, and a key the server accepts opens a session
/// whose random id the console keeps in memory and sets as the `spool_session` cookie (HttpOnly,
/// SameSite=Strict). Sessions end when the server stops or on logout.
///
/// Every POST (signal, cancel, terminate, pause, resume, rate, logout) must carry the value of
/// the `spool_csrf` cookie (random, HttpOnly, SameSite=Strict, set on the first page) in its
/// `csrf` field, and, when the browser sends an `Origin` header, come from the console's own
/// origin: a page of another site can neither read the cookie nor send it.
final class ConsoleAuth: Sendable {
    static let sessionCookie = "spool_session"
    static let csrfCookie = "spool_csrf"

    let apiKeys: Set<String>
    private let sessions = Mutex<Set<String>>([])

    init(apiKeys: Set<String>) { self.apiKeys = apiKeys }

    var required: Bool { !apiKeys.isEmpty }

    /// A random token: 32 bytes from the system's generator, in hex.
    static func token() -> String {
        var generator = SystemRandomNumberGenerator()
        return Links.hex((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// Whether the request may see pages.
    func isSignedIn(_ request: ConsoleRequest) -> Bool {
        guard required else { return true }
        guard let session = request.cookies[Self.sessionCookie], !session.isEmpty else { return false }
        return sessions.withLock { $0.contains(session) }
    }

    /// A new session for `key`, or nil when the key is not one of the server's.
    func signIn(key: String) -> String? {
        // Compare every key in full, whether or not an earlier one matched.
        var matched = false
        for candidate in apiKeys { matched = Self.constantTimeEqual(candidate, key) || matched }
        guard matched else { return nil }
        let session = Self.token()
        sessions.withLock { _ = $0.insert(session) }
        return session
    }

    func signOut(_ request: ConsoleRequest) {
        guard let session = request.cookies[Self.sessionCookie] else { return }
        sessions.withLock { _ = $0.remove(session) }
    }

    /// Why a POST is refused, or nil when it came from the console's own form.
    static func csrfProblem(_ request: ConsoleRequest) -> String? {
        guard let cookie = request.cookies[csrfCookie], !cookie.isEmpty else {
            return "The form was sent without the console's cookie: reload the page and try again."
        }
        guard let field = request.field("csrf"), constantTimeEqual(field, cookie) else {
            return "The form's token does not match this browser's: reload the page and try again."
        }
        if let origin = request.origin, let host = request.host, origin != "http://\(host)" && origin != "https://\(host)" {
            return "The form was sent from another site (\(origin))."
        }
        return nil
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for index in 0..<max(x.count, y.count) {
            difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
        }
        return difference == 0
    }

    static func cookie(_ name: String, _ value: String, maxAge: Int? = nil) -> String {
        "\(name)=\(value); Path=/; HttpOnly; SameSite=Strict" + (maxAge.map { "; Max-Age=\($0)" } ?? "")
    }
}
