import ArgumentParser

/// `--format text|jsonl`: how `spool task add`, `task poll` and `queue peek` carry payloads.
///
/// - `text`: one payload per line, as the line's bytes. Only payloads a line can carry exactly
///   and a terminal can show are accepted or printed: valid UTF-8 without control characters
///   other than tab (no NUL, no carriage return, no newline, no DEL, no C1 codes).
/// - `jsonl`: one JSON object per line; the payload is base64 (RFC 4648, with padding) in the
///   field `payload_base64`, so any bytes go in and come out unchanged.
package enum PayloadFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text
    case jsonl

    /// The field that carries a payload in `jsonl`.
    package static let payloadField = "payload_base64"
}

/// The rules of `--format text` for a payload.
package enum TextPayload {
    /// Why `bytes` cannot be carried exactly as one line of text, or nil when it can: the first
    /// offending byte, its offset (from 1) and what it is.
    package static func problem(in bytes: [UInt8]) -> String? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .emptyInput:
                return nil
            case .error(let length):
                let byte = bytes[offset]
                return "byte \(offset + 1) (0x\(hex(byte))) is not valid UTF-8" + (length > 1 ? " (a sequence of \(length) bytes)" : "")
            case .valid(let encoded):
                let scalar = Unicode.UTF8.decode(encoded)
                if let name = refusedName(scalar) { return "byte \(offset + 1) is \(name)" }
                offset += encoded.count
            }
        }
    }

    /// A name for a scalar text mode refuses, or nil when it is allowed (tab is allowed).
    static func refusedName(_ scalar: Unicode.Scalar) -> String? {
        switch scalar.value {
        case 0x00: return "a NUL byte"
        case 0x0D: return "a carriage return (\\r)"
        case 0x0A: return "a newline"
        case 0x09: return nil
        case 0x01...0x1F, 0x7F...0x9F: return "a control character (U+\(String(scalar.value, radix: 16, uppercase: true)))"
        default: return nil
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
    }
}

/// Base64 (RFC 4648 §4, standard alphabet, with padding), without Foundation.
package enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// `bytes` as base64 text.
    package static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let n = UInt32(bytes[index]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes `text` encodes; throws a message naming the first problem (a character outside
    /// the alphabet, a length that is not a multiple of 4, misplaced padding).
    package static func decode(_ text: String) throws(PayloadFormatError) -> [UInt8] {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else {
            throw PayloadFormatError("base64 of \(input.count) characters: the length must be a multiple of 4 (with = padding)")
        }
        var out: [UInt8] = []
        out.reserveCapacity(input.count / 4 * 3)
        var index = 0
        while index < input.count {
            var values: [UInt32] = []
            var padding = 0
            for position in index..<index + 4 {
                let c = input[position]
                if c == UInt8(ascii: "=") && position >= index + 2 && index + 4 == input.count {
                    padding += 1
                    values.append(0)
                    continue
                }
                guard padding == 0, let value = sextet(c) else {
                    throw PayloadFormatError("base64: character \(position + 1) ('\(Unicode.Scalar(c))') is not in the base64 alphabet here")
                }
                values.append(value)
            }
            let n = values[0] << 18 | values[1] << 12 | values[2] << 6 | values[3]
            out.append(UInt8(n >> 16 & 255))
            if padding < 2 { out.append(UInt8(n >> 8 & 255)) }
            if padding < 1 { out.append(UInt8(n & 255)) }
            index += 4
        }
        return out
    }

    private static func sextet(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): UInt32(c - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): UInt32(c - UInt8(ascii: "a")) + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0")) + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}

/// Why an input line of `--format jsonl` (or its base64) cannot be read.
package struct PayloadFormatError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Reads the one object of a `--format jsonl` input line: `{"payload_base64":"…"}`.
package enum JSONLinePayload {
    /// The payload of `line`: an object whose only field is ``PayloadFormat/payloadField``, a
    /// base64 string. Throws a message naming the problem.
    package static func decode(_ line: [UInt8]) throws(PayloadFormatError) -> [UInt8] {
        guard let text = String(validating: line, as: UTF8.self) else { throw PayloadFormatError("the line is not valid UTF-8") }
        var parser = JSONObjectParser(Array(text.unicodeScalars))
        let fields = try parser.parseObjectOfStrings()
        guard let value = fields.first(where: { $0.0 == PayloadFormat.payloadField })?.1 else {
            throw PayloadFormatError("no \"\(PayloadFormat.payloadField)\" field (expected {\"\(PayloadFormat.payloadField)\":\"…\"})")
        }
        if let other = fields.first(where: { $0.0 != PayloadFormat.payloadField }) {
            throw PayloadFormatError("unknown field \"\(other.0)\" (the only field is \"\(PayloadFormat.payloadField)\")")
        }
        return try Base64.decode(value)
    }
}

/// A JSON object whose values are all strings, parsed without Foundation.
struct JSONObjectParser {
    private let scalars: [Unicode.Scalar]
    private var index = 0

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    mutating func parseObjectOfStrings() throws(PayloadFormatError) -> [(String, String)] {
        skipSpace()
        try expect("{")
        var fields: [(String, String)] = []
        skipSpace()
        if peek() == "}" {
            index += 1
        } else {
            while true {
                skipSpace()
                let key = try parseString()
                skipSpace()
                try expect(":")
                skipSpace()
                guard peek() == "\"" else { throw PayloadFormatError("the value of \"\(key)\" is not a string") }
                fields.append((key, try parseString()))
                skipSpace()
                if peek() == "," { index += 1; continue }
                try expect("}")
                break
            }
        }
        skipSpace()
        guard index == scalars.count else { throw PayloadFormatError("text after the object at character \(index + 1)") }
        return fields
    }

    private func peek() -> Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    private mutating func skipSpace() {
        while let c = peek(), c == " " || c == "\t" || c == "\r" || c == "\n" { index += 1 }
    }

    private mutating func expect(_ c: Unicode.Scalar) throws(PayloadFormatError) {
        guard peek() == c else {
            throw PayloadFormatError("not a JSON object: expected '\(c)' at character \(index + 1)" + (peek() == nil ? " (end of line)" : ""))
        }
        index += 1
    }

    private mutating func parseString() throws(PayloadFormatError) -> String {
        try expect("\"")
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek() else { throw PayloadFormatError("a string is not closed") }
            index += 1
            switch c {
            case "\"":
                return String(out)
            case "\\":
                guard let e = peek() else { throw PayloadFormatError("a string is not closed") }
                index += 1
                switch e {
                case "\"", "\\", "/": out.append(e)
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "u":
                    var value = try hex4()
                    if (0xD800..<0xDC00).contains(value), peek() == "\\", index + 1 < scalars.count, scalars[index + 1] == "u" {
                        index += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw PayloadFormatError("an unpaired surrogate in a \\u escape") }
                        value = 0x10000 + (value - 0xD800) << 10 + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(value) else { throw PayloadFormatError("an unpaired surrogate in a \\u escape") }
                    out.append(scalar)
                default:
                    throw PayloadFormatError("an unknown escape \\\(e) at character \(index)")
                }
            case let c where c.value < 0x20:
                throw PayloadFormatError("a control character inside a string at character \(index)")
            default:
                out.append(c)
            }
        }
    }

    private mutating func hex4() throws(PayloadFormatError) -> UInt32 {
        guard index + 4 <= scalars.count, let value = UInt32(String(String.UnicodeScalarView(scalars[index..<index + 4])), radix: 16) else {
            throw PayloadFormatError("a \\u escape needs four hex digits at character \(index + 1)")
        }
        index += 4
        return value
    }
}
