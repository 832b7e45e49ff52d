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

/// How ``SpoolEngine/listWorkflowExecutions(namespace:query:pageSize:nextPageToken:plan:)`` and
/// ``SpoolEngine/countWorkflowExecutions(namespace:query:plan:)`` find the runs they evaluate.
public enum VisibilityPlan: Sendable, Hashable {
    /// The visibility index: candidates from the query's most selective indexed condition
    /// (newest first when the order is the default one, so a page touches about its size of
    /// runs), counts by status from counters. The default.
    case index
    /// Every run of the namespace, closed runs decoded from the closed-run table: the baseline
    /// the index is measured and checked against.
    case scan
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
    /// Cost with the index (``VisibilityPlan/index``): the query's most selective indexed
    /// condition (equality or `IN` on WorkflowId, WorkflowType, TaskQueue, ExecutionStatus or a
    /// custom Keyword or KeywordList; a range on StartTime, CloseTime, ExecutionTime or a custom
    /// Int, Double or Datetime) gives the candidates, and the whole condition is evaluated on
    /// each. In the default order, candidates are taken newest first and the walk stops once the
    /// page is full. The closed runs of the checkpoint's closed-run table are indexed at open
    /// from the table's visibility section; a table written without one is indexed by the first
    /// List or Count after open (decoding each run once).
    /// - Parameters:
    ///   - pageSize: the most runs per page; 0 for ``defaultVisibilityPageSize``.
    ///   - nextPageToken: the previous page's token; nil for the first page.
    ///   - plan: index (the default) or a full scan; both give the same answer.
    /// - Throws: ``SpoolError/Code/namespaceNotFound``; ``SpoolError/Code/invalidArgument`` for a
    ///   malformed query (the message names the column and the problem; the namespace's custom
    ///   search attributes may be named), a `GROUP BY` (Count only) or a negative page size;
    ///   ``SpoolError/Code/invalidPageToken`` for a token that is not this query's.
    public func listWorkflowExecutions(namespace: String = defaultNamespace, query: String, pageSize: Int = 0,
                                       nextPageToken: [UInt8]? = nil, plan: VisibilityPlan = .index) throws(SpoolError) -> WorkflowExecutionPage {
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
        func consider(_ state: ExecutionState) {
            guard parsed.matches(state) else { return }
            let key = parsed.sortKey(state)
            if let after, !parsed.precedes(after.position, key) { return }
            matching.append((key, state))
        }
        switch plan {
        case .scan:
            for state in registry.allStates(namespace: namespace) { consider(state) }
        case .index:
            indexClosedRunTableIfNeeded()
            let source = visibilitySource(namespace: namespace, parsed.filter)
            if parsed.orderBy.isEmpty, let ordered = source.startOrdered {
                // Newest first: stop once more than a page matched and the walk has gone past
                // the start time of the last match (later entries all sort after it).
                let below: (Int64, UInt32)? = after.map { ($0.position.startTime, UInt32.max) }
                walkNewestFirst(namespace: namespace, ordered, below: below) { entry in
                    if matching.count > limit, let lastMatch = matching.last, entry.startTime < lastMatch.key.startTime { return false }
                    if let state = visibleState(entry.key) { consider(state) }
                    return true
                }
            } else {
                for key in visibility.candidates(namespace: namespace, source) {
                    if let state = visibleState(key) { consider(state) }
                }
            }
        }
        matching.sort { parsed.precedes($0.key, $1.key) }
        let page = matching.prefix(limit)
        let token = matching.count > limit ? page.last.map { VisibilityPageToken(fingerprint: fingerprint, position: $0.key).serialized } : nil
        return WorkflowExecutionPage(executions: page.map(\.state.info), nextPageToken: token)
    }

