/// Appends the primitives of Spool's binary formats to a byte array: LEB128 varints (zigzag for
/// signed values), length-prefixed strings and byte strings, one byte per flag or enum, and
/// little-endian fixed-width fields. ``BinaryReader`` reads them back.
///
/// The engine's records have no field tags: each starts with a version byte and the reader of
/// that version knows the layout. Growing a type means a new version whose reader still reads the
/// old. The writes are `@inlinable`: they are the inner loop of every append. The type is also
/// `@usableFromInline`: without it, Swift 6.3 compiles other modules' calls to a `package` type's
/// `@inlinable` members as calls to unspecialized generic entry points, never inlined.
@usableFromInline package struct BinaryWriter {
    @usableFromInline var buffer: [UInt8]

    /// An empty writer with room for `capacity` bytes.
    @inlinable
    package init(capacity: Int = 256) {
        buffer = []
        buffer.reserveCapacity(capacity)
    }

    /// What was written.
    @inlinable package var bytes: [UInt8] { buffer }

    /// One byte.
    @inlinable
    package mutating func byte(_ value: UInt8) { buffer.append(value) }

    /// Bytes written as they are (an entry copied from another encoding of the same layout).
    @inlinable
    package mutating func raw(_ value: ArraySlice<UInt8>) { buffer.append(contentsOf: value) }

    /// Bytes written as they are, with no length.
    @inlinable
    package mutating func raw(_ value: [UInt8]) { buffer.append(contentsOf: value) }

    /// A flag byte, 0 or 1.
    @inlinable
    package mutating func bool(_ value: Bool) { buffer.append(value ? 1 : 0) }

    /// An unsigned LEB128 varint.
    @inlinable
    package mutating func unsigned(_ value: UInt64) {
        // Most values (tags, counts, small ids, lengths) fit in one byte.
        if value < 0x80 { return buffer.append(UInt8(truncatingIfNeeded: value)) }
        var value = value
        while value >= 0x80 {
            buffer.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        buffer.append(UInt8(value))
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
            buffer.append(contentsOf: utf8)
        }
        if written == nil {
            var value = value
            value.withUTF8 { utf8 in
                count(utf8.count)
                buffer.append(contentsOf: utf8)
            }
        }
    }

    /// A byte string: its length as a varint, then its bytes.
    @inlinable
    package mutating func payload(_ value: [UInt8]) {
        count(value.count)
        buffer.append(contentsOf: value)
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
    package mutating func fixed32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) } }

    /// A little-endian `UInt64`.
    @inlinable
    package mutating func fixed64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) } }

    /// A string: its UTF-8 length as a ``fixed32(_:)``, then its UTF-8 bytes.
    @inlinable
    package mutating func fixed32PrefixedString(_ value: String) {
        fixed32(UInt32(value.utf8.count))
        buffer.append(contentsOf: value.utf8)
    }
}
