extension ExecutionState {
    /// The run's value of `attribute`; nil when the run has none (an open run's CloseTime, a
    /// custom attribute it never set).
    func searchAttributeValue(_ attribute: VisibilityQuery.Attribute) -> SearchAttributeValue? {
        switch attribute {
        case .predefined(let p):
            switch p {
            case .workflowID: return .keyword(key.workflowID)
            case .runID: return .keyword(key.runID)
            case .workflowType: return .keyword(workflowType)
            case .executionStatus: return .keyword(status.description)
            case .startTime: return .datetime(startTime)
            case .closeTime: return closeTime.map { .datetime($0) }
            // When the first workflow task was due: the start plus a start delay or cron backoff.
            case .executionTime: return .datetime(executionTime)
            case .executionDuration: return closeTime.map { .int(max(0, $0.duration(since: executionTime).nanoseconds)) }
            case .taskQueue: return .keyword(taskQueue)
            case .historyLength: return .int(historyLength)
            // Spool has no child workflows yet: every run is its own root and has no parent.
            case .parentWorkflowID, .parentRunID: return nil
            case .rootWorkflowID: return .keyword(key.workflowID)
            case .rootRunID: return .keyword(key.runID)
            }
        case .custom(let name, let type):
            return searchAttributes[name].flatMap { SearchAttributeValue(decoding: $0, as: type) }
        }
    }
}

extension VisibilityQuery.Predicate {
    /// Whether `state` meets the condition: true, false, or nil for unknown (SQL's three-valued
    /// logic: a comparison with a missing value is unknown, and NOT of unknown is unknown).
    func evaluate(_ state: ExecutionState) -> Bool? {
        switch self {
        case .and(let a, let b):
            let left = a.evaluate(state)
            if left == false { return false }
            let right = b.evaluate(state)
            if right == false { return false }
            return left == nil || right == nil ? nil : true
        case .or(let a, let b):
            let left = a.evaluate(state)
            if left == true { return true }
            let right = b.evaluate(state)
            if right == true { return true }
            return left == nil || right == nil ? nil : false
        case .not(let inner):
            return inner.evaluate(state).map { !$0 }
        case .compare(let attribute, let comparison, let value):
            guard let actual = state.searchAttributeValue(attribute) else { return nil }
            return Self.compare(actual, comparison, value)
        case .oneOf(let attribute, let values, let negated):
            guard let actual = state.searchAttributeValue(attribute) else { return nil }
            let found = values.contains { Self.compare(actual, .equal, $0) == true }
            return found != negated
        case .between(let attribute, let low, let high, let negated):
            guard let actual = state.searchAttributeValue(attribute),
                  let above = Self.compare(actual, .greaterOrEqual, low),
                  let below = Self.compare(actual, .lessOrEqual, high) else { return nil }
            return (above && below) != negated
        case .startsWith(let attribute, let prefix, let negated):
            guard case .keyword(let actual)? = state.searchAttributeValue(attribute) else { return nil }
            return actual.utf8.starts(with: prefix.utf8) != negated
        case .isNull(let attribute, let negated):
            return (state.searchAttributeValue(attribute) == nil) != negated
        }
    }

    /// `actual` (the run's value) against `expected` (the query's, already of the attribute's
    /// type); nil when the two cannot be compared.
    static func compare(_ actual: SearchAttributeValue, _ comparison: VisibilityQuery.Comparison,
                        _ expected: SearchAttributeValue) -> Bool? {
        switch (actual, expected) {
        case (.keywordList(let list), .keyword(let wanted)):
            switch comparison {
            case .equal: return list.contains(wanted)
            case .notEqual: return !list.contains(wanted)
            default: return nil
            }
        case (.text(let text), .text(let wanted)):
            let words = Set(TextTokens.words(of: text))
            let matches = TextTokens.words(of: wanted).allSatisfy(words.contains)
            switch comparison {
            case .equal: return matches
            case .notEqual: return !matches
            default: return nil
            }
        case (.keyword(let a), .keyword(let b)): return order(a.utf8.lexicographicallyPrecedes(b.utf8), a == b, comparison)
        case (.int(let a), .int(let b)): return order(a < b, a == b, comparison)
        case (.int(let a), .double(let b)): return order(Double(a) < b, Double(a) == b, comparison)
        case (.double(let a), .double(let b)): return order(a < b, a == b, comparison)
        case (.double(let a), .int(let b)): return order(a < Double(b), a == Double(b), comparison)
        case (.bool(let a), .bool(let b)): return order(!a && b, a == b, comparison)
        case (.datetime(let a), .datetime(let b)): return order(a < b, a == b, comparison)
        default: return nil
        }
    }

    private static func order(_ less: Bool, _ equal: Bool, _ comparison: VisibilityQuery.Comparison) -> Bool {
        switch comparison {
        case .equal: equal
        case .notEqual: !equal
        case .less: less
        case .lessOrEqual: less || equal
        case .greater: !less && !equal
        case .greaterOrEqual: !less
        }
    }
}

extension VisibilityQuery {
    /// Whether `state` matches (unknown does not).
    func matches(_ state: ExecutionState) -> Bool { filter.map { $0.evaluate(state) == true } ?? true }

    /// Where a run sorts in the query's order: the ORDER BY keys' values (nanoseconds, nil when
    /// the run has none), then newest start first, then run id and workflow id, so the order is
    /// total and a page token can name a position in it.
    struct SortKey: Sendable, Equatable {
        var values: [Int64?]
        var startTime: Int64
        var runID: String
        var workflowID: String
    }

