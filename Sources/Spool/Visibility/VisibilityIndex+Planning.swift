import SpoolPrimitives

// The planner: which index postings answer a query's conditions.

extension VisibilityIndex {
    /// Where candidates come from.
    enum Source: Sendable {
        /// Every run of the namespace (newest first).
        case all
        /// The runs with any of these keyword values (one key: newest first).
        case keywords([KeywordKey])
        /// The runs whose start time is within the bounds (newest first).
        case startTimes(Int64, Int64)
        /// The runs whose ordered attribute is within the bounds.
        case range(RangeKey, Int64, Int64)

        /// The source as a start-ordered postings list, when it is one.
        var startOrdered: StartOrdered? {
            switch self {
            case .all: .all(Int64.min, Int64.max)
            case .startTimes(let low, let high): .all(low, high)
            case .keywords(let keys) where keys.count == 1: .keyword(keys[0])
            default: nil
            }
        }
    }

    /// A postings list ordered by start time: every run (within start-time bounds) or one keyword's.
    enum StartOrdered: Sendable {
        case all(Int64, Int64)
        case keyword(KeywordKey)
    }

    /// One candidate of a newest-first walk.
    struct Candidate: Sendable {
        var startTime: Int64
        var ordinal: UInt32
        var key: ExecutionKey
    }

    /// The sources each indexable conjunct of `filter` (its top-level ANDs) gives.
    static func sources(of filter: VisibilityQuery.Predicate) -> [Source] {
        switch filter {
        case .and(let a, let b): return sources(of: a) + sources(of: b)
        case .compare(let attribute, let comparison, let value):
            switch comparison {
            case .equal:
                if let key = keywordKey(attribute, value) { return [.keywords([key])] }
                return rangeSource(attribute, low: value, high: value).map { [$0] } ?? []
            case .less, .lessOrEqual: return rangeSource(attribute, low: nil, high: value).map { [$0] } ?? []
            case .greater, .greaterOrEqual: return rangeSource(attribute, low: value, high: nil).map { [$0] } ?? []
            case .notEqual: return []
            }
        case .oneOf(let attribute, let values, negated: false):
            var keys: [KeywordKey] = []
            for value in values {
                guard let key = keywordKey(attribute, value) else { return [] }
                keys.append(key)
            }
            return [.keywords(keys)]
        case .between(let attribute, let low, let high, negated: false):
            return rangeSource(attribute, low: low, high: high).map { [$0] } ?? []
        default:
            return []
        }
    }

    /// The posting of `attribute = value`, when that attribute's equality is indexed.
    static func keywordKey(_ attribute: VisibilityQuery.Attribute, _ value: SearchAttributeValue) -> KeywordKey? {
        guard case .keyword(let s) = value else { return nil }
        switch attribute {
        case .predefined(let p):
            switch p {
            case .workflowID, .workflowType, .taskQueue, .executionStatus: return .predefined(p, s)
            default: return nil
            }
        case .custom(let name, let type):
            return type == .keyword || type == .keywordList ? .custom(name, s) : nil
        }
    }

    /// The range source of `low ≤ attribute ≤ high` (inclusive bounds: a strict comparison gets
    /// its boundary too, and the evaluation takes it out), when the attribute is ordered in the index.
    static func rangeSource(_ attribute: VisibilityQuery.Attribute, low: SearchAttributeValue?, high: SearchAttributeValue?) -> Source? {
        func time(_ value: SearchAttributeValue?, _ fallback: Int64) -> Int64? {
            guard let value else { return fallback }
            if case .datetime(let t) = value { return t.nanosecondsSinceEpoch }
            return nil
        }
        func number(_ value: SearchAttributeValue?, _ fallback: Int64) -> Int64? {
            switch value {
            case nil: return fallback
            case .int(let n)?: return orderedBits(Double(n))
            case .double(let d)?: return d.isNaN ? nil : orderedBits(d)
            default: return nil
            }
        }
        switch attribute {
        case .predefined(.startTime):
            guard let l = time(low, .min), let h = time(high, .max) else { return nil }
            return .startTimes(l, h)
        case .predefined(.closeTime), .predefined(.executionTime):
            guard case .predefined(let p) = attribute, let l = time(low, .min), let h = time(high, .max) else { return nil }
            return .range(.predefined(p), l, h)
        case .custom(let name, .datetime):
            guard let l = time(low, .min), let h = time(high, .max) else { return nil }
            return .range(.customTime(name), l, h)
        case .custom(let name, .int), .custom(let name, .double):
            guard let l = number(low, .min), let h = number(high, .max) else { return nil }
            return .range(.customNumber(name), l, h)
        default:
            return nil
        }
    }