    /// Walks the entries of `ordered` newest first below `below`, in batches of `batchSize`,
    /// until `visit` returns false or the entries end. A merge renumbers the rows
    /// (``VisibilityIndex/rebase(_:expiredBefore:isInMemory:)``): a batch taken after one
    /// restarts at the last start time walked, leaving out the runs of that start time already
    /// walked, so that none is skipped or visited twice. `betweenBatches` is for tests.
    func walkNewestFirst(namespace: String, _ ordered: VisibilityIndex.StartOrdered, below start: (Int64, UInt32)?, batchSize: Int = 256,
                         betweenBatches: (() -> Void)? = nil, visit: (VisibilityIndex.Candidate) -> Bool) {
        var below = start
        var generation: Int?
        var lastGroup: [ExecutionKey] = []
        while true {
            var (batch, now) = visibility.newestFirst(namespace: namespace, ordered, below: below, count: batchSize)
            if let generation, now != generation, let walked = below {
                (batch, now) = visibility.newestFirst(namespace: namespace, ordered, below: (walked.0, UInt32.max), count: batchSize + lastGroup.count)
                batch.removeAll { $0.startTime == walked.0 && lastGroup.contains($0.key) }
            }
            generation = now
            guard let last = batch.last else { return }
            for entry in batch {
                if let previous = below, previous.0 != entry.startTime { lastGroup.removeAll(keepingCapacity: true) }
                below = (entry.startTime, entry.ordinal)
                lastGroup.append(entry.key)
                guard visit(entry) else { return }
            }
            below = (last.startTime, last.ordinal)
            betweenBatches?()
        }
    }

    /// Counts the runs of `namespace` that match `query`; with `GROUP BY ExecutionStatus`, also
    /// per status. `ORDER BY` is accepted and has no effect.
    ///
    /// With the index, a query with no condition, or only a condition on ExecutionStatus
    /// (`=` or `IN`), is answered from the index's counters by status; others evaluate the
    /// candidates of their most selective indexed condition (see ``listWorkflowExecutions(namespace:query:pageSize:nextPageToken:plan:)``).
    /// - Throws: ``SpoolError/Code/namespaceNotFound``; ``SpoolError/Code/invalidArgument`` for a malformed query.
    public func countWorkflowExecutions(namespace: String = defaultNamespace, query: String,
                                        plan: VisibilityPlan = .index) throws(SpoolError) -> WorkflowExecutionCount {
        let parsed = try VisibilityQuery(query, customAttributes: try searchAttributes(namespace: namespace))
        var count: Int64 = 0
        var groups: [SearchAttributeValue: Int64] = [:]
        func consider(_ state: ExecutionState) {
            guard parsed.matches(state) else { return }
            count += 1
            if let attribute = parsed.groupBy, let value = state.searchAttributeValue(.predefined(attribute)) {
                groups[value, default: 0] += 1
            }
        }
        switch plan {
        case .scan:
            for state in registry.allStates(namespace: namespace) { consider(state) }
        case .index:
            indexClosedRunTableIfNeeded()
            if let statuses = Self.statusesOnly(parsed.filter) {
                dropExpiredFromVisibility(namespace: namespace)
                let counts = visibility.statusCounts(namespace: namespace)
                for status in WorkflowExecutionStatus.allCases where statuses.contains(status) && counts[Int(status.rawValue)] > 0 {
                    let n = Int64(counts[Int(status.rawValue)])
                    count += n
                    if parsed.groupBy != nil { groups[.keyword(status.description)] = n }
                }
            } else {
                for key in visibility.candidates(namespace: namespace, visibilitySource(namespace: namespace, parsed.filter)) {
                    if let state = visibleState(key) { consider(state) }
                }
            }
        }
        let sorted = groups.sorted { a, b in a.value != b.value ? a.value > b.value : a.key.description < b.key.description }
        return WorkflowExecutionCount(count: count, groups: sorted.map { .init(values: [$0.key], count: $0.value) })
    }

    /// The statuses a filter admits when it is only a condition on ExecutionStatus (none, `=`,
    /// `IN`, or an OR of those); nil when it is anything else.
    static func statusesOnly(_ filter: VisibilityQuery.Predicate?) -> Set<WorkflowExecutionStatus>? {
        guard let filter else { return Set(WorkflowExecutionStatus.allCases) }
        func names(_ values: [SearchAttributeValue]) -> Set<WorkflowExecutionStatus>? {
            var statuses = Set<WorkflowExecutionStatus>()
            for value in values {
                guard case .keyword(let name) = value, let status = WorkflowExecutionStatus(queryName: name) else { return nil }
                statuses.insert(status)
            }
            return statuses
        }
        switch filter {
        case .compare(.predefined(.executionStatus), .equal, let value): return names([value])
        case .oneOf(.predefined(.executionStatus), let values, negated: false): return names(values)
        case .or(let a, let b):
            guard let x = statusesOnly(a), let y = statusesOnly(b) else { return nil }
            return x.union(y)
        default: return nil
        }
    }

