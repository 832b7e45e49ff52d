import SpoolPrimitives

/// The engine's visibility index: for every visible run, the postings List and Count use to
/// find candidates without scanning every run, and the run counts by status.
///
/// It is a function of the runs' states and nothing else: ``VisibilityIndex/entries(of:)``
/// derives a run's entries from its ``ExecutionState``, and the engine calls ``update(_:)``
/// with each state it publishes (the same states replay rebuilds at open), so a reopened
/// engine's index is the one the process had, and `spool recover --mode check` can rebuild it
/// from the histories and compare. It is never written to disk.
///
/// Layout: each run has an ordinal (a `UInt32` slot) and a row (its key, start time, status and
/// the entries it is in). Postings hold ordinals, never strings:
/// - per namespace, every run ordered by start time (the default page order, newest last);
/// - per (attribute, keyword value): WorkflowId, WorkflowType, TaskQueue, ExecutionStatus and
///   every string (or string of a list) a custom attribute holds, ordered by start time;
/// - per ordered attribute: CloseTime, ExecutionTime, and custom numbers and datetimes,
///   ordered by value.
///
/// The index proposes candidates; the query's full condition is still evaluated on each
/// candidate's state, so an entry that proposes too much costs time, never a wrong answer.
final class VisibilityIndex: Sendable {
    /// A posting key: an attribute and one keyword value.
    enum KeywordKey: Hashable, Sendable {
        case predefined(PredefinedSearchAttribute, String)
        case custom(String, String)
    }

    /// An ordered attribute: CloseTime, ExecutionTime, or a custom number (as ``orderedBits(_:)``
    /// of the double) or datetime (nanoseconds).
    enum RangeKey: Hashable, Sendable {
        case predefined(PredefinedSearchAttribute)
        case customNumber(String)
        case customTime(String)
    }

    /// What a run is indexed under.
    struct Entries: Equatable, Sendable {
        var startTime: Int64
        var status: WorkflowExecutionStatus
        var keywords: [KeywordKey]
        var ranges: [RangeRef]
    }

    struct RangeRef: Hashable, Sendable {
        var key: RangeKey
        var value: Int64
    }

    /// A set of (value, ordinal) pairs kept sorted, for postings.
    struct Postings: Sendable {
        private(set) var values: [Int64] = []
        private(set) var ordinals: [UInt32] = []

        var count: Int { values.count }

        /// The first index whose (value, ordinal) is not below (`value`, `ordinal`).
        func lowerBound(_ value: Int64, _ ordinal: UInt32 = 0) -> Int {
            var low = 0, high = values.count
            while low < high {
                let middle = (low + high) / 2
                if (values[middle], ordinals[middle]) < (value, ordinal) { low = middle + 1 } else { high = middle }
            }
            return low
        }

        mutating func insert(_ value: Int64, _ ordinal: UInt32) {
            // New runs start last: the common insert is an append.
            if values.isEmpty || (values[values.count - 1], ordinals[ordinals.count - 1]) < (value, ordinal) {
                values.append(value)
                ordinals.append(ordinal)
                return
            }
            let at = lowerBound(value, ordinal)
            values.insert(value, at: at)
            ordinals.insert(ordinal, at: at)
        }

        mutating func remove(_ value: Int64, _ ordinal: UInt32) {
            let at = lowerBound(value, ordinal)
            guard at < values.count, values[at] == value, ordinals[at] == ordinal else { return }
            values.remove(at: at)
            ordinals.remove(at: at)
        }

        /// The indexes of the entries with `low ≤ value ≤ high`.
        func range(_ low: Int64, _ high: Int64) -> Range<Int> {
            guard low <= high else { return 0..<0 }
            let start = lowerBound(low)
            let end = high == .max ? values.count : lowerBound(high + 1)
            return start..<max(start, end)
        }

        var byteCount: Int { values.capacity * 8 + ordinals.capacity * 4 }

        /// Set by ``appendUnsorted(_:_:)`` when an entry went out of order.
        private(set) var isUnsorted = false

        /// Appends without keeping the order; ``sort()`` must follow before any other use.
        mutating func appendUnsorted(_ value: Int64, _ ordinal: UInt32) {
            if let last = values.last, (value, ordinal) < (last, ordinals[ordinals.count - 1]) { isUnsorted = true }
            values.append(value)
            ordinals.append(ordinal)
        }

        /// Puts the entries in (value, ordinal) order after ``appendUnsorted(_:_:)``.
        mutating func sort() {
            guard isUnsorted else { return }
            isUnsorted = false
            var pairs = Array(zip(values, ordinals))
            pairs.sort { ($0.0, $0.1) < ($1.0, $1.1) }
            values = pairs.map(\.0)
            ordinals = pairs.map(\.1)
        }
    }

