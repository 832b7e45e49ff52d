import SpoolPrimitives

/// The engine's visibility index: for every visible run, the postings List and Count use to
/// find candidates without scanning every run, and the run counts by status.
///
/// It is a function of the runs' states and nothing else: ``VisibilityIndex/entries(of:)``
/// derives a run's entries from its ``ExecutionState``, and the engine calls ``update(_:)``
/// with each state it publishes (the same states replay rebuilds at open), so a reopened
/// engine's index is the one the process had, and `spool recover --mode check` can rebuild it
/// from the histories and compare. Its only copy on disk is derived the same way: the postings of
/// a closed-run table's runs, in the table's visibility section (``VisibilitySection``), which an
/// open loads as the base rows instead of decoding those runs.
///
/// Layout: each run has an ordinal (a `UInt32` slot). A base row (a run of the table the base
/// was loaded from) has nothing in memory but its posting entries; any other run has a row (its
/// key, start time, status and the entries it is in). Postings hold ordinals, never strings:
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

        /// The same entries with keywords and ranges in one fixed order (postings do not keep the
        /// order ``VisibilityIndex/entries(of:)`` lists them in): for comparing.
        var canonical: Entries {
            func name(_ key: KeywordKey) -> String {
                switch key {
                case .predefined(let p, let v): "0\u{0}\(p.rawValue)\u{0}\(v)"
                case .custom(let n, let v): "1\u{0}\(n)\u{0}\(v)"
                }
            }
            return Entries(startTime: startTime, status: status, keywords: keywords.sorted { name($0) < name($1) },
                           ranges: ranges.sorted { (VisibilitySection.PostingKey.range($0.key).sortKey, $0.value) < (VisibilitySection.PostingKey.range($1.key).sortKey, $1.value) })
        }
    }

    struct RangeRef: Hashable, Sendable {
        var key: RangeKey
        var value: Int64
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
        /// The posting ids of the last few ExecutionStatus, WorkflowType and TaskQueue values
        /// looked up: every start and close looks these up, and their values repeat, so a
        /// comparison of short strings replaces a hash of the key (WorkflowId values do not
        /// repeat and are not kept here). An entry goes when its posting's slot is freed.
        var recentKeywords: [(attribute: PredefinedSearchAttribute, value: String, id: Int32)] = []
        /// The posting ids of ExecutionTime and CloseTime (range postings are never freed).
        var executionTimeRangeID: Int32 = -1
        var closeTimeRangeID: Int32 = -1

        static let recentKeywordLimit = 8

        /// The slot of `key`'s posting, taken (a freed one, or a new one) if it has none.
        mutating func keywordID(_ key: KeywordKey) -> Int {
            if let id = existingKeywordID(key) { return id }
            let id = postingID(key)
            if case .predefined(let attribute, let value) = key, Self.isRecentlyKept(attribute) {
                if recentKeywords.count == Self.recentKeywordLimit { recentKeywords.removeFirst() }
                recentKeywords.append((attribute, value, Int32(id)))
            }
            return id
        }

        /// The slot of `key`'s posting; nil when it has none.
        func existingKeywordID(_ key: KeywordKey) -> Int? {
            if case .predefined(let attribute, let value) = key, Self.isRecentlyKept(attribute) {
                for entry in recentKeywords where entry.attribute == attribute && entry.value == value { return Int(entry.id) }
            }
            return keywordIDs[key].map { Int($0) }
        }

        private static func isRecentlyKept(_ attribute: PredefinedSearchAttribute) -> Bool {
            attribute == .executionStatus || attribute == .workflowType || attribute == .taskQueue
        }

        private mutating func postingID(_ key: KeywordKey) -> Int {
            // One hash and probe, not a lookup and then an insert: the subscript's default puts the
            // next free slot in when the key is new (most calls: a new run's workflow id). That
            // slot is no key's, so getting it back means the key was new.
            let fresh = freeKeywordIDs.last ?? Int32(keywordPostings.count)
            let id = Self.value(&keywordIDs[key, default: fresh])
            guard id == fresh else { return Int(id) }
            if freeKeywordIDs.last == fresh { freeKeywordIDs.removeLast() } else { keywordPostings.append(Postings()) }
            return Int(id)
        }

        private static func value(_ slot: inout Int32) -> Int32 { slot }

        /// Takes `ordinal` out of `key`'s posting; an emptied posting gives its slot back.
        mutating func removeKeyword(_ key: KeywordKey, _ value: Int64, _ ordinal: UInt32) {
            guard let id = existingKeywordID(key) else { return }
            keywordPostings[id].remove(value, ordinal)
            if keywordPostings[id].count == 0 {
                keywordPostings[id] = Postings()
                keywordIDs[key] = nil
                freeKeywordIDs.append(Int32(id))
                recentKeywords.removeAll { $0.id == Int32(id) }
            }
        }

        /// The slot of `key`'s range posting, created if it has none.
        mutating func rangeID(_ key: RangeKey) -> Int {
            switch key {
            case .predefined(.executionTime):
                if executionTimeRangeID < 0 { executionTimeRangeID = Int32(rangePostingID(key)) }
                return Int(executionTimeRangeID)
            case .predefined(.closeTime):
                if closeTimeRangeID < 0 { closeTimeRangeID = Int32(rangePostingID(key)) }
                return Int(closeTimeRangeID)
            default:
                return rangePostingID(key)
            }
        }

        /// The slot of `key`'s range posting; nil when it has none.
        func existingRangeID(_ key: RangeKey) -> Int? {
            switch key {
            case .predefined(.executionTime) where executionTimeRangeID >= 0: Int(executionTimeRangeID)
            case .predefined(.closeTime) where closeTimeRangeID >= 0: Int(closeTimeRangeID)
            default: rangeIDs[key].map { Int($0) }
            }
        }

        private mutating func rangePostingID(_ key: RangeKey) -> Int {
            if let id = rangeIDs[key] { return Int(id) }
            rangeIDs[key] = Int32(rangePostings.count)
            rangePostings.append(Postings())
            return rangePostings.count - 1
        }
    }

    /// Two kinds of rows. Base rows are the runs of a closed-run table whose postings were loaded
    /// from its visibility section at open: ordinals `0..<baseCount`, the ordinal being the run's
    /// index in ``base``; they have no row in memory (their key is read from the table, their
    /// WorkflowId found through its workflow-hash index), and one taken out is marked in
    /// ``removedBase`` while its stale posting entries stay (skipped wherever ordinals are read).
    /// Other rows (runs published since, or indexed from a table without a section) have a
    /// ``Row`` at `rows[ordinal - baseCount]`.
    struct State: Sendable {
        var base: ClosedRunTable? = nil
        var baseCount = 0
        /// One bit per base row: set when it was taken out.
        var removedBase: [UInt64] = []
        var rows: [Row?] = []
        var free: [UInt32] = []
        var ordinals: [ExecutionKey: UInt32] = [:]
        var namespaces: [String: NamespaceIndex] = [:]
        /// Bumped by every ``VisibilityIndex/rebase(_:expiredBefore:isInMemory:)``: ordinals of
        /// an older generation name other runs.
        var generation = 0

        /// The run an ordinal stands for, nil when its row is gone.
        func key(of ordinal: UInt32) -> ExecutionKey? {
            let o = Int(ordinal)
            if o < baseCount {
                guard !isRemovedBase(o) else { return nil }
                return try? base!.key(at: o)
            }
            return rows[o - baseCount]?.key
        }

        mutating func insert(_ key: ExecutionKey, _ entries: Entries) {
            let ordinal: UInt32
            if let reused = free.popLast() {
                ordinal = reused
                rows[Int(reused) - baseCount] = Row(key: key, entries: entries)
            } else {
                ordinal = UInt32(baseCount + rows.count)
                rows.append(Row(key: key, entries: entries))
            }
            ordinals[key] = ordinal
            namespaces[key.namespace, default: NamespaceIndex()].add(entries, ordinal)
        }

        mutating func remove(_ key: ExecutionKey) {
            guard let ordinal = ordinals.removeValue(forKey: key) else {
                if let ordinal = baseOrdinal(of: key) { removeBase(ordinal, namespace: key.namespace) }
                return
            }
            guard let row = rows[Int(ordinal) - baseCount] else { return }
            namespaces[key.namespace]?.take(row.entries, ordinal)
            rows[Int(ordinal) - baseCount] = nil
            free.append(ordinal)
        }

        mutating func update(_ key: ExecutionKey, _ entries: Entries) {
            if let ordinal = ordinals[key], let row = rows[Int(ordinal) - baseCount] {
                guard row.entries != entries else { return }
                namespaces[key.namespace]?.replace(row.entries, with: entries, ordinal)
                rows[Int(ordinal) - baseCount]!.entries = entries
            } else {
                // A run of the base table published again (replay changed it): its new entries
                // get a row of their own.
                if let ordinal = baseOrdinal(of: key) { removeBase(ordinal, namespace: key.namespace) }
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
                    index.rows[Int(reused) - index.baseCount] = Row(key: key, entries: entries)
                } else {
                    ordinal = UInt32(index.baseCount + index.rows.count)
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

    /// The entries of every indexed run, by key, in ``Entries/canonical`` order (for
    /// verification). A base row's are rebuilt from the postings, its WorkflowId from its key.
    var snapshot: [ExecutionKey: Entries] {
        state.withLock { index in
            var all: [ExecutionKey: Entries] = [:]
            for row in index.rows { if let row { all[row.key] = row.entries.canonical } }
            for (ordinal, (_, entries)) in index.baseEntries() {
                guard let key = index.key(of: UInt32(ordinal)) else { continue }
                var entries = entries
                entries.keywords.append(.predefined(.workflowID, key.workflowID))
                all[key] = entries.canonical
            }
            return all
        }
    }

    /// Runs indexed, and the bytes the postings, rows and key table take (an estimate: array
    /// capacities and string bytes, not allocator overhead).
    var footprint: (runs: Int, bytes: Int) {
        state.withLock { index in
            var bytes = index.rows.capacity * MemoryLayout<Row?>.stride + index.free.capacity * 4 + index.removedBase.capacity * 8
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
            var removed = 0
            for word in index.removedBase { removed += word.nonzeroBitCount }
            return (index.ordinals.count + index.baseCount - removed, bytes)
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