    /// The state of an indexed run, if it is still visible: in memory, or in the closed-run
    /// table within its retention. An index row whose run is gone (its retention ended) is
    /// taken out.
    func visibleState(_ key: ExecutionKey) -> ExecutionState? {
        if let state = registry.visibleState(key) { return state }
        visibility.remove(key)
        return nil
    }

    /// Indexes the closed runs of a closed-run table loaded at open that has no visibility
    /// section, once (the first List or Count after open; open itself does not decode them).
    func indexClosedRunTableIfNeeded() {
        visibility.pendingTable.withLock { pending in
            guard pending else { return }
            defer { pending = false }
            guard let closed = registry.closedRuns.withLock({ $0 }) else { return }
            let now = retentionClock.now()
            // One batch: each posting is sorted once (sorting per batch would sort the large
            // postings again and again).
            var batch: [(ExecutionKey, VisibilityIndex.Entries)] = []
            batch.reserveCapacity(closed.table.count)
            for index in 0..<closed.table.count {
                let closeTime = closed.table.closeTime(at: index)
                if closed.isExpired(closeTime: closeTime, namespace: nil, now: now) { continue }
                guard let run = try? closed.table.run(at: index) else {
                    logger.error("cannot decode a run of the closed-run table for the visibility index", metadata: ["index": "\(index)"])
                    continue
                }
                if closed.isExpired(closeTime: closeTime, namespace: run.state.key.namespace, now: now) { continue }
                batch.append((run.state.key, VisibilityIndex.entries(of: run.state)))
            }
            visibility.insertIfAbsent(rows: batch)
        }
    }

    /// Takes out of the index the closed runs of `namespace` whose retention has ended and that
    /// are no longer visible (before counting from the counters).
    func dropExpiredFromVisibility(namespace: String) {
        guard let retention = closedRunRetention(for: namespace) else { return }
        let now = retentionClock.now()
        let horizon = now.nanosecondsSinceEpoch.subtractingReportingOverflow(retention.nanoseconds)
        guard !horizon.overflow else { return }
        for key in visibility.closedBefore(namespace: namespace, horizon.partialValue) where registry.visibleState(key) == nil {
            visibility.remove(key)
        }
    }

    /// The query's most selective indexed condition (the one with the fewest index entries).
    func visibilitySource(namespace: String, _ filter: VisibilityQuery.Predicate?) -> VisibilityIndex.Source {
        guard let filter else { return .all }
        let options = VisibilityIndex.sources(of: filter)
        guard !options.isEmpty else { return .all }
        return visibility.mostSelective(namespace: namespace, options)
    }
}

extension ExecutionRegistry {
    /// The state of run `key` if it is visible: its handle's (in memory, published, not
    /// removed), or else the closed-run table's within its retention. Loads nothing into memory.
    func visibleState(_ key: ExecutionKey) -> ExecutionState? {
        let handle = shard(key.workflowKey).withLock { $0.runs[key] }
        if let handle { return handle.isVisible && !handle.isRemoved ? handle.state : nil }
        return closedRuns.withLock({ $0 })?.visibleState(key)
    }
}

extension ClosedRuns {
    /// The state of run `key` from the table, if it holds it and its retention has not ended.
    func visibleState(_ key: ExecutionKey) -> ExecutionState? {
        guard let runs = try? table.runs(of: key.workflowKey), let found = runs.first(where: { $0.run.state.key == key }) else { return nil }
        let closeTime = found.run.state.closeTime ?? found.run.state.startTime
        return isExpired(closeTime: closeTime, namespace: key.namespace, now: clockNow) ? nil : found.run.state
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

/// The size of the engine's visibility index (``SpoolEngine/visibilityIndexFootprint``).
public struct VisibilityIndexFootprint: Sendable, Equatable {
    /// Runs indexed.
    public var runs: Int
    /// Bytes of its rows, postings and key tables: array capacities and string bytes, not the
    /// allocator's overhead.
    public var bytes: Int
    /// Closed-run tables loaded at open whose runs are not indexed yet: 0, or 1 for a table
    /// written without a visibility section (the first List or Count indexes its runs).
    public var pendingTables: Int
}

extension SpoolEngine {
    /// How many runs the visibility index holds and the memory it takes (an estimate).
    public var visibilityIndexFootprint: VisibilityIndexFootprint {
        let (runs, bytes) = visibility.footprint
        return VisibilityIndexFootprint(runs: runs, bytes: bytes, pendingTables: visibility.pendingTable.withLock { $0 } ? 1 : 0)
    }
}