    struct Row: Sendable {
        var key: ExecutionKey
        var entries: Entries
    }

    struct NamespaceIndex: Sendable {
        /// Every run, by start time.
        var all = Postings()
        var keywordIDs: [KeywordKey: Int32] = [:]
        var keywordPostings: [Postings] = []
        var rangeIDs: [RangeKey: Int32] = [:]
        var rangePostings: [Postings] = []
        var statusCounts = [Int](repeating: 0, count: 16)

        /// Slots of keyword postings that emptied (a workflow id whose runs all left), reused.
        var freeKeywordIDs: [Int32] = []

        mutating func keywordID(_ key: KeywordKey) -> Int {
            if let id = keywordIDs[key] { return Int(id) }
            if let id = freeKeywordIDs.popLast() {
                keywordIDs[key] = id
                return Int(id)
            }
            keywordIDs[key] = Int32(keywordPostings.count)
            keywordPostings.append(Postings())
            return keywordPostings.count - 1
        }

        /// Takes `ordinal` out of `key`'s posting; an emptied posting gives its slot back.
        mutating func removeKeyword(_ key: KeywordKey, _ value: Int64, _ ordinal: UInt32) {
            guard let id = keywordIDs[key] else { return }
            keywordPostings[Int(id)].remove(value, ordinal)
            if keywordPostings[Int(id)].count == 0 {
                keywordPostings[Int(id)] = Postings()
                keywordIDs[key] = nil
                freeKeywordIDs.append(id)
            }
        }

        mutating func rangeID(_ key: RangeKey) -> Int {
            if let id = rangeIDs[key] { return Int(id) }
            rangeIDs[key] = Int32(rangePostings.count)
            rangePostings.append(Postings())
            return rangePostings.count - 1
        }
    }

    struct State: Sendable {
        var rows: [Row?] = []
        var free: [UInt32] = []
        var ordinals: [ExecutionKey: UInt32] = [:]
        var namespaces: [String: NamespaceIndex] = [:]

        mutating func insert(_ key: ExecutionKey, _ entries: Entries) {
            let ordinal: UInt32
            if let reused = free.popLast() {
                ordinal = reused
                rows[Int(reused)] = Row(key: key, entries: entries)
            } else {
                ordinal = UInt32(rows.count)
                rows.append(Row(key: key, entries: entries))
            }
            ordinals[key] = ordinal
            namespaces[key.namespace, default: NamespaceIndex()].add(entries, ordinal)
        }

        mutating func remove(_ key: ExecutionKey) {
            guard let ordinal = ordinals.removeValue(forKey: key), let row = rows[Int(ordinal)] else { return }
            namespaces[key.namespace]?.take(row.entries, ordinal)
            rows[Int(ordinal)] = nil
            free.append(ordinal)
        }

        mutating func update(_ key: ExecutionKey, _ entries: Entries) {
            if let ordinal = ordinals[key], let row = rows[Int(ordinal)] {
                guard row.entries != entries else { return }
                namespaces[key.namespace]?.take(row.entries, ordinal)
                namespaces[key.namespace]?.add(entries, ordinal)
                rows[Int(ordinal)]!.entries = entries
            } else {
                insert(key, entries)
            }
        }
    }

    let state = LockedValue(State())
    /// True while the closed-run table loaded at open is not indexed yet; its lock is held
    /// while it is being indexed, so that a query waits for it.
    let pendingTable = LockedValue(false)

    init() {}

    /// Indexes `state` (a run's published state), or re-indexes it where it changed.
    func update(_ state: ExecutionState) {
        let entries = Self.entries(of: state)
        self.state.withLock { $0.update(state.key, entries) }
    }

    /// Takes a run out (its retention ended).
    func remove(_ key: ExecutionKey) {
        state.withLock { $0.remove(key) }
    }

    /// Indexes the runs of `states` that are not indexed yet, in one go: appended to their
    /// postings out of order, then each posting they touched sorted once (the closed-run
    /// table's runs come in workflow-hash order, and inserting each in place would move
    /// O(n) entries per run).
    func insertIfAbsent(_ states: [ExecutionState]) {
        insertIfAbsent(rows: states.map { ($0.key, Self.entries(of: $0)) })
    }