    /// How many entries a source has in `namespace` (base rows taken out included).
    private static func size(_ source: Source, in index: NamespaceIndex, _ state: State, namespace: String) -> Int {
        switch source {
        case .all: return index.all.count
        case .keywords(let keys): return keys.reduce(0) { $0 + state.postings(of: $1, namespace: namespace, index).count }
        case .startTimes(let low, let high): return index.all.range(low, high).count
        case .range(let key, let low, let high): return index.rangeIDs[key].map { index.rangePostings[Int($0)].range(low, high).count } ?? 0
        }
    }

    /// The source with the fewest entries.
    func mostSelective(namespace: String, _ options: [Source]) -> Source {
        state.withLock { state in
            guard let index = state.namespaces[namespace] else { return options[0] }
            return options.min { Self.size($0, in: index, state, namespace: namespace) < Self.size($1, in: index, state, namespace: namespace) }!
        }
    }

    /// Up to `count` entries of `source`, newest start first, below (start time, ordinal)
    /// `below`, and the index's generation they are of (ordinals are renumbered when it changes).
    func newestFirst(namespace: String, _ source: StartOrdered, below: (Int64, UInt32)?, count: Int) -> ([Candidate], generation: Int) {
        state.withLock { state in
            guard let index = state.namespaces[namespace] else { return ([], state.generation) }
            let postings: Postings
            var low = Int64.min, high = Int64.max
            switch source {
            case .all(let l, let h):
                postings = index.all
                low = l
                high = h
            case .keyword(let key):
                postings = state.postings(of: key, namespace: namespace, index)
            }
            var range = postings.range(low, high)
            if let below { range = range.clamped(to: 0..<postings.lowerBound(below.0, below.1)) }
            var found: [Candidate] = []
            found.reserveCapacity(min(count, range.count))
            var at = range.upperBound
            while at > range.lowerBound && found.count < count {
                at -= 1
                let ordinal = postings.ordinals[at]
                if let key = state.key(of: ordinal) {
                    found.append(Candidate(startTime: postings.values[at], ordinal: ordinal, key: key))
                }
            }
            return (found, state.generation)
        }
    }

    /// The keys of every entry of `source` (unordered, each once).
    func candidates(namespace: String, _ source: Source) -> [ExecutionKey] {
        state.withLock { state in
            guard let index = state.namespaces[namespace] else { return [] }
            var ordinals: [UInt32] = []
            switch source {
            case .all: ordinals = index.all.ordinals
            case .startTimes(let low, let high): ordinals = Array(index.all.ordinals[index.all.range(low, high)])
            case .keywords(let keys):
                for key in keys { ordinals += state.postings(of: key, namespace: namespace, index).ordinals }
                if keys.count > 1 { ordinals = Array(Set(ordinals)) }
            case .range(let key, let low, let high):
                if let id = index.rangeIDs[key] {
                    let postings = index.rangePostings[Int(id)]
                    ordinals = Array(postings.ordinals[postings.range(low, high)])
                    // A KeywordList's or a list's values may repeat a run: once each.
                    if case .customNumber = key { ordinals = Array(Set(ordinals)) }
                }
            }
            return ordinals.compactMap { state.key(of: $0) }
        }
    }

    /// Runs by status (indexed by the status's raw value).
    func statusCounts(namespace: String) -> [Int] {
        state.withLock { $0.namespaces[namespace]?.statusCounts ?? [Int](repeating: 0, count: 16) }
    }

    /// The runs of `namespace` that closed at or before `time`.
    func closedBefore(namespace: String, _ time: Int64) -> [ExecutionKey] {
        state.withLock { state in
            guard let index = state.namespaces[namespace], let id = index.rangeIDs[.predefined(.closeTime)] else { return [] }
            let postings = index.rangePostings[Int(id)]
            return postings.ordinals[postings.range(.min, time)].compactMap { state.key(of: $0) }
        }
    }
}

extension VisibilityIndex.State {
    /// The posting of `key` in `namespace` (`index`). A WorkflowId's also lists the base rows of
    /// that workflow id, which have no WorkflowId postings: found through the base table's
    /// workflow-hash index, their start times read from their states.
    func postings(of key: VisibilityIndex.KeywordKey, namespace: String, _ index: VisibilityIndex.NamespaceIndex) -> VisibilityIndex.Postings {
        var postings = index.keywordIDs[key].map { index.keywordPostings[Int($0)] } ?? VisibilityIndex.Postings()
        guard case .predefined(.workflowID, let workflowID) = key, let base else { return postings }
        let workflowKey = WorkflowKey(namespace: namespace, workflowID: workflowID)
        var added = false
        for o in base.indexes(ofWorkflowHash: ClosedRunTable.workflowHash(workflowKey)) where !isRemovedBase(o) {
            guard let run = try? base.run(at: o), run.state.key.workflowKey == workflowKey else { continue }
            postings.appendUnsorted(run.state.startTime.nanosecondsSinceEpoch, UInt32(o))
            added = true
        }
        if added { postings.sort() }
        return postings
    }
}
