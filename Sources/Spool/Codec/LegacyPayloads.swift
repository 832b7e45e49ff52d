/// Reads a payload field of the flat layout (``ValueLayout/flat``), where the engine kept one
/// byte string and left metadata to its callers.
///
/// Two kinds of callers wrote those bytes, and this tells them apart the way `spool serve` did
/// when it read them back:
///
/// - `spool serve` stored Temporal's whole `temporal.api.common.v1.Payloads` message, serialized
///   (its "envelope"). Bytes that parse strictly as that message — only its known fields, each
///   payload with an `encoding` metadata entry (every Temporal SDK writes one), nothing left over —
///   are those payloads, metadata included. Empty bytes are an empty message: no payloads.
/// - An in-process worker or a `spool` command stored its value's bytes. Anything else is one
///   `binary/plain` payload holding the bytes, which is what `spool serve` showed SDKs for them.
///
/// The proto reading here is the few wire-format rules those two messages need (varint tags,
/// length-delimited fields), so the engine does not depend on a protobuf library.
enum LegacyPayloads {
    static func payloads(fromFlatBytes bytes: [UInt8]) -> Payloads {
        if bytes.isEmpty { return [] }
        if let envelope = parseEnvelope(bytes[...]) { return envelope }
        return [.binary(bytes)]
    }

    private static func parseEnvelope(_ bytes: ArraySlice<UInt8>) -> Payloads? {
        var reader = WireReader(bytes: bytes)
        var payloads: Payloads = []
        while !reader.isAtEnd {
            guard let tag = reader.varint(), tag == 0x0A, let body = reader.lengthDelimited(),
                  let payload = parsePayload(body) else { return nil }
            payloads.append(payload)
        }
        return payloads.isEmpty ? nil : payloads
    }

    private static func parsePayload(_ bytes: ArraySlice<UInt8>) -> Payload? {
        var reader = WireReader(bytes: bytes)
        var metadata: [String: [UInt8]] = [:]
        var data: [UInt8] = []
        while !reader.isAtEnd {
            guard let tag = reader.varint(), let body = reader.lengthDelimited() else { return nil }
            switch tag {
            case 0x0A:   // metadata: map<string, bytes> entry
                var entry = WireReader(bytes: body)
                var key: String?
                var value: [UInt8] = []
                while !entry.isAtEnd {
                    guard let entryTag = entry.varint(), let field = entry.lengthDelimited() else { return nil }
                    switch entryTag {
                    case 0x0A:
                        guard let text = String(validating: field, as: UTF8.self) else { return nil }
                        key = text
                    case 0x12: value = Array(field)
                    default: return nil
                    }
                }
                metadata[key ?? ""] = value
            case 0x12:   // data
                data = Array(body)
            default:
                return nil
            }
        }
        guard metadata[Payload.encodingKey] != nil else { return nil }
        return Payload(metadata: metadata, data: data)
    }

    private struct WireReader {
        var bytes: ArraySlice<UInt8>
        var isAtEnd: Bool { bytes.isEmpty }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while let byte = bytes.popFirst() {
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
                if shift > 63 { return nil }
            }
            return nil
        }

        mutating func lengthDelimited() -> ArraySlice<UInt8>? {
            guard let length = varint(), length <= UInt64(bytes.count) else { return nil }
            let body = bytes.prefix(Int(length))
            bytes = bytes.dropFirst(Int(length))
            return body
        }
    }
}
