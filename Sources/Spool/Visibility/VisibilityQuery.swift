/// A parsed visibility query: the filter language of Temporal's List and Count calls, such as
/// `WorkflowType = 'order' AND ExecutionStatus = 'Running' AND StartTime > '2026-12-01T00:00:00Z'`.
///
/// The language: comparisons `=`, `!=` (or `<>`), `<`, `<=`, `>`, `>=`; `IN (…)` and `NOT IN (…)`;
/// `BETWEEN … AND …` and `NOT BETWEEN`; `STARTS_WITH` and `NOT STARTS_WITH` on keywords;
/// `IS NULL` and `IS NOT NULL`; `AND`, `OR`, `NOT` and parentheses; then optionally `GROUP BY
/// ExecutionStatus` (Count only) and `ORDER BY` datetime attributes with `ASC` or `DESC`.
/// Keywords are case-insensitive; attribute names are not and may be quoted in backticks.
/// Strings take single or double quotes (a quote inside is doubled or escaped with `\`);
/// datetimes are RFC 3339 strings or nanoseconds since the epoch; `ExecutionStatus` takes a
/// status name (`'Running'`) or its number; `ExecutionDuration` takes nanoseconds or a duration
/// such as `'1h30m'` or `'00:05:00'`.
///
/// Which operators apply depends on the attribute's type, as in Temporal: Text takes only `=`
/// and `!=` (every word of the value among the attribute's words); KeywordList takes `=`, `!=`
/// (contains, does not contain), `IN` and `NOT IN`; `BETWEEN` is for Int, Double, Datetime and
/// Keyword; `STARTS_WITH` for Keyword.
///
/// Missing values follow SQL: a comparison with an attribute a run does not have is neither
/// true nor false, so neither `X = 'a'` nor `X != 'a'` nor `NOT X = 'a'` matches it; `IS NULL`
/// does.
public struct VisibilityQuery: Sendable, CustomStringConvertible {
    /// The query as given.
    public let text: String
    /// The condition runs must meet; nil matches every run.
    let filter: Predicate?
    /// Sort keys, most significant first; empty for the default order (newest start first).
    let orderBy: [Ordering]
    /// The attribute Count groups by, if any (only `ExecutionStatus`).
    let groupBy: PredefinedSearchAttribute?

    /// Parses `text` against the predefined attributes and `customAttributes` (a namespace's
    /// registered search attributes by name).
    /// - Throws: ``SpoolError/Code/invalidArgument`` naming the position (1-based column) and
    ///   the problem: malformed syntax, an unknown attribute, an operator the attribute's type
    ///   does not take, a value of the wrong type.
    public init(_ text: String, customAttributes: [String: IndexedValueType] = [:]) throws(SpoolError) {
        var parser = QueryParser(text: text, customAttributes: customAttributes)
        let parsed = try parser.parseQuery()
        self.text = text
        filter = parsed.filter
        orderBy = parsed.orderBy
        groupBy = parsed.groupBy
    }

    public var description: String { text }

    /// Nanoseconds of a duration written as queries on ExecutionDuration take it: Go-style
    /// (`1h30m`, `500ms`, `7d`, `2w`) or `hh:mm:ss`; nil when it is neither.
    public static func parseDuration(_ text: String) -> Int64? { QueryDuration.parse(text) }

    /// Temporal's predefined attributes a query may name without registering them, with their
    /// types (`WorkflowId`, `StartTime`, …).
    public static var predefinedAttributes: [(name: String, type: IndexedValueType)] {
        PredefinedSearchAttribute.allCases.map { ($0.rawValue, $0.type) }
    }

    /// An attribute a query names: one of Temporal's predefined attributes, or a custom one.
    enum Attribute: Hashable, Sendable, CustomStringConvertible {
        case predefined(PredefinedSearchAttribute)
        case custom(name: String, type: IndexedValueType)

        var type: IndexedValueType {
            switch self {
            case .predefined(let p): p.type
            case .custom(_, let type): type
            }
        }

        var description: String {
            switch self {
            case .predefined(let p): p.rawValue
            case .custom(let name, _): name
            }
        }
    }

    /// A comparison operator.
    enum Comparison: String, Sendable {
        case equal = "="
        case notEqual = "!="
        case less = "<"
        case lessOrEqual = "<="
        case greater = ">"
        case greaterOrEqual = ">="
    }

    /// A condition on runs.
    indirect enum Predicate: Sendable {
        case and(Predicate, Predicate)
        case or(Predicate, Predicate)
        case not(Predicate)
        case compare(Attribute, Comparison, SearchAttributeValue)
        /// `IN` (`negated`: `NOT IN`).
        case oneOf(Attribute, [SearchAttributeValue], negated: Bool)
        /// `BETWEEN low AND high`, both ends included (`negated`: `NOT BETWEEN`).
        case between(Attribute, SearchAttributeValue, SearchAttributeValue, negated: Bool)
        case startsWith(Attribute, String, negated: Bool)
        /// `IS NULL` (`negated`: `IS NOT NULL`).
        case isNull(Attribute, negated: Bool)
    }

    /// One `ORDER BY` key.
    struct Ordering: Sendable {
        var attribute: Attribute
        var descending: Bool
    }
}
