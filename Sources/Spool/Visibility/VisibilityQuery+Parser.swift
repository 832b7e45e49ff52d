/// A token of the query language, with the 1-based column (in Unicode scalars) where it starts.
struct QueryToken: Sendable {
    enum Kind: Sendable, Equatable {
        /// A bare word: an attribute name or a keyword (AND, IN, …), told apart by the parser.
        case word(String)
        /// A backtick-quoted attribute name.
        case quotedName(String)
        case string(String)
        /// Digits with an optional sign, fraction and exponent, kept as written.
        case number(String)
        case symbol(String)
        case end
    }

    var kind: Kind
    var column: Int

    /// How an error names the token.
    var quoted: String {
        switch kind {
        case .word(let w): "'\(w)'"
        case .quotedName(let n): "`\(n)`"
        case .string(let s): "the string '\(s)'"
        case .number(let n): "the number \(n)"
        case .symbol(let s): "'\(s)'"
        case .end: "the end of the query"
        }
    }
}

/// Splits a query into tokens.
struct QueryLexer {
    private let scalars: [Unicode.Scalar]
    private var i = 0

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    static func error(_ column: Int, _ problem: String) -> SpoolError {
        SpoolError(.invalidArgument, "invalid query: \(problem) at column \(column)")
    }

    mutating func tokens() throws(SpoolError) -> [QueryToken] {
        var result: [QueryToken] = []
        while true {
            while i < scalars.count, scalars[i].properties.isWhitespace { i += 1 }
            let column = i + 1
            guard i < scalars.count else {
                result.append(QueryToken(kind: .end, column: column))
                return result
            }
            let c = scalars[i]
            if c == "'" || c == "\"" {
                result.append(QueryToken(kind: .string(try quoted(by: c, column: column)), column: column))
            } else if c == "`" {
                let name = try quoted(by: c, column: column)
                guard !name.isEmpty else { throw Self.error(column, "an empty `` name") }
                result.append(QueryToken(kind: .quotedName(name), column: column))
            } else if isDigit(c) || ((c == "-" || c == "+" || c == ".") && i + 1 < scalars.count && (isDigit(scalars[i + 1]) || scalars[i + 1] == ".")) {
                result.append(QueryToken(kind: .number(number()), column: column))
            } else if isWordStart(c) {
                var word = ""
                while i < scalars.count, isWordStart(scalars[i]) || isDigit(scalars[i]) || scalars[i] == "." {
                    word.unicodeScalars.append(scalars[i])
                    i += 1
                }
                result.append(QueryToken(kind: .word(word), column: column))
            } else {
                let two = i + 1 < scalars.count ? String(c) + String(scalars[i + 1]) : ""
                if ["!=", "<>", "<=", ">="].contains(two) {
                    i += 2
                    result.append(QueryToken(kind: .symbol(two == "<>" ? "!=" : two), column: column))
                } else if "=<>(),".unicodeScalars.contains(c) {
                    i += 1
                    result.append(QueryToken(kind: .symbol(String(c)), column: column))
                } else {
                    throw Self.error(column, "unexpected character '\(c)'")
                }
            }
        }
    }

    private func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
    private func isWordStart(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" || (c.value >= 0x80 && c.properties.isAlphabetic)
    }

    /// A quoted string or name; the quote is doubled or escaped with a backslash inside.
    private mutating func quoted(by quote: Unicode.Scalar, column: Int) throws(SpoolError) -> String {
        i += 1
        var value = ""
        while i < scalars.count {
            let c = scalars[i]
            if c == "\\", i + 1 < scalars.count {
                let next = scalars[i + 1]
                switch next {
                case "n": value += "\n"
                case "t": value += "\t"
                case "r": value += "\r"
                case "0": value += "\0"
                default: value.unicodeScalars.append(next)
                }
                i += 2
            } else if c == quote {
                if i + 1 < scalars.count, scalars[i + 1] == quote {
                    value.unicodeScalars.append(quote)
                    i += 2
                } else {
                    i += 1
                    return value
                }
            } else {
                value.unicodeScalars.append(c)
                i += 1
            }
        }
        throw Self.error(column, "a \(quote) quote that is never closed")
    }

    private mutating func number() -> String {
        var text = ""
        func take(_ accept: (Unicode.Scalar) -> Bool) {
            while i < scalars.count, accept(scalars[i]) {
                text.unicodeScalars.append(scalars[i])
                i += 1
            }
        }
        if scalars[i] == "-" || scalars[i] == "+" {
            text.unicodeScalars.append(scalars[i])
            i += 1
        }
        take(isDigit)
        if i < scalars.count, scalars[i] == "." {
            text += "."
            i += 1
            take(isDigit)
        }
        if i < scalars.count, scalars[i] == "e" || scalars[i] == "E" {
            text.unicodeScalars.append(scalars[i])
            i += 1
            if i < scalars.count, scalars[i] == "-" || scalars[i] == "+" {
                text.unicodeScalars.append(scalars[i])
                i += 1
            }
            take(isDigit)
        }
        // Letters glued to a number ("10abc") stay with it, so the value check names all of it.
        take { isWordStart($0) || isDigit($0) }
        return text
    }
}

