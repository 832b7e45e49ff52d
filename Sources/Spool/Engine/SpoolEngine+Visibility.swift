import SpoolLog

/// One page of runs from ``SpoolEngine/listWorkflowExecutions(namespace:query:pageSize:nextPageToken:)``.
public struct WorkflowExecutionPage: Sendable {
    /// The runs of this page, in the query's order.
    public var executions: [WorkflowExecutionInfo]
    /// Pass it back for the next page; nil on the last page.
    public var nextPageToken: [UInt8]?
}

/// The answer of ``SpoolEngine/countWorkflowExecutions(namespace:query:)``.
public struct WorkflowExecutionCount: Sendable, Equatable {
    /// How many runs match.
    public var count: Int64
    /// With `GROUP BY`: the count of each group, largest first (ties by value); empty otherwise.
    public var groups: [Group]

    /// The runs that share one value of the `GROUP BY` attribute.
    public struct Group: Sendable, Equatable {
        /// The group's value of each `GROUP BY` attribute.
        public var values: [SearchAttributeValue]
        /// How many matching runs have it.
        public var count: Int64
    }
}

extension SpoolEngine {
    /// The page size when a caller asks for 0 (Temporal's default for List).
    public static let defaultVisibilityPageSize = 1000

    /// Lists the runs of `namespace` that match `query` (``VisibilityQuery``; empty matches
    /// every run), in the query's `ORDER BY` order or else newest start first, one page at a time.
    ///
    /// Paging is by position in that order: a token names the last run returned, and the next
    /// page starts after it. So over a set of runs that does not change, a pass returns every
    /// matching run exactly once; runs that start during the pass sort before the position (they
    /// are newer) and are not returned, and runs that close stay where they were (unless ordered
    /// by CloseTime).
    ///
    /// Cost today: a scan of every run of the namespace per page (closed runs that left memory
    /// are decoded from the closed-run table).
    /// - Parameters:
    ///   - pageSize: the most runs per page; 0 for ``defaultVisibilityPageSize``.
    ///   - nextPageToken: the previous page's token; nil for the first page.
    /// - Throws: ``SpoolError/Code/namespaceNotFound``; ``SpoolError/Code/invalidArgument`` for a
    ///   malformed query (the message names the column and the problem; the namespace's custom
    ///   search attributes may be named), a `GROUP BY` (Count only) or a negative page size;
    ///   ``SpoolError/Code/invalidPageToken`` for a token that is not this query's.
    public func listWorkflowExecutions(namespace: String = defaultNamespace, query: String, pageSize: Int = 0,
                                       nextPageToken: [UInt8]? = nil) throws(SpoolError) -> WorkflowExecutionPage {
        guard pageSize >= 0 else {
            throw SpoolError(.invalidArgument, "pageSize must not be negative (got \(pageSize))", namespace: namespace)
        }
        try checkNamespace(namespace)
        let parsed = try VisibilityQuery(query, customAttributes: try searchAttributes(namespace: namespace))
        guard parsed.groupBy == nil else {
            throw SpoolError(.invalidArgument, "invalid query: GROUP BY is only for counting workflow executions", namespace: namespace)
        }
        let fingerprint = VisibilityPageToken.fingerprint(namespace: namespace, query: query)
        let after = try nextPageToken.map { bytes throws(SpoolError) in
            try VisibilityPageToken(serialized: bytes, fingerprint: fingerprint, keys: parsed.orderBy.count)
        }
        let limit = pageSize == 0 ? Self.defaultVisibilityPageSize : pageSize
        var matching: [(key: VisibilityQuery.SortKey, state: ExecutionState)] = []
        for state in registry.allStates(namespace: namespace) where parsed.matches(state) {
            let key = parsed.sortKey(state)
            if let after, !parsed.precedes(after.position, key) { continue }
            matching.append((key, state))
        }
        matching.sort { parsed.precedes($0.key, $1.key) }
        let page = matching.prefix(limit)
        let token = matching.count > limit ? page.last.map { VisibilityPageToken(fingerprint: fingerprint, position: $0.key).serialized } : nil
        return WorkflowExecutionPage(executions: page.map(\.state.info), nextPageToken: token)
    }

    /// Counts the runs of `namespace` that match `query`; with `GROUP BY ExecutionStatus`, also
    /// per status. `ORDER BY` is accepted and has no effect.
    /// - Throws: ``SpoolError/Code/namespaceNotFound``; ``SpoolError/Code/invalidArgument`` for a malformed query.
    public func countWorkflowExecutions(namespace: String = defaultNamespace, query: String) throws(SpoolError) -> WorkflowExecutionCount {
        let parsed = try VisibilityQuery(query, customAttributes: try searchAttributes(namespace: namespace))
        var count: Int64 = 0
        var groups: [SearchAttributeValue: Int64] = [:]
        for state in registry.allStates(namespace: namespace) where parsed.matches(state) {
            count += 1
            if let attribute = parsed.groupBy, let value = state.searchAttributeValue(.predefined(attribute)) {
                groups[value, default: 0] += 1
            }
        }
        let sorted = groups.sorted { a, b in a.value != b.value ? a.value > b.value : a.key.description < b.key.description }
        return WorkflowExecutionCount(count: count, groups: sorted.map { .init(values: [$0.key], count: $0.value) })
    }
}

/// A position in a query's order: the sort key of the last run a page returned, tied to the
/// namespace and query text it was made for.
struct VisibilityPageToken {
    var fingerprint: UInt64
    var position: VisibilityQuery.SortKey

    init(fingerprint: UInt64, position: VisibilityQuery.SortKey) {
        self.fingerprint = fingerprint
        self.position = position
    }

    /// FNV-1a of the namespace and the query text: a token from another query is refused.
    static func fingerprint(namespace: String, query: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in namespace.utf8 + [0] + query.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    var serialized: [UInt8] {
        var w = BinaryWriter(capacity: 96)
        w.byte(1)
        w.unsigned(fingerprint)
        w.count(position.values.count)
        for value in position.values {
            w.optional(value) { $0.signed($1) }
        }
        w.signed(position.startTime)
        w.string(position.runID)
        w.string(position.workflowID)
        return w.bytes
    }

    init(serialized bytes: [UInt8], fingerprint expected: UInt64, keys: Int) throws(SpoolError) {
        var r = BinaryReader<SpoolError>(bytes, context: "list page token")
        do throws(SpoolError) {
            guard try r.byte() == 1 else { throw r.corrupt("unknown version") }
            fingerprint = try r.unsigned()
            let count = try r.count()
            guard count == keys else { throw r.corrupt("\(count) sort keys, the query has \(keys)") }
            var values: [Int64?] = []
            for _ in 0..<count {
                values.append(try r.optional { r throws(SpoolError) in try r.signed() })
            }
            position = VisibilityQuery.SortKey(values: values, startTime: try r.signed(), runID: try r.string(), workflowID: try r.string())
            guard r.isAtEnd else { throw r.corrupt("bytes after the token") }
        } catch {
            throw SpoolError(.invalidPageToken, "the bytes are not a list page token: \(error.message)")
        }
        guard fingerprint == expected else {
            throw SpoolError(.invalidPageToken, "the page token was made for another query or namespace")
        }
    }
}
