/// A request as the console's pages see it: decoded from Hummingbird's by ``ConsoleServer``, so
/// that the pages and their tests need no HTTP server.
struct ConsoleRequest: Sendable {
    enum Method: Sendable { case get, head, post, other }
    var method: Method
    /// The path's segments, percent-decoded (a `/` inside a workflow id arrives as one segment).
    var segments: [String]
    /// The path as sent, without the query.
    var rawPath: String
    /// The query's parameters, decoded, in order.
    var query: [(String, String)]
    /// A POST's form fields, decoded, in order.
    var form: [(String, String)] = []
    /// Cookies by name.
    var cookies: [String: String] = [:]
    /// The `Origin` header, if sent.
    var origin: String? = nil
    /// The `Host` header, if sent.
    var host: String? = nil

    func parameter(_ name: String) -> String? { query.last { $0.0 == name }?.1 }
    func field(_ name: String) -> String? { form.last { $0.0 == name }?.1 }

    /// The path and query as sent (for `next=` after a login).
    var pathAndQuery: String {
        query.isEmpty ? rawPath : rawPath + "?" + query.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
    }
}

/// A response of the console.
struct ConsoleResponse: Sendable {
    var status: Int
    var contentType: String
    var body: [UInt8]
    var headers: [(String, String)] = []

    static func page(_ html: HTML, status: Int = 200) -> ConsoleResponse {
        ConsoleResponse(status: status, contentType: "text/html; charset=utf-8", body: Array(html.markup.utf8))
    }

    /// 303 See Other: after a POST, and from `/`.
    static func redirect(_ location: String) -> ConsoleResponse {
        ConsoleResponse(status: 303, contentType: "text/plain; charset=utf-8", body: Array("See \(location)\n".utf8),
                        headers: [("Location", location)])
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A request the console refuses or cannot answer: rendered as a page with this status, title and message.
struct PageError: Error {
    var status: Int
    var title: String
    var message: String

    static func notFound(_ message: String) -> PageError { PageError(status: 404, title: "Not found", message: message) }
    static func badRequest(_ message: String) -> PageError { PageError(status: 400, title: "Bad request", message: message) }
}