/// Recursive descent over the tokens: `query := [or] [GROUP BY name] [ORDER BY name [ASC|DESC]
/// {, …}]`, `or := and {OR and}`, `and := not {AND not}`, `not := NOT not | '(' or ')' | condition`.
struct QueryParser {
    private let text: String
    private let customAttributes: [String: IndexedValueType]
    private var tokens: [QueryToken] = []
    private var position = 0
    /// How deep parentheses and NOTs nest; bounded so a hostile query cannot exhaust the stack.
    private var depth = 0
    static let maximumDepth = 100

    init(text: String, customAttributes: [String: IndexedValueType]) {
        self.text = text
        self.customAttributes = customAttributes
    }

    typealias Parsed = (filter: VisibilityQuery.Predicate?, orderBy: [VisibilityQuery.Ordering], groupBy: PredefinedSearchAttribute?)

    mutating func parseQuery() throws(SpoolError) -> Parsed {
        var lexer = QueryLexer(text)
        tokens = try lexer.tokens()
        var filter: VisibilityQuery.Predicate?
        if !isKeyword("GROUP"), !isKeyword("ORDER"), current.kind != .end {
            filter = try parseOr()
        }
        var groupBy: PredefinedSearchAttribute?
        if isKeyword("GROUP") {
            let groupColumn = current.column
            advance()
            try expectKeyword("BY")
            let attribute = try parseAttribute()
            guard case .predefined(.executionStatus) = attribute else {
                throw error(groupColumn, "GROUP BY takes only ExecutionStatus, not \(attribute)")
            }
            groupBy = .executionStatus
            if current.kind == .symbol(",") { throw error(current.column, "GROUP BY takes a single attribute") }
        }
        var orderBy: [VisibilityQuery.Ordering] = []
        if isKeyword("ORDER") {
            advance()
            try expectKeyword("BY")
            repeat {
                if !orderBy.isEmpty { advance() }
                let column = current.column
                let attribute = try parseAttribute()
                guard attribute.type == .datetime else {
                    throw error(column, "ORDER BY takes datetime attributes (such as StartTime or CloseTime), and \(attribute) is \(attribute.type)")
                }
                var descending = false
                if isKeyword("DESC") {
                    descending = true
                    advance()
                } else if isKeyword("ASC") {
                    advance()
                }
                orderBy.append(.init(attribute: attribute, descending: descending))
            } while current.kind == .symbol(",")
        }
        guard current.kind == .end else {
            if isKeyword("LIMIT") { throw error(current.column, "LIMIT is not supported (use the page size)") }
            throw error(current.column, "expected AND, OR, GROUP BY, ORDER BY or the end of the query, found \(current.quoted)")
        }
        return (filter, orderBy, groupBy)
    }

    // MARK: - Expressions

    private mutating func parseOr() throws(SpoolError) -> VisibilityQuery.Predicate {
        var left = try parseAnd()
        while isKeyword("OR") {
            advance()
            left = .or(left, try parseAnd())
        }
        return left
    }

    private mutating func parseAnd() throws(SpoolError) -> VisibilityQuery.Predicate {
        var left = try parseNot()
        while isKeyword("AND") {
            advance()
            left = .and(left, try parseNot())
        }
        return left
    }

    private mutating func parseNot() throws(SpoolError) -> VisibilityQuery.Predicate {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else {
            throw error(current.column, "the query nests more than \(Self.maximumDepth) levels deep")
        }
        if isKeyword("NOT") {
            advance()
            return .not(try parseNot())
        }
        if current.kind == .symbol("(") {
            let open = current.column
            advance()
            let inner = try parseOr()
            guard current.kind == .symbol(")") else {
                throw error(current.column, "expected ')' to close the '(' at column \(open), found \(current.quoted)")
            }
            advance()
            return inner
        }
        return try parseCondition()
    }

