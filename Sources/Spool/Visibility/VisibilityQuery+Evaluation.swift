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
            // Runs start at once (no start delay or cron backoff yet): execution time is start time.
            case .executionTime: return .datetime(startTime)
            case .executionDuration: return closeTime.map { .int($0.duration(since: startTime).nanoseconds) }
            case .taskQueue: return .keyword(taskQueue)
            case .historyLength: return .int(historyLength)
            // Spool has no child workflows yet: every run is its own root and has no parent.
            case .parentWorkflowID, .parentRunID: return nil
            case .rootWorkflowID: return .keyword(key.workflowID)
            case .rootRunID: return .keyword(key.runID)
            }
        case .custom:
            // No custom search attribute can be set on a run yet.
            return nil
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
