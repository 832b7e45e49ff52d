/// Appends the primitives of Spool's record format to a byte array: LEB128 varints (zigzag for
/// signed values), length-prefixed strings and byte strings, one byte per flag or enum.
///
/// The format has no field tags: each record starts with a version byte and the reader of that
/// version knows the layout. Growing a type means a new version whose reader still reads the old.
struct BinaryWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    /// Bytes written as they are (an entry copied from another encoding of the same layout).
    mutating func raw(_ value: ArraySlice<UInt8>) { bytes.append(contentsOf: value) }

    mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    mutating func unsigned(_ value: UInt64) {
        // Most values (tags, counts, small ids, lengths) fit in one byte.
        if value < 0x80 { return bytes.append(UInt8(truncatingIfNeeded: value)) }
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    mutating func signed(_ value: Int64) {
        unsigned(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    mutating func count(_ value: Int) { unsigned(UInt64(value)) }

    mutating func string(_ value: String) {
        // Native strings (all the engine makes) have contiguous UTF-8: no copy of the string.
        let written: Void? = value.utf8.withContiguousStorageIfAvailable { utf8 in
            count(utf8.count)
            bytes.append(contentsOf: utf8)
        }
        if written == nil {
            var value = value
            value.withUTF8 { utf8 in
                count(utf8.count)
                bytes.append(contentsOf: utf8)
            }
        }
    }

    mutating func payload(_ value: [UInt8]) {
        count(value.count)
        bytes.append(contentsOf: value)
    }

    /// An optional value: a presence byte, then the value.
    mutating func optional<T>(_ value: T?, _ write: (inout BinaryWriter, T) -> Void) {
        guard let value else { return byte(0) }
        byte(1)
        write(&self, value)
    }

    mutating func payload(_ value: [UInt8]?) { optional(value) { $0.payload($1) } }

    mutating func duration(_ value: Duration) { signed(value.nanoseconds) }

    mutating func duration(_ value: Duration?) { optional(value) { $0.duration($1) } }

    mutating func timestamp(_ value: Timestamp) { signed(value.nanosecondsSinceEpoch) }
}
