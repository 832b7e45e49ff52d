/// The error a ``BinaryReader`` throws for bytes that do not decode: each layer reads with its own
/// error type (the task store's, the engine's), so a decoding failure reaches callers typed.
@usableFromInline package protocol BinaryDecodingFailure: Error {
    /// The error for undecodable bytes; `message` says what was wrong and where
    /// ("checkpoint: unexpected end at byte 12").
    static func undecodable(_ message: String) -> Self
}

/// Reads what ``BinaryWriter`` wrote: LEB128 varints (zigzag for signed values), length-prefixed
/// strings and byte strings, one byte per flag or enum, and little-endian fixed-width fields.
///
/// Every read checks bounds and ranges and throws `ReadError` (through
/// ``BinaryDecodingFailure/undecodable(_:)``) on bad bytes; it never traps on input. The reads
/// are `@inlinable`: they are the inner loop of every replay, and are specialized for `ReadError`
/// in the module that reads (which needs the type to be `@usableFromInline` as well as its
/// members `@inlinable`: see ``BinaryWriter``).
@usableFromInline package struct BinaryReader<ReadError: BinaryDecodingFailure> {
    @usableFromInline let bytes: [UInt8]
    @usableFromInline var offset: Int
    /// What the bytes are, for error messages ("log record at offset 42").
    @usableFromInline package let context: String

    /// A reader of `bytes` from their start; `context` names them in errors.
    @inlinable
    package init(_ bytes: [UInt8], context: String) {
        self.bytes = bytes
        self.offset = 0
        self.context = context
    }

    /// The position of the next read, in bytes from the start.
    @inlinable package var position: Int { offset }

    /// Whether every byte was read.
    @inlinable package var isAtEnd: Bool { offset == bytes.count }

    /// The error for bad bytes at the current position: "CONTEXT: WHAT at byte N".
    @usableFromInline package func corrupt(_ what: String) -> ReadError {
        ReadError.undecodable("\(context): \(what) at byte \(offset)")
    }

    /// Steps over `count` bytes (a field a reader does not need), checking bounds.
    /// - Throws: `ReadError` when fewer than `count` bytes are left (or `count` is negative).
    @inlinable
    package mutating func skip(_ count: Int) throws(ReadError) {
        guard count >= 0, count <= bytes.count - offset else { throw corrupt("a length of \(count) runs past the end") }
        offset += count
    }

    /// Steps over a string or payload (its varint length, then its bytes) without copying it.
    /// - Throws: `ReadError` when the length is bad or runs past the end.
    @inlinable
    package mutating func skipLengthPrefixed() throws(ReadError) {
        try skip(try count())
    }

    /// One byte.
    /// - Throws: `ReadError` at the end of the bytes.
    @inlinable
    package mutating func byte() throws(ReadError) -> UInt8 {
        guard offset < bytes.count else { throw corrupt("unexpected end") }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A flag byte, 0 or 1.
    /// - Throws: `ReadError` for any other value, or at the end.
    @inlinable
    package mutating func bool() throws(ReadError) -> Bool {
        switch try byte() {
        case 0: return false
        case 1: return true
        default: throw corrupt("a flag is neither 0 nor 1")
        }
    }

    /// An unsigned LEB128 varint of at most 64 bits.
    /// - Throws: `ReadError` when it is longer than 10 bytes, overflows, or runs past the end.
    @inlinable
    package mutating func unsigned() throws(ReadError) -> UInt64 {
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

    /// A zigzag-encoded signed varint.
    /// - Throws: as ``unsigned()``.
    @inlinable
    package mutating func signed() throws(ReadError) -> Int64 {
        let raw = try unsigned()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// A signed varint that must fit 32 bits.
    /// - Throws: as ``signed()``, or when the value does not fit.
    @inlinable
    package mutating func int32() throws(ReadError) -> Int32 {
        let value = try signed()
        guard let narrowed = Int32(exactly: value) else { throw corrupt("a 32-bit field holds \(value)") }
        return narrowed
    }

    /// A length or element count (a varint), at most `limit` and at most the bytes left (each
    /// element takes one byte or more).
    /// - Throws: `ReadError` when it is larger.
    @inlinable
    package mutating func count(limit: Int = Int.max) throws(ReadError) -> Int {
        let value = try unsigned()
        guard value <= UInt64(min(limit, bytes.count - offset)) else { throw corrupt("a length of \(value) runs past the end") }
        return Int(value)
    }

    /// A byte string: its varint length, then its bytes.
    /// - Throws: `ReadError` when the length runs past the end.
    @inlinable
    package mutating func payload() throws(ReadError) -> [UInt8] {
        let length = try count()
        defer { offset += length }
        return Array(bytes[offset..<offset + length])
    }

    /// A string: its varint length, then its UTF-8 bytes, which must be valid.
    /// - Throws: `ReadError` when the length runs past the end or the bytes are not UTF-8.
    @inlinable
    package mutating func string() throws(ReadError) -> String {
        let length = try count()
        defer { offset += length }
        guard let text = String(validating: bytes[offset..<offset + length], as: UTF8.self) else {
            throw corrupt("a string is not valid UTF-8")
        }
        return text
    }

    /// An optional value: a presence flag, then the value `read` reads.
    /// - Throws: what ``bool()`` or `read` throws.
    @inlinable
    package mutating func optional<T>(_ read: (inout BinaryReader) throws(ReadError) -> T) throws(ReadError) -> T? {
        try bool() ? try read(&self) : nil
    }

    /// An optional byte string (``payload()`` after a presence flag).
    @inlinable
    package mutating func optionalPayload() throws(ReadError) -> [UInt8]? { try optional { r throws(ReadError) in try r.payload() } }

    /// A one-byte enum value.
    /// - Throws: `ReadError` when the byte is not a case of `E`.
    @inlinable
    package mutating func enumeration<E: RawRepresentable<UInt8>>(_ type: E.Type) throws(ReadError) -> E {
        let raw = try byte()
        guard let value = E(rawValue: raw) else { throw corrupt("\(raw) is not a \(E.self)") }
        return value
    }

    /// A little-endian `UInt32`.
    /// - Throws: `ReadError` when fewer than 4 bytes are left.
    @inlinable
    package mutating func fixed32() throws(ReadError) -> UInt32 { try littleEndian(UInt32.self) }

    /// A little-endian `UInt64`.
    /// - Throws: `ReadError` when fewer than 8 bytes are left.
    @inlinable
    package mutating func fixed64() throws(ReadError) -> UInt64 { try littleEndian(UInt64.self) }

    /// A little-endian unsigned integer of `T`'s width, assembled byte by byte (no alignment needed).
    @inlinable
    mutating func littleEndian<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) throws(ReadError) -> T {
        let width = T.bitWidth / 8
        guard bytes.count - offset >= width else { throw corrupt("unexpected end") }
        var value: T = 0
        for i in 0..<width { value |= T(bytes[offset + i]) << (8 * i) }
        offset += width
        return value
    }

    /// `byteCount` bytes as text, decoded in place. Unlike ``string()``, invalid UTF-8 is repaired
    /// (with U+FFFD), not refused: the task store's records have always been read so.
    /// - Throws: `ReadError` when fewer than `byteCount` bytes are left.
    @inlinable
    package mutating func string(byteCount: Int) throws(ReadError) -> String {
        guard byteCount >= 0, bytes.count - offset >= byteCount else { throw corrupt("a length of \(byteCount) runs past the end") }
        defer { offset += byteCount }
        return String(decoding: bytes[offset..<offset + byteCount], as: UTF8.self)
    }

    /// A string after its ``fixed32()`` length, read as ``string(byteCount:)`` reads.
    /// - Throws: `ReadError` when the length runs past the end.
    @inlinable
    package mutating func fixed32PrefixedString() throws(ReadError) -> String {
        let count = try fixed32()
        return try string(byteCount: Int(count))
    }

    /// Every byte left.
    @inlinable
    package mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }
}
