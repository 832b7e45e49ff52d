@testable import Spool

/// Any bytes as what a client sends to List and Count, picked by the first byte (`selector % 3`):
/// 0 a visibility query (`VisibilityQuery`, against the predefined attributes and one custom
/// attribute of each type), then, when it parses, evaluated against a fixed run; 1 a search
/// attribute value as an SDK encodes it (`SearchAttributeValue(decoding:as:)`, the JSON reader),
/// for every type; 2 a list page token (`VisibilityPageToken(serialized:…)`), which must
/// round-trip. Each must return or throw, never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVisibilityQuery(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let selector = data[0]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    switch selector % 3 {
    case 0:
        let text = String(decoding: bytes, as: UTF8.self)
        guard let query = try? VisibilityQuery(text, customAttributes: VisibilityFuzzSeeds.custom) else { return 0 }
        _ = query.matches(VisibilityFuzzSeeds.run)
        _ = query.sortKey(VisibilityFuzzSeeds.run)
    case 1:
        for type in IndexedValueType.allCases {
            _ = SearchAttributeValue(decoding: Payload.json(String(decoding: bytes, as: UTF8.self)), as: type)
        }
    default:
        for keys in 0...2 {
            guard let token = try? VisibilityPageToken(serialized: bytes, fingerprint: fingerprint(of: bytes), keys: keys) else { continue }
            let again = try? VisibilityPageToken(serialized: token.serialized, fingerprint: token.fingerprint, keys: keys)
            precondition(again?.position == token.position, "a list page token does not round-trip")
        }
    }
    return 0
}

/// The fingerprint a token's bytes claim (so the decoder proper is reached), 0 when too short.
/// (The token is a version byte, then the fingerprint as a LEB128 varint.)
private func fingerprint(of bytes: [UInt8]) -> UInt64 {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    for byte in bytes.dropFirst().prefix(10) {
        value |= UInt64(byte & 0x7F) << shift
        if byte & 0x80 == 0 { return value }
        shift += 7
    }
    return 0
}

enum VisibilityFuzzSeeds {
    static let custom: [String: IndexedValueType] = [
        "CustomKeyword": .keyword, "CustomText": .text, "CustomInt": .int, "CustomDouble": .double,
        "CustomBool": .bool, "CustomDatetime": .datetime, "CustomKeywordList": .keywordList,
    ]

    static let run: ExecutionState = {
        let key = ExecutionKey(namespace: "default", workflowID: "order-1", runID: "5b6d2a3e-0000-4000-8000-000000000001")
        let started = WorkflowExecutionStartedEventAttributes(
            workflowType: "order", taskQueue: "q", input: nil, workflowRunTimeout: nil, workflowTaskTimeout: .seconds(10),
            continuedExecutionRunID: "", firstExecutionRunID: key.runID, identity: "", requestID: "", attempt: 1)
        var state = ExecutionState(key: key, started: started, startTime: Timestamp(nanosecondsSinceEpoch: 1_764_547_200_000_000_000))
        state.searchAttributes = ["CustomKeyword": .json("\"c-42\""), "CustomInt": .json("7"), "CustomKeywordList": .json("[\"a\",\"b\"]"),
                                  "CustomText": .json("\"leave at the door\""), "CustomDatetime": .json("\"2026-12-01T00:00:00Z\"")]
        return state
    }()

    static func seeds() -> [[UInt8]] {
        let queries = [
            "WorkflowType = 'order' AND ExecutionStatus = 'Running' AND StartTime > '2026-12-01T00:00:00Z'",
            "(WorkflowId IN ('a','b') OR NOT CloseTime IS NULL) ORDER BY StartTime DESC",
            "ExecutionDuration BETWEEN '1m' AND 3600000000000 GROUP BY ExecutionStatus",
            "`CustomKeyword` STARTS_WITH \"c-\" AND CustomInt != -1.5e2 AND CustomKeywordList = 'a'",
            "CustomText = 'door' OR CustomBool = true OR CustomDatetime <= 1764547200000000000",
        ]
        var seeds = queries.map { [UInt8(0)] + Array($0.utf8) }
        seeds += ["\"a\\u00e9\"", "[\"x\",\"y\"]", "-1.5e3", "true", "\"2026-12-24T18:00:00.5+01:00\""].map { [UInt8(1)] + Array($0.utf8) }
        let token = VisibilityPageToken(fingerprint: 42, position: .init(values: [7, nil], startTime: 9, runID: "r", workflowID: "w"))
        seeds.append([2] + token.serialized)
        return seeds
    }
}