    private mutating func parseCondition() throws(SpoolError) -> VisibilityQuery.Predicate {
        let attributeColumn = current.column
        let attribute = try parseAttribute()
        let operatorToken = current
        let type = attribute.type
        func refuse(_ op: String) -> SpoolError {
            error(operatorToken.column, "operator '\(op)' is not supported for \(attribute), a \(type) attribute")
        }
        if case .symbol(let symbol) = operatorToken.kind, let comparison = VisibilityQuery.Comparison(rawValue: symbol) {
            advance()
            switch type {
            case .text, .keywordList:
                guard comparison == .equal || comparison == .notEqual else { throw refuse(symbol) }
            default:
                break
            }
            return .compare(attribute, comparison, try parseValue(for: attribute))
        }
        var negated = false
        if isKeyword("NOT") {
            negated = true
            advance()
        }
        if isKeyword("IN") {
            advance()
            guard type != .text else { throw refuse(negated ? "NOT IN" : "IN") }
            guard current.kind == .symbol("(") else { throw error(current.column, "expected '(' after IN, found \(current.quoted)") }
            advance()
            var values: [SearchAttributeValue] = []
            repeat {
                if !values.isEmpty { advance() }
                values.append(try parseValue(for: attribute))
            } while current.kind == .symbol(",")
            guard current.kind == .symbol(")") else {
                throw error(current.column, "expected ',' or ')' in the IN list, found \(current.quoted)")
            }
            advance()
            return .oneOf(attribute, values, negated: negated)
        }
        if isKeyword("BETWEEN") {
            advance()
            guard [.int, .double, .datetime, .keyword].contains(type) else { throw refuse(negated ? "NOT BETWEEN" : "BETWEEN") }
            let low = try parseValue(for: attribute)
            try expectKeyword("AND")
            let high = try parseValue(for: attribute)
            return .between(attribute, low, high, negated: negated)
        }
        if isKeyword("STARTS_WITH") {
            advance()
            guard type == .keyword else { throw refuse(negated ? "NOT STARTS_WITH" : "STARTS_WITH") }
            guard case .string(let prefix) = current.kind else {
                throw error(current.column, "STARTS_WITH takes a string, found \(current.quoted)")
            }
            advance()
            return .startsWith(attribute, prefix, negated: negated)
        }
        if !negated, isKeyword("IS") {
            advance()
            var isNot = false
            if isKeyword("NOT") {
                isNot = true
                advance()
            }
            guard isKeyword("NULL") else {
                throw error(current.column, "IS can only be followed by NULL or NOT NULL, found \(current.quoted)")
            }
            advance()
            return .isNull(attribute, negated: isNot)
        }
        if case .end = operatorToken.kind {
            throw error(attributeColumn, "\(attribute) is not followed by a condition (incomplete expression)")
        }
        throw error(current.column, "expected an operator after \(attribute) (=, !=, <, <=, >, >=, IN, BETWEEN, STARTS_WITH, IS), found \(current.quoted)")
    }

    // MARK: - Names and values

    /// An attribute name: predefined, or registered in `customAttributes`.
    private mutating func parseAttribute() throws(SpoolError) -> VisibilityQuery.Attribute {
        let token = current
        let name: String
        switch token.kind {
        case .word(let w): name = w
        case .quotedName(let n): name = n
        default: throw error(token.column, "expected a search attribute name, found \(token.quoted)")
        }
        advance()
        if let predefined = PredefinedSearchAttribute(rawValue: name) { return .predefined(predefined) }
        if let type = customAttributes[name] { return .custom(name: name, type: type) }
        if let reason = PredefinedSearchAttribute.unsupported[name] {
            throw error(token.column, "search attribute \(name) is not supported: \(reason)")
        }
        if case .word(let w) = token.kind, Self.reserved.contains(w.uppercased()) {
            throw error(token.column, "expected a search attribute name, found the keyword \(w.uppercased())")
        }
        throw error(token.column, "unknown search attribute \(name) (not predefined and not registered in this namespace)")
    }

    static let reserved: Set<String> = ["AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL", "STARTS_WITH", "ORDER", "GROUP",
                                        "BY", "ASC", "DESC", "LIMIT", "TRUE", "FALSE"]

    /// A literal, checked against and converted to the attribute's type.
    private mutating func parseValue(for attribute: VisibilityQuery.Attribute) throws(SpoolError) -> SearchAttributeValue {
        let token = current
        let literal: Literal
        switch token.kind {
        case .string(let s): literal = .string(s)
        case .number(let n):
            if let integer = Int64(n) {
                literal = .integer(integer)
            } else if let double = Double(n), double.isFinite {
                literal = .double(double)
            } else {
                throw error(token.column, "\(n) is not a number")
            }
        case .word(let w) where w.uppercased() == "TRUE": literal = .bool(true)
        case .word(let w) where w.uppercased() == "FALSE": literal = .bool(false)
        case .word(let w), .quotedName(let w):
            throw error(token.column, "expected a value, found the name \(w) (did you forget to quote '\(w)'?)")
        default:
            throw error(token.column, "expected a value, found \(token.quoted)")
        }
        advance()
        guard let value = literal.value(for: attribute) else {
            throw error(token.column, "\(literal) is not a valid value for \(attribute), a \(attribute.type) attribute\(literal.hint(for: attribute))")
        }
        return value
    }

    // MARK: - Tokens

