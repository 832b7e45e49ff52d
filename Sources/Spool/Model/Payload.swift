/// One value the engine stores and hands back byte for byte without looking at it: its data and
/// the metadata that says how to read the data (Temporal's `temporal.api.common.v1.Payload`).
///
/// SDKs put the encoding in `metadata["encoding"]` (`binary/plain`, `json/plain`,
/// `binary/null`, `binary/protobuf`, `json/protobuf`, …) and may add more keys (a codec's
/// encryption key id, a message type); the engine keeps them all. A payload with no metadata
/// costs no dictionary allocation.
public struct Payload: Hashable, Sendable {
    /// How to read ``data``: `encoding` and whatever else the writer recorded. Keys are compared
    /// exactly; the engine keeps them in any order and writes them sorted.
    public var metadata: [String: [UInt8]]
    /// The value's bytes.
    public var data: [UInt8]

    /// A payload with the given metadata and data.
    @inlinable
    public init(metadata: [String: [UInt8]] = [:], data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }

    /// The `encoding` metadata key.
    public static let encodingKey = "encoding"

    /// Bytes for an application to interpret, with `encoding: binary/plain` (what Temporal's SDKs
    /// write for a byte array).
    public static func binary(_ data: [UInt8]) -> Payload {
        Payload(metadata: [encodingKey: Array("binary/plain".utf8)], data: data)
    }

    /// UTF-8 JSON text, with `encoding: json/plain` (what Temporal's SDKs write for most values).
    /// The engine does not check that `json` is JSON.
    public static func json(_ json: String) -> Payload {
        Payload(metadata: [encodingKey: Array("json/plain".utf8)], data: Array(json.utf8))
    }

    /// A string as JSON (a quoted, escaped JSON string), with `encoding: json/plain`: how an SDK
    /// encodes a string argument.
    public static func jsonString(_ string: String) -> Payload {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return json(out + "\"")
    }

    /// The `encoding` metadata as text; nil when absent or not UTF-8.
    public var encoding: String? {
        guard let bytes = metadata[Self.encodingKey] else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// A list of values, such as the arguments of a workflow or the results of an activity
/// (Temporal's `temporal.api.common.v1.Payloads`). Fields of type `Payloads?` are nil when unset;
/// an empty list is a set field with no values.
public typealias Payloads = [Payload]

extension Array where Element == Payload {
    /// One `binary/plain` payload holding `data` (see ``Payload/binary(_:)``).
    public static func binary(_ data: [UInt8]) -> Payloads { [Payload.binary(data)] }

    /// One `binary/plain` payload holding the UTF-8 bytes of `text`.
    public static func binary(_ text: String) -> Payloads { [Payload.binary([UInt8](text.utf8))] }

    /// One `json/plain` payload holding `json` (see ``Payload/json(_:)``).
    public static func json(_ json: String) -> Payloads { [Payload.json(json)] }

    /// The data of the only payload; nil when there is not exactly one. The usual way to read a
    /// value written with ``binary(_:)-(_)`` (its metadata is not checked).
    public var singleData: [UInt8]? { count == 1 ? self[0].data : nil }
}

/// Values that travel with a call but are not its arguments, by key: context propagated by SDK
/// interceptors (tracing spans, auth tokens). Temporal's `temporal.api.common.v1.Header`.
public struct Header: Hashable, Sendable {
    /// The header's values by key.
    public var fields: [String: Payload]

    /// A header with `fields` (none by default).
    @inlinable
    public init(fields: [String: Payload] = [:]) { self.fields = fields }

    /// Whether the header has no fields.
    @inlinable
    public var isEmpty: Bool { fields.isEmpty }
}

/// What a user says about a workflow, an activity or a timer for people reading its history: a
/// one-line summary and longer details (Temporal's `temporal.api.sdk.v1.UserMetadata`; SDKs
/// write both as `json/plain` strings). Recorded on the event; the engine does not act on it.
public struct UserMetadata: Hashable, Sendable {
    /// A short description; nil when not given.
    public var summary: Payload?
    /// A longer description; nil when not given.
    public var details: Payload?

    /// User metadata.
    public init(summary: Payload? = nil, details: Payload? = nil) {
        self.summary = summary
        self.details = details
    }
}

extension Payload {
    /// Temporal's encoded nil (`encoding: binary/null`, no data), what an SDK writes for a nil value.
    public static let temporalNil = Payload(metadata: [encodingKey: Array("binary/null".utf8)], data: [])

    /// Whether this is Temporal's encoded nil or its encoded empty list (`json/plain` `[]`): the
    /// values that remove a key when upserted into a memo or search attributes (Temporal's
    /// `payload.MergeMapOfPayload`).
    public var isTemporalNilOrEmptyList: Bool {
        guard metadata.count == 1, let encoding = metadata[Self.encodingKey] else { return false }
        if encoding == Array("binary/null".utf8) { return data.isEmpty }
        if encoding == Array("json/plain".utf8) { return data == Array("[]".utf8) }
        return false
    }

    /// `current` with `upserted` merged in: a key of `upserted` replaces the same key of
    /// `current`, or removes it when its value ``isTemporalNilOrEmptyList``.
    static func merging(_ upserted: [String: Payload], into current: [String: Payload]) -> [String: Payload] {
        var merged = current
        for (key, value) in upserted {
            if value.isTemporalNilOrEmptyList { merged[key] = nil } else { merged[key] = value }
        }
        return merged
    }
}
