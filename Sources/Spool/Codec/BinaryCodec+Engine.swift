import SpoolLog

// The engine reads its records, checkpoints and tokens with SpoolLog's BinaryReader and
// BinaryWriter; these are the engine's own types on top of them.

extension SpoolError: BinaryDecodingFailure {
    /// Bytes that do not decode are a ``SpoolError/Code/corruptRecord``.
    package static func undecodable(_ message: String) -> SpoolError {
        SpoolError(.corruptRecord, message)
    }
}

extension BinaryReader {
    /// A ``Duration`` as signed varint nanoseconds.
    /// - Throws: as ``BinaryReader/signed()``.
    mutating func duration() throws(ReadError) -> Duration { .nanoseconds(try signed()) }

    /// An optional ``duration()`` after a presence flag.
    mutating func optionalDuration() throws(ReadError) -> Duration? { try optional { r throws(ReadError) in try r.duration() } }

    /// A ``Timestamp`` as signed varint nanoseconds since the epoch.
    /// - Throws: as ``BinaryReader/signed()``.
    mutating func timestamp() throws(ReadError) -> Timestamp { Timestamp(nanosecondsSinceEpoch: try signed()) }
}

extension BinaryWriter {
    /// A ``Duration`` as signed varint nanoseconds.
    mutating func duration(_ value: Duration) { signed(value.nanoseconds) }

    /// An optional ``duration(_:)-(Duration)`` after a presence byte.
    mutating func duration(_ value: Duration?) { optional(value) { $0.duration($1) } }

    /// A ``Timestamp`` as signed varint nanoseconds since the epoch.
    mutating func timestamp(_ value: Timestamp) { signed(value.nanosecondsSinceEpoch) }
}