    private var current: QueryToken { tokens[position] }
    private mutating func advance() { if position < tokens.count - 1 { position += 1 } }
    private func isKeyword(_ keyword: String) -> Bool {
        if case .word(let w) = current.kind { return w.uppercased() == keyword }
        return false
    }
    private mutating func expectKeyword(_ keyword: String) throws(SpoolError) {
        guard isKeyword(keyword) else { throw error(current.column, "expected \(keyword), found \(current.quoted)") }
        advance()
    }
    private func error(_ column: Int, _ problem: String) -> SpoolError { QueryLexer.error(column, problem) }
}

/// A literal as written, before it meets an attribute's type.
private enum Literal: CustomStringConvertible {
    case string(String)
    case integer(Int64)
    case double(Double)
    case bool(Bool)

    var description: String {
        switch self {
        case .string(let s): "'\(s)'"
        case .integer(let n): String(n)
        case .double(let d): String(d)
        case .bool(let b): b ? "true" : "false"
        }
    }

    func value(for attribute: VisibilityQuery.Attribute) -> SearchAttributeValue? {
        switch attribute {
        case .predefined(.executionStatus):
            switch self {
            case .string(let name): return WorkflowExecutionStatus(queryName: name).map { _ in .keyword(name) }
            case .integer(let n): return UInt8(exactly: n).flatMap(WorkflowExecutionStatus.init(rawValue:)).map { .keyword($0.description) }
            default: return nil
            }
        case .predefined(.executionDuration):
            switch self {
            case .integer(let n): return .int(n)
            case .string(let s): return QueryDuration.parse(s).map { .int($0) }
            default: return nil
            }
        default:
            break
        }
        switch (attribute.type, self) {
        case (.keyword, .string(let s)): return .keyword(s)
        case (.keywordList, .string(let s)): return .keyword(s)
        case (.text, .string(let s)):
            return TextTokens.words(of: s).isEmpty ? nil : .text(s)
        case (.int, .integer(let n)): return .int(n)
        case (.int, .double(let d)), (.double, .double(let d)): return .double(d)
        case (.double, .integer(let n)): return .double(Double(n))
        case (.bool, .bool(let b)): return .bool(b)
        case (.datetime, .string(let s)): return RFC3339.parse(s).map { .datetime($0) }
        case (.datetime, .integer(let n)): return .datetime(Timestamp(nanosecondsSinceEpoch: n))
        default: return nil
        }
    }

    func hint(for attribute: VisibilityQuery.Attribute) -> String {
        switch (attribute, attribute.type) {
        case (.predefined(.executionStatus), _):
            " (one of " + WorkflowExecutionStatus.allCases.map { "'\($0)'" }.joined(separator: ", ") + ")"
        case (.predefined(.executionDuration), _): " (nanoseconds, or a duration such as '1h30m' or '01:30:00')"
        case (_, .datetime): " (an RFC 3339 time such as '2026-12-01T00:00:00Z', or nanoseconds since the epoch)"
        case (_, .text): " (a string with at least one word)"
        case (_, .keyword), (_, .keywordList): " (a quoted string)"
        case (_, .bool): " (true or false)"
        default: ""
        }
    }
}

/// Durations in queries on ExecutionDuration: Go-style `1h30m`, `500ms`, `2d`, `1w` (units ns,
/// us, µs, ms, s, m, h, d, w) or `hh:mm:ss`.
enum QueryDuration {
    static func parse(_ text: String) -> Int64? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 3 {
            guard let h = Int64(parts[0]), let m = Int64(parts[1]), let s = Int64(parts[2]),
                  h >= 0, (0..<60).contains(m), (0..<60).contains(s) else { return nil }
            let (ns, overflow) = (h * 3600 + m * 60 + s).multipliedReportingOverflow(by: 1_000_000_000)
            return overflow ? nil : ns
        }
        let units: [String: Int64] = ["ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                                      "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000,
                                      "w": 604_800_000_000_000]
        var total: Int64 = 0
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let value = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix { !($0.isASCII && $0.isNumber) }
            guard let scale = units[unit.lowercased()] else { return nil }
            rest = rest.dropFirst(unit.count)
            let (product, overflow) = value.multipliedReportingOverflow(by: scale)
            guard !overflow else { return nil }
            let (sum, overflow2) = total.addingReportingOverflow(product)
            guard !overflow2 else { return nil }
            total = sum
        }
        return total
    }
}

/// The words of a Text value: runs of letters and digits, lowercased.
enum TextTokens {
    static func words(of text: String) -> [String] {
        var words: [String] = []
        var word = ""
        for c in text.lowercased() {
            if c.isLetter || c.isNumber {
                word.append(c)
            } else if !word.isEmpty {
                words.append(word)
                word = ""
            }
        }
        if !word.isEmpty { words.append(word) }
        return words
    }
}
