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

        /// Replaces every entry (the caller passes pairs in (value, ordinal) order, or calls
        /// ``markUnsorted()`` and ``sort()``).
        mutating func replace(values: [Int64], ordinals: [UInt32]) {
            precondition(values.count == ordinals.count)
            self.values = values
            self.ordinals = ordinals
        }

        mutating func markUnsorted() { isUnsorted = true }

        mutating func reserve(_ count: Int) {
            values.reserveCapacity(count)
            ordinals.reserveCapacity(count)
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

        func isRemovedBase(_ ordinal: Int) -> Bool { removedBase[ordinal >> 6] & (1 << UInt64(ordinal & 63)) != 0 }

        /// The run an ordinal stands for, nil when its row is gone.
        func key(of ordinal: UInt32) -> ExecutionKey? {
            let o = Int(ordinal)
            if o < baseCount {
                guard !isRemovedBase(o) else { return nil }
                return try? base!.key(at: o)
            }
            return rows[o - baseCount]?.key
        }

        /// The base row of `key`, if it has one that is not taken out.
        func baseOrdinal(of key: ExecutionKey) -> Int? {
            guard let base else { return nil }
            for index in base.indexes(ofWorkflowHash: ClosedRunTable.workflowHash(key.workflowKey))
                where !isRemovedBase(index) && (try? base.key(at: index)) == key {
                return index
            }
            return nil
        }

        /// Marks base row `ordinal` taken out, and takes it out of its namespace's counts.
        mutating func removeBase(_ ordinal: Int, namespace: String) {
            removedBase[ordinal >> 6] |= 1 << UInt64(ordinal & 63)
            guard let status = try? base!.run(at: ordinal).state.status else { return }
            namespaces[namespace]?.statusCounts[Int(status.rawValue)] -= 1
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

        /// Makes `table`'s runs the base rows of this empty state, from its `section` (see
        /// ``VisibilityIndex/loadBase(_:expiredBefore:)``).
        mutating func loadBase(_ table: ClosedRunTable, _ section: VisibilitySection, expiredBefore: (String) -> Int64?) {
            base = table
            baseCount = table.count
            removedBase = [UInt64](repeating: 0, count: (table.count + 63) / 64)
            for namespace in section.namespaces {
                var built = NamespaceIndex()
                var statusPostings: [(WorkflowExecutionStatus, Postings)] = []
                for (key, postings) in namespace.postings {
                    switch key {
                    case .all: built.all = postings
                    case .keyword(let keyword):
                        built.keywordIDs[keyword] = Int32(built.keywordPostings.count)
                        built.keywordPostings.append(postings)
                        if case .predefined(.executionStatus, let name) = keyword,
                           let status = WorkflowExecutionStatus.allCases.first(where: { $0.description == name }) {
                            statusPostings.append((status, postings))
                        }
                    case .range(let range):
                        built.rangeIDs[range] = Int32(built.rangePostings.count)
                        built.rangePostings.append(postings)
                    }
                }
                // Runs past their retention are not shown: taken out before they are counted.
                if let horizon = expiredBefore(namespace.name), let id = built.rangeIDs[.predefined(.closeTime)] {
                    let closes = built.rangePostings[Int(id)]
                    for i in closes.range(.min, horizon) {
                        let o = Int(closes.ordinals[i])
                        removedBase[o >> 6] |= 1 << UInt64(o & 63)
                    }
                }
                for (status, postings) in statusPostings {
                    var n = 0
                    for o in postings.ordinals where !isRemovedBase(Int(o)) { n += 1 }
                    built.statusCounts[Int(status.rawValue)] = n
                }
                namespaces[namespace.name] = built
            }
        }

        /// The entries of every base row not taken out, rebuilt from the postings (for
        /// verification): each posting entry is one of a row's entries.
        func baseEntries() -> [Int: (namespace: String, entries: Entries)] {
            var found: [Int: (namespace: String, entries: Entries)] = [:]
            guard baseCount > 0 else { return found }
            for (name, namespace) in namespaces {
                func each(_ postings: Postings, _ body: (Int, Int64, inout Entries) -> Void) {
                    for i in 0..<postings.count {
                        let o = Int(postings.ordinals[i])
                        guard o < baseCount, !isRemovedBase(o) else { continue }
                        var entries = found[o]?.entries ?? Entries(startTime: 0, status: .running, keywords: [], ranges: [])
                        body(o, postings.values[i], &entries)
                        found[o] = (name, entries)
                    }
                }
                each(namespace.all) { _, start, entries in entries.startTime = start }
                for (key, id) in namespace.keywordIDs {
                    each(namespace.keywordPostings[Int(id)]) { _, _, entries in
                        if case .predefined(.executionStatus, let name) = key {
                            entries.status = WorkflowExecutionStatus.allCases.first { $0.description == name } ?? entries.status
                        } else {
                            entries.keywords.append(key)
                        }
                    }
                }
                for (key, id) in namespace.rangeIDs {
                    each(namespace.rangePostings[Int(id)]) { _, value, entries in entries.ranges.append(RangeRef(key: key, value: value)) }
                }
            }
            return found
        }
    }

    let state = LockedValue(State())
    /// True while the closed-run table loaded at open is not indexed yet; its lock is held
    /// while it is being indexed, so that a query waits for it.
    let pendingTable = LockedValue(false)

    init() {}

    /// Makes the runs of `table` the base rows, from its visibility section, leaving out the runs
    /// `expiredBefore` says are past their retention (the close time at or before which a
    /// namespace's runs are, nil when they stay). The index must be empty (an open calls this
    /// before it indexes any run). Returns false, indexing nothing, when the table has no section.
    /// - Throws: ``SpoolError/Code/corruptRecord`` when the section is damaged (nothing indexed).
    func loadBase(_ table: ClosedRunTable, expiredBefore: (String) -> Int64?) throws(SpoolError) -> Bool {
        guard let section = try table.visibilitySection() else { return false }
        state.withLock { index in
            precondition(index.rows.isEmpty && index.baseCount == 0, "the base is loaded into an empty index")
            index.loadBase(table, section, expiredBefore: expiredBefore)
        }
        return true
    }

    /// After a merge wrote `table` (and the registry installed it): its runs become the base
    /// rows, in place of the previous table's (whose file the merge superseded, so the index lets
    /// go of it). Rows in memory whose runs `table` holds are dropped (its section has their
    /// entries: the runs the merge took out of memory), unless `isInMemory` says the registry
    /// still holds the run (its state there is the one shown: its row stays, the base row is
    /// taken out); the others (open runs, runs closed since) are indexed again under new
    /// ordinals. Returns false, changing nothing, when the table has no section.
    /// - Throws: ``SpoolError/Code/corruptRecord`` when the section is damaged (nothing changed).
    func rebase(_ table: ClosedRunTable, expiredBefore: (String) -> Int64?, isInMemory: (ExecutionKey) -> Bool) throws(SpoolError) -> Bool {
        guard let section = try table.visibilitySection() else { return false }
        // Asked outside the index's lock (the registry's locks are never taken inside it).
        let keys = state.withLock { $0.rows.compactMap { $0?.key } }
        let pinned = Set(keys.filter(isInMemory))
        // The pending flag's lock first, as indexClosedRunTableIfNeeded takes them: the table it
        // would index is merged into this one.
        pendingTable.withLock { pending in
            pending = false
            state.withLock { index in
                var rebuilt = State()
                rebuilt.loadBase(table, section, expiredBefore: expiredBefore)
                for case let row? in index.rows {
                    if let ordinal = rebuilt.baseOrdinal(of: row.key) {
                        guard pinned.contains(row.key) else { continue }
                        rebuilt.removeBase(ordinal, namespace: row.key.namespace)
                    }
                    rebuilt.insert(row.key, row.entries)
                }
                rebuilt.generation = index.generation + 1
                index = rebuilt
            }
        }
        return true
    }

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