    func sortKey(_ state: ExecutionState) -> SortKey {
        SortKey(values: orderBy.map { ordering in
                    if case .datetime(let t)? = state.searchAttributeValue(ordering.attribute) { t.nanosecondsSinceEpoch } else { nil }
                },
                startTime: state.startTime.nanosecondsSinceEpoch, runID: state.key.runID, workflowID: state.key.workflowID)
    }

    /// Whether `a` comes before `b`. Runs without a value of an ORDER BY key come after those
    /// with one, in either direction.
    func precedes(_ a: SortKey, _ b: SortKey) -> Bool {
        for (index, ordering) in orderBy.enumerated() {
            switch (a.values[index], b.values[index]) {
            case let (x?, y?) where x != y: return ordering.descending ? x > y : x < y
            case (.some, nil): return true
            case (nil, .some): return false
            default: continue
            }
        }
        if a.startTime != b.startTime { return a.startTime > b.startTime }
        if a.runID != b.runID { return a.runID.utf8.lexicographicallyPrecedes(b.runID.utf8) }
        return a.workflowID.utf8.lexicographicallyPrecedes(b.workflowID.utf8)
    }
}

extension SearchAttributeValue {
    /// A search attribute's value as SDKs send it: a JSON payload (`"text"`, `12`, `1.5`, `true`,
    /// an RFC 3339 string for datetimes, a list of strings for KeywordList), read as `type`.
    /// nil when the payload does not hold a value of that type (it then matches no comparison,
    /// like a missing value), or holds JSON null.
    init?(decoding payload: Payload, as type: IndexedValueType) {
        var parser = JSONScalarParser(bytes: payload.data)
        guard let json = parser.parseDocument() else { return nil }
        switch (type, json) {
        case (.text, .string(let s)): self = .text(s)
        case (.keyword, .string(let s)): self = .keyword(s)
        case (.int, .number(let n)):
            guard let value = Int64(exactly: n) else { return nil }
            self = .int(value)
        case (.double, .number(let n)): self = .double(n)
        case (.bool, .bool(let b)): self = .bool(b)
        case (.datetime, .string(let s)):
            guard let time = RFC3339.parse(s) else { return nil }
            self = .datetime(time)
        case (.keywordList, .array(let items)):
            var strings: [String] = []
            for item in items {
                guard case .string(let s) = item else { return nil }
                strings.append(s)
            }
            guard !strings.isEmpty else { return nil }
            self = .keywordList(strings)
        case (.keywordList, .string(let s)): self = .keywordList([s])
        default: return nil
        }
    }
}

/// The JSON a search attribute payload holds: a string, number, bool, null, or an array of those.
/// Objects are not search attribute values and do not parse.
struct JSONScalarParser {
    indirect enum Value { case string(String), number(Double), bool(Bool), null, array([Value]) }

    let bytes: [UInt8]
    var i = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// The whole input as one value; nil when it is not exactly one.
    mutating func parseDocument() -> Value? {
        guard let value = parseValue(depth: 0) else { return nil }
        skipSpace()
        guard i == bytes.count else { return nil }
        if case .null = value { return nil }
        return value
    }

    private mutating func skipSpace() {
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
    }

    private mutating func parseValue(depth: Int) -> Value? {
        skipSpace()
        guard i < bytes.count, depth < 2 else { return nil }
        switch bytes[i] {
        case UInt8(ascii: "\""): return parseString().map { .string($0) }
        case UInt8(ascii: "["):
            i += 1
            var items: [Value] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            while true {
                guard let item = parseValue(depth: depth + 1) else { return nil }
                items.append(item)
                skipSpace()
                guard i < bytes.count else { return nil }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                } else if bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    return .array(items)
                } else {
                    return nil
                }
            }
        case UInt8(ascii: "t"): return literal("true", .bool(true))
        case UInt8(ascii: "f"): return literal("false", .bool(false))
        case UInt8(ascii: "n"): return literal("null", .null)
        default:
            let start = i
            while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
            guard i > start, let text = String(validating: bytes[start..<i], as: UTF8.self), let n = Double(text), n.isFinite else { return nil }
            return .number(n)
        }
    }

    private mutating func literal(_ word: String, _ value: Value) -> Value? {
        let w = Array(word.utf8)
        guard bytes.count - i >= w.count, Array(bytes[i..<(i + w.count)]) == w else { return nil }
        i += w.count
        return value
    }

    private mutating func parseString() -> String? {
        i += 1
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        func flush() -> Bool {
            guard !raw.isEmpty else { return true }
            guard let text = String(validating: raw, as: UTF8.self) else { return false }
            scalars.append(contentsOf: text.unicodeScalars)
            raw.removeAll()
            return true
        }
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                guard flush() else { return nil }
                return String(scalars)
            }
            if b == UInt8(ascii: "\\") {
                guard flush(), i + 1 < bytes.count else { return nil }
                let e = bytes[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{c}")
                case UInt8(ascii: "u"):
                    guard let unit = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(unit) {
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { return nil }
                        i += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low),
                              let scalar = Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)) else { return nil }
                        scalars.append(scalar)
                    } else {
                        guard let scalar = Unicode.Scalar(unit) else { return nil }
                        scalars.append(scalar)
                    }
                default: return nil
                }
                continue
            }
            guard b >= 0x20 else { return nil }
            raw.append(b)
            i += 1
        }
        return nil
    }

    private mutating func hex4() -> UInt32? {
        guard i + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for b in bytes[i..<(i + 4)] {
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: return nil
            }
            value = value << 4 | digit
        }
        i += 4
        return value
    }
}
