import SpoolPrimitives

/// Base rows: the runs of a closed-run table whose postings were loaded from its visibility
/// section (see ``VisibilityIndex/State``).
extension VisibilityIndex.State {
    typealias Entries = VisibilityIndex.Entries
    typealias Postings = VisibilityIndex.Postings
    typealias NamespaceIndex = VisibilityIndex.NamespaceIndex
    typealias RangeRef = VisibilityIndex.RangeRef

    func isRemovedBase(_ ordinal: Int) -> Bool { removedBase[ordinal >> 6] & (1 << UInt64(ordinal & 63)) != 0 }

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

extension VisibilityIndex {
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
}
