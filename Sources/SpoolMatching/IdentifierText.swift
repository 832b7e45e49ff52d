/// The rules every name and id a caller gives (task queue names, workflow ids and types,
/// namespaces) follows, after Temporal's frontend: non-empty, at most a length limit in UTF-8
/// bytes (Temporal's `limit.maxIDLength`, 1000 by default), and no control characters.
///
/// Control characters (Unicode category Cc: NUL, tab, newline, carriage return, the other C0
/// codes, DEL and the C1 codes) and the line and paragraph separators U+2028/U+2029 are refused
/// because names are printed in tables and one per line. U+FFFD is refused because it is what a
/// lossy decoding puts in place of invalid UTF-8: two names that differed only in their invalid
/// bytes would otherwise become the same name.
public enum IdentifierText {
    /// Temporal's default limit on ids and names, in UTF-8 bytes (`limit.maxIDLength`).
    public static let maximumUTF8Length = 1000

    /// Why `text` is not an acceptable name or id of at most `maximumUTF8Length` UTF-8 bytes, or
    /// nil when it is. The reason names the first offending character and its position
    /// (counted in Unicode scalars from 1). Cost: one pass over the text's bytes when it is
    /// printable ASCII, one over its scalars otherwise.
    public static func problem(in text: String, maximumUTF8Length: Int = maximumUTF8Length) -> String? {
        let length = text.utf8.count
        if length == 0 { return "it is empty" }
        if length > maximumUTF8Length { return "it is \(length) UTF-8 bytes; the limit is \(maximumUTF8Length)" }
        // Most names are printable ASCII (U+0020…U+007E), none of which is refused: one pass over
        // the bytes says so, where decoding scalars cost a few thousand instructions per name.
        let printableASCII = text.utf8.withContiguousStorageIfAvailable { isPrintableASCII(UnsafeRawBufferPointer($0)) }
        if printableASCII == true { return nil }
        for (index, scalar) in text.unicodeScalars.enumerated() {
            if let name = refusedName(scalar) { return "it contains \(name) at character \(index + 1)" }
        }
        return nil
    }

    /// Whether every byte is printable ASCII (0x20…0x7E), eight bytes at a time: a workflow's
    /// ids, types and names are checked on every call that carries them, ~1,000 bytes a workflow.
    /// A `true` is exact; a `false` only sends the caller to the scalar-by-scalar check.
    static func isPrintableASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        var index = 0
        while index + 8 <= bytes.count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            // A byte with its top bit set is not ASCII; with none set, `(x - n) & ~x & high` is
            // nonzero exactly when some byte of x is below n: here 0x20, and 1 for a zero byte of
            // `word ^ 0x7F…`, which is where a byte was DEL.
            let del = word ^ (0x7F &* ones)
            if word & high != 0 || (word &- 0x20 &* ones) & ~word & high != 0 || (del &- ones) & ~del & high != 0 {
                return false
            }
            index += 8
        }
        while index < bytes.count {
            if bytes[index] &- 0x20 >= 0x5F { return false }
            index += 1
        }
        return true
    }

    /// A readable name for a scalar a name may not contain, or nil when it may.
    static func refusedName(_ scalar: Unicode.Scalar) -> String? {
        switch scalar.value {
        case 0x00: return "a NUL byte (U+0000)"
        case 0x09: return "a tab (U+0009)"
        case 0x0A: return "a newline (U+000A)"
        case 0x0D: return "a carriage return (U+000D)"
        case 0x01...0x1F, 0x7F...0x9F: return "a control character (U+\(hex(scalar.value)))"
        case 0x2028, 0x2029: return "a line or paragraph separator (U+\(hex(scalar.value)))"
        case 0xFFFD: return "U+FFFD, the replacement character (was it decoded from invalid UTF-8?)"
        default: return nil
        }
    }

    /// `text` as a message shows it: at most 64 characters, then "…"; refused characters
    /// escaped as `\u{…}`, so that the message stays on one line.
    public static func shown(_ text: String) -> String {
        var out = ""
        for (index, scalar) in text.unicodeScalars.enumerated() {
            if index == 64 { out += "…"; break }
            if refusedName(scalar) != nil {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
