/// Appends the primitives of Spool's binary formats to a buffer it owns: LEB128 varints (zigzag for
/// signed values), length-prefixed strings and byte strings, one byte per flag or enum, and
/// little-endian fixed-width fields. ``BinaryReader`` reads them back.
///
/// The engine's records have no field tags: each starts with a version byte and the reader of
/// that version knows the layout. Growing a type means a new version whose reader still reads the
/// old. The writes are `@inlinable`: they are the inner loop of every append. The type is also
/// `@usableFromInline`: without it, Swift 6.3 compiles other modules' calls to a `package` type's
/// `@inlinable` members as calls to unspecialized generic entry points, never inlined.
@usableFromInline package struct BinaryWriter: ~Copyable {
    // The bytes are written into memory the writer owns, not into an `Array`: an append to an
    // array checks its uniqueness and capacity through the runtime, and the varints and strings
    // of an engine record are ~80 such appends. ``bytes`` copies them out once.
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var used: Int
    @usableFromInline var capacity: Int

    /// An empty writer with room for `capacity` bytes.
    @inlinable
    package init(capacity: Int = 256) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
        used = 0
    }

    deinit { base.deallocate() }

    /// What was written.
    @inlinable package var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: used)) }

    /// How many bytes were written.
    @inlinable package var byteCount: Int { used }

    /// Runs `body` on what was written, without copying it out.
    @inlinable
    package func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: base, count: used))
    }

    /// Makes room for `count` more bytes.
    @inlinable @inline(__always)
    mutating func reserve(_ count: Int) {
        if used + count > capacity { grow(count) }
    }

    @usableFromInline
    mutating func grow(_ count: Int) {
        let newCapacity = max(capacity * 2, used + count)
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.initialize(from: base, count: used)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    /// Appends `bytes` as they are.
    @inlinable
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        UnsafeMutableRawPointer(base + used).copyMemory(from: source, byteCount: bytes.count)
        used += bytes.count
    }

    /// One byte.
    @inlinable
    package mutating func byte(_ value: UInt8) {
        reserve(1)
        base[used] = value
        used += 1
    }

    /// Bytes written as they are (an entry copied from another encoding of the same layout).
    @inlinable
    package mutating func raw(_ value: ArraySlice<UInt8>) { value.withUnsafeBytes { append($0) } }

    /// Bytes written as they are, with no length.
    @inlinable
    package mutating func raw(_ value: [UInt8]) { value.withUnsafeBytes { append($0) } }

    /// What `other` wrote, as it is, with no length.
    @inlinable
    package mutating func raw(_ other: borrowing BinaryWriter) { other.withUnsafeBytes { append($0) } }

    /// A flag byte, 0 or 1.
    @inlinable
    package mutating func bool(_ value: Bool) { byte(value ? 1 : 0) }

    /// An unsigned LEB128 varint.
    @inlinable
    package mutating func unsigned(_ value: UInt64) {
        reserve(10)
        var value = value
        while value >= 0x80 {
            base[used] = UInt8(truncatingIfNeeded: value) | 0x80
            used += 1
            value >>= 7
        }
        base[used] = UInt8(truncatingIfNeeded: value)
        used += 1
    }

    /// A zigzag-encoded signed varint.
    @inlinable
    package mutating func signed(_ value: Int64) {
        unsigned(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// A length or element count, as a varint.
    @inlinable
    package mutating func count(_ value: Int) { unsigned(UInt64(value)) }

    /// A string: its UTF-8 length as a varint, then its UTF-8 bytes.
    @inlinable
    package mutating func string(_ value: String) {
        // Native strings (all the engine makes) have contiguous UTF-8: no copy of the string.
        let written: Void? = value.utf8.withContiguousStorageIfAvailable { utf8 in
            count(utf8.count)
            append(UnsafeRawBufferPointer(utf8))
        }
        if written == nil {
            var value = value
            value.withUTF8 { utf8 in
                count(utf8.count)
                append(UnsafeRawBufferPointer(utf8))
            }
        }
    }

    /// A byte string: its length as a varint, then its bytes.
    @inlinable
    package mutating func payload(_ value: [UInt8]) {
        count(value.count)
        raw(value)
    }

    /// What `other` wrote, as a byte string (``payload(_:)-([UInt8])``), without copying it out first.
    @inlinable
    package mutating func payload(_ other: borrowing BinaryWriter) {
        count(other.byteCount)
        raw(other)
    }

    /// An optional value: a presence byte, then the value `write` writes.
    @inlinable
    package mutating func optional<T>(_ value: T?, _ write: (inout BinaryWriter, T) -> Void) {
        guard let value else { return byte(0) }
        byte(1)
        write(&self, value)
    }

    /// An optional byte string (a presence byte, then ``payload(_:)-([UInt8])``).
    @inlinable
    package mutating func payload(_ value: [UInt8]?) { optional(value) { $0.payload($1) } }

    /// A little-endian `UInt32`.
    @inlinable
    package mutating func fixed32(_ value: UInt32) { Swift.withUnsafeBytes(of: value.littleEndian) { append($0) } }

    /// A little-endian `UInt64`.
    @inlinable
    package mutating func fixed64(_ value: UInt64) { Swift.withUnsafeBytes(of: value.littleEndian) { append($0) } }

    /// A string: its UTF-8 length as a ``fixed32(_:)``, then its UTF-8 bytes.
    @inlinable
    package mutating func fixed32PrefixedString(_ value: String) {
        fixed32(UInt32(value.utf8.count))
        var value = value
        value.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }
}
