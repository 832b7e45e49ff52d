/// A piece of a page that is safe to write as it is: markup written in the console's code, with
/// every value interpolated into it escaped by ``escapeHTML(_:)``.
///
/// A string literal is trusted (it is the console's own markup); a `String`, a number or any
/// other value interpolated into an `HTML` literal is escaped, whether it lands in text or in a
/// quoted attribute value; an `HTML` interpolated into another is kept as it is. So no value
/// from a workflow, a query or a request can reach a page unescaped without a type error.
///
/// ```swift
/// let cell: HTML = "<td title=\"\(workflowID)\">\(workflowID)</td>"
/// ```
struct HTML: Sendable, Equatable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The markup.
    private(set) var markup: String

    /// Markup written in code (a literal): kept as it is.
    init(stringLiteral value: String) { markup = value }

    /// Markup built by interpolation: literals kept, values escaped.
    init(stringInterpolation: StringInterpolation) { markup = stringInterpolation.markup }

    /// Text as markup: escaped.
    init(text: String) { markup = escapeHTML(text) }

    private init(trusted: String) { markup = trusted }

    /// Nothing.
    static let empty = HTML(stringLiteral: "")

    var description: String { markup }

    /// `pieces` one after the other.
    static func join(_ pieces: some Sequence<HTML>, separator: HTML = .empty) -> HTML {
        var markup = ""
        var first = true
        for piece in pieces {
            if !first { markup += separator.markup }
            markup += piece.markup
            first = false
        }
        return HTML(trusted: markup)
    }

    /// Appends `other`.
    static func += (lhs: inout HTML, rhs: HTML) { lhs.markup += rhs.markup }

    /// The interpolation: literals are markup, values are escaped.
    struct StringInterpolation: StringInterpolationProtocol {
        var markup = ""

        init(literalCapacity: Int, interpolationCount: Int) { markup.reserveCapacity(literalCapacity * 2) }

        /// The console's own markup.
        mutating func appendLiteral(_ literal: String) { markup += literal }

        /// A value: escaped.
        mutating func appendInterpolation(_ text: String) { markup += escapeHTML(text) }

        /// A value: its description, escaped.
        mutating func appendInterpolation<T: CustomStringConvertible>(_ value: T) { markup += escapeHTML(value.description) }

        /// Markup: kept.
        mutating func appendInterpolation(_ html: HTML) { markup += html.markup }

        /// Several pieces of markup: kept, one after the other.
        mutating func appendInterpolation(_ pieces: [HTML]) { for piece in pieces { markup += piece.markup } }

        /// Optional markup: kept, or nothing.
        mutating func appendInterpolation(_ html: HTML?) { if let html { markup += html.markup } }
    }
}

/// The one escaping function of the console: `&`, `<`, `>`, `"` and `'` as character
/// references, so that the result is safe as element text and as a single- or double-quoted
/// attribute value. Control characters other than tab, newline and carriage return (which HTML
/// does not allow) become U+FFFD.
func escapeHTML(_ text: String) -> String {
    var out = ""
    out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) {
                out.unicodeScalars.append("\u{FFFD}")
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}

/// Percent-encodes `text` for a URL path segment or a query value: everything but RFC 3986's
/// unreserved characters is encoded (the UTF-8 bytes), so `/`, `?`, `&`, `#` and `%` in a
/// workflow id stay inside their segment.
func percentEncode(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            out.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            out += "%"
            out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
            out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 15)]))
        }
    }
    return out
}

/// Decodes `%XX` escapes (and, with `plusIsSpace`, `+` as a space, as in a form or a query);
/// nil when an escape is malformed or the bytes are not UTF-8.
func percentDecode<S: StringProtocol>(_ text: S, plusIsSpace: Bool = false) -> String? {
    var bytes: [UInt8] = []
    var iterator = Array(text.utf8)[...]
    func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
    while let byte = iterator.popFirst() {
        if byte == UInt8(ascii: "%") {
            guard let high = iterator.popFirst().flatMap(hexValue), let low = iterator.popFirst().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        } else if plusIsSpace && byte == UInt8(ascii: "+") {
            bytes.append(UInt8(ascii: " "))
        } else {
            bytes.append(byte)
        }
    }
    return String(validating: bytes, as: UTF8.self)
}

/// `name=value&…` (a query string or an `application/x-www-form-urlencoded` body) as pairs in
/// order; nil when a name or a value does not decode.
func parseFormEncoded<S: StringProtocol>(_ text: S) -> [(String, String)]? {
    var pairs: [(String, String)] = []
    for part in text.split(separator: "&", omittingEmptySubsequences: true) {
        let halves = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard let name = percentDecode(halves[0], plusIsSpace: true),
              let value = percentDecode(halves.count > 1 ? halves[1] : "", plusIsSpace: true) else { return nil }
        pairs.append((name, value))
    }
    return pairs
}