    /// ``insertIfAbsent(_:)`` of runs' keys and entries.
    func insertIfAbsent(rows: [(ExecutionKey, Entries)]) {
        state.withLock { index in
            var touched = Set<String>()
            index.rows.reserveCapacity(index.rows.count + rows.count)
            index.ordinals.reserveCapacity(index.ordinals.count + rows.count)
            for (key, entries) in rows where index.ordinals[key] == nil {
                let ordinal: UInt32
                if let reused = index.free.popLast() {
                    ordinal = reused
                    index.rows[Int(reused)] = Row(key: key, entries: entries)
                } else {
                    ordinal = UInt32(index.rows.count)
                    index.rows.append(Row(key: key, entries: entries))
                }
                index.ordinals[key] = ordinal
                touched.insert(key.namespace)
                index.namespaces[key.namespace, default: NamespaceIndex()].addUnsorted(entries, ordinal)
            }
            for name in touched {
                guard var namespace = index.namespaces.removeValue(forKey: name) else { continue }
                namespace.all.sort()
                for id in namespace.keywordPostings.indices { namespace.keywordPostings[id].sort() }
                for id in namespace.rangePostings.indices { namespace.rangePostings[id].sort() }
                index.namespaces[name] = namespace
            }
        }
    }

    /// Forgets every run (an index rebuilt from scratch).
    func removeAll() {
        state.withLock { $0 = State() }
    }

    /// The entries of every indexed run, by key (for verification).
    var snapshot: [ExecutionKey: Entries] {
        state.withLock { index in
            var all: [ExecutionKey: Entries] = [:]
            for row in index.rows { if let row { all[row.key] = row.entries } }
            return all
        }
    }

    /// Runs indexed, and the bytes the postings, rows and key table take (an estimate: array
    /// capacities and string bytes, not allocator overhead).
    var footprint: (runs: Int, bytes: Int) {
        state.withLock { index in
            var bytes = index.rows.capacity * MemoryLayout<Row?>.stride + index.free.capacity * 4
            bytes += index.ordinals.capacity * (MemoryLayout<ExecutionKey>.stride + 4)
            for row in index.rows {
                guard let row else { continue }
                bytes += Self.stringBytes(row.key.namespace) + Self.stringBytes(row.key.workflowID) + Self.stringBytes(row.key.runID)
                bytes += row.entries.keywords.capacity * MemoryLayout<KeywordKey>.stride
                bytes += row.entries.ranges.capacity * MemoryLayout<RangeRef>.stride
            }
            for namespace in index.namespaces.values {
                bytes += namespace.all.byteCount
                for postings in namespace.keywordPostings { bytes += postings.byteCount + 32 }
                for postings in namespace.rangePostings { bytes += postings.byteCount + 32 }
                bytes += namespace.keywordIDs.capacity * (MemoryLayout<KeywordKey>.stride + 4)
                for key in namespace.keywordIDs.keys {
                    switch key {
                    case .predefined(_, let value): bytes += Self.stringBytes(value)
                    case .custom(let name, let value): bytes += Self.stringBytes(name) + Self.stringBytes(value)
                    }
                }
            }
            return (index.ordinals.count, bytes)
        }
    }

    /// Heap bytes of a string (small strings live inline).
    private static func stringBytes(_ s: String) -> Int { s.utf8.count > 15 ? s.utf8.count + 32 : 0 }

    /// A double as an Int64 whose order is the double's order (NaN excluded by JSON).
    static func orderedBits(_ value: Double) -> Int64 {
        let bits = Int64(bitPattern: value.bitPattern)
        return bits < 0 ? Int64.min - bits - 1 : bits
    }

    /// What `state` is indexed under.
    static func entries(of state: ExecutionState) -> Entries {
        var keywords: [KeywordKey] = [
            .predefined(.workflowType, state.workflowType),
            .predefined(.workflowID, state.key.workflowID),
            .predefined(.taskQueue, state.taskQueue),
        ]
        var ranges: [RangeRef] = [RangeRef(key: .predefined(.executionTime), value: state.executionTime.nanosecondsSinceEpoch)]
        if let close = state.closeTime { ranges.append(RangeRef(key: .predefined(.closeTime), value: close.nanosecondsSinceEpoch)) }
        let attributes = state.searchAttributes
        if !attributes.isEmpty {
            for name in attributes.keys.sorted() {
                var parser = JSONScalarParser(bytes: attributes[name]!.data)
                switch parser.parseDocument() {
                case .string(let s)?:
                    keywords.append(.custom(name, s))
                    if let time = RFC3339.parse(s) { ranges.append(RangeRef(key: .customTime(name), value: time.nanosecondsSinceEpoch)) }
                case .number(let n)?:
                    ranges.append(RangeRef(key: .customNumber(name), value: orderedBits(n)))
                case .array(let items)?:
                    var seen = Set<String>()
                    for case .string(let s) in items where seen.insert(s).inserted { keywords.append(.custom(name, s)) }
                default:
                    break
                }
            }
        }
        return Entries(startTime: state.startTime.nanosecondsSinceEpoch, status: state.status, keywords: keywords, ranges: ranges)
    }
}

