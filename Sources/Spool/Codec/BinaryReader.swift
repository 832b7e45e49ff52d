/// Reads what ``BinaryWriter`` wrote. Every read checks bounds and ranges and throws
/// ``SpoolError/Code/corruptRecord`` on bad bytes; it never traps on input.
struct BinaryReader {
    private let bytes: [UInt8]
    private(set) var position: Int
    /// What the bytes are, for error messages ("log record at offset 42").
    let context: String

    init(_ bytes: [UInt8], context: String) {
        self.bytes = bytes
        self.position = 0
        self.context = context
    }

    var isAtEnd: Bool { position == bytes.count }

    /// Steps over `count` bytes (a field a reader does not need), checking bounds.
    mutating func skip(_ count: Int) throws(SpoolError) {
        guard count >= 0, count <= bytes.count - position else { throw corrupt("a length of \(count) runs past the end") }
        position += count
    }

    /// Steps over a string or payload (its length, then its bytes) without copying it.
    mutating func skipLengthPrefixed() throws(SpoolError) {
        try skip(try count())
    }

    func corrupt(_ what: String) -> SpoolError {
        SpoolError(.corruptRecord, "\(context): \(what) at byte \(position)")
    }

    mutating func byte() throws(SpoolError) -> UInt8 {
        guard position < bytes.count else { throw corrupt("unexpected end") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func bool() throws(SpoolError) -> Bool {
        switch try byte() {
        case 0: return false
        case 1: return true
        default: throw corrupt("a flag is neither 0 nor 1")
        }
    }

    mutating func unsigned() throws(SpoolError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64, shift < 63 || next <= 1 else { throw corrupt("a varint is too long") }
            result |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return result }
            shift += 7
        }
    }

    mutating func signed() throws(SpoolError) -> Int64 {
        let raw = try unsigned()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    mutating func int32() throws(SpoolError) -> Int32 {
        let value = try signed()
        guard let narrowed = Int32(exactly: value) else { throw corrupt("a 32-bit field holds \(value)") }
        return narrowed
    }

    /// A length or element count, at most `limit` and at most the bytes left (each element takes one byte or more).
    mutating func count(limit: Int = Int.max) throws(SpoolError) -> Int {
        let value = try unsigned()
        guard value <= UInt64(min(limit, bytes.count - position)) else { throw corrupt("a length of \(value) runs past the end") }
        return Int(value)
    }

    mutating func payload() throws(SpoolError) -> [UInt8] {
        let length = try count()
        defer { position += length }
        return Array(bytes[position..<position + length])
    }

    mutating func string() throws(SpoolError) -> String {
        let length = try count()
        defer { position += length }
        guard let text = String(validating: bytes[position..<position + length], as: UTF8.self) else {
            throw corrupt("a string is not valid UTF-8")
        }
        return text
    }

    mutating func optional<T>(_ read: (inout BinaryReader) throws(SpoolError) -> T) throws(SpoolError) -> T? {
        try bool() ? try read(&self) : nil
    }

    mutating func optionalPayload() throws(SpoolError) -> [UInt8]? { try optional { r throws(SpoolError) in try r.payload() } }

    mutating func duration() throws(SpoolError) -> Duration { .nanoseconds(try signed()) }

    mutating func optionalDuration() throws(SpoolError) -> Duration? { try optional { r throws(SpoolError) in try r.duration() } }

    mutating func timestamp() throws(SpoolError) -> Timestamp { Timestamp(nanosecondsSinceEpoch: try signed()) }

    mutating func enumeration<E: RawRepresentable<UInt8>>(_ type: E.Type) throws(SpoolError) -> E {
        let raw = try byte()
        guard let value = E(rawValue: raw) else { throw corrupt("\(raw) is not a \(E.self)") }
        return value
    }
}