extension VisibilityIndex.NamespaceIndex {
    mutating func add(_ entries: VisibilityIndex.Entries, _ ordinal: UInt32) {
        all.insert(entries.startTime, ordinal)
        statusCounts[Int(entries.status.rawValue)] += 1
        keywordPostings[keywordID(.predefined(.executionStatus, entries.status.description))].insert(entries.startTime, ordinal)
        for key in entries.keywords { keywordPostings[keywordID(key)].insert(entries.startTime, ordinal) }
        for ref in entries.ranges { rangePostings[rangeID(ref.key)].insert(ref.value, ordinal) }
    }

    /// ``add(_:_:)`` without keeping the postings' order (each ``VisibilityIndex/Postings/sort()`` must follow).
    mutating func addUnsorted(_ entries: VisibilityIndex.Entries, _ ordinal: UInt32) {
        all.appendUnsorted(entries.startTime, ordinal)
        statusCounts[Int(entries.status.rawValue)] += 1
        keywordPostings[keywordID(.predefined(.executionStatus, entries.status.description))].appendUnsorted(entries.startTime, ordinal)
        for key in entries.keywords { keywordPostings[keywordID(key)].appendUnsorted(entries.startTime, ordinal) }
        for ref in entries.ranges { rangePostings[rangeID(ref.key)].appendUnsorted(ref.value, ordinal) }
    }

    mutating func take(_ entries: VisibilityIndex.Entries, _ ordinal: UInt32) {
        all.remove(entries.startTime, ordinal)
        statusCounts[Int(entries.status.rawValue)] -= 1
        removeKeyword(.predefined(.executionStatus, entries.status.description), entries.startTime, ordinal)
        for key in entries.keywords { removeKeyword(key, entries.startTime, ordinal) }
        for ref in entries.ranges {
            if let id = rangeIDs[ref.key] { rangePostings[Int(id)].remove(ref.value, ordinal) }
        }
    }
}

// MARK: - Planning

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

    /// How many entries a source has in `namespace`.
    private static func size(_ source: Source, in index: NamespaceIndex) -> Int {
        switch source {
        case .all: return index.all.count
        case .keywords(let keys): return keys.reduce(0) { $0 + (index.keywordIDs[$1].map { index.keywordPostings[Int($0)].count } ?? 0) }
        case .startTimes(let low, let high): return index.all.range(low, high).count
        case .range(let key, let low, let high): return index.rangeIDs[key].map { index.rangePostings[Int($0)].range(low, high).count } ?? 0
        }
    }

    /// The source with the fewest entries.
    func mostSelective(namespace: String, _ options: [Source]) -> Source {
        state.withLock { state in
            guard let index = state.namespaces[namespace] else { return options[0] }
            return options.min { Self.size($0, in: index) < Self.size($1, in: index) }!
        }
    }

    /// Up to `count` entries of `source`, newest start first, below (start time, ordinal) `below`.
    func newestFirst(namespace: String, _ source: StartOrdered, below: (Int64, UInt32)?, count: Int) -> [Candidate] {
        state.withLock { state in
            guard let index = state.namespaces[namespace] else { return [] }
            let postings: Postings
            var low = Int64.min, high = Int64.max
            switch source {
            case .all(let l, let h):
                postings = index.all
                low = l
                high = h
            case .keyword(let key):
                guard let id = index.keywordIDs[key] else { return [] }
                postings = index.keywordPostings[Int(id)]
            }
            var range = postings.range(low, high)
            if let below { range = range.clamped(to: 0..<postings.lowerBound(below.0, below.1)) }
            var found: [Candidate] = []
            found.reserveCapacity(min(count, range.count))
            var at = range.upperBound
            while at > range.lowerBound && found.count < count {
                at -= 1
                let ordinal = postings.ordinals[at]
                if let row = state.rows[Int(ordinal)] {
                    found.append(Candidate(startTime: postings.values[at], ordinal: ordinal, key: row.key))
                }
            }
            return found
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
                for key in keys { if let id = index.keywordIDs[key] { ordinals += index.keywordPostings[Int(id)].ordinals } }
                if keys.count > 1 { ordinals = Array(Set(ordinals)) }
            case .range(let key, let low, let high):
                if let id = index.rangeIDs[key] {
                    let postings = index.rangePostings[Int(id)]
                    ordinals = Array(postings.ordinals[postings.range(low, high)])
                    // A KeywordList's or a list's values may repeat a run: once each.
                    if case .customNumber = key { ordinals = Array(Set(ordinals)) }
                }
            }
            return ordinals.compactMap { state.rows[Int($0)]?.key }
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
            return postings.ordinals[postings.range(.min, time)].compactMap { state.rows[Int($0)]?.key }
        }
    }
}
