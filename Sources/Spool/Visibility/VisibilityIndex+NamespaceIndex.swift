extension VisibilityIndex.NamespaceIndex {
    mutating func add(_ entries: VisibilityIndex.Entries, _ ordinal: UInt32) {
        add(entries, ordinal) { $0.insert($1, $2) }
    }

    /// ``add(_:_:)`` without keeping the postings' order (each ``VisibilityIndex/Postings/sort()`` must follow).
    mutating func addUnsorted(_ entries: VisibilityIndex.Entries, _ ordinal: UInt32) {
        add(entries, ordinal) { $0.appendUnsorted($1, $2) }
    }

    /// Puts run `ordinal` into every posting `entries` names, with `put`.
    private mutating func add(_ entries: VisibilityIndex.Entries, _ ordinal: UInt32,
                              _ put: (inout VisibilityIndex.Postings, Int64, UInt32) -> Void) {
        put(&all, entries.startTime, ordinal)
        statusCounts[Int(entries.status.rawValue)] += 1
        put(&keywordPostings[keywordID(.predefined(.executionStatus, entries.status.description))], entries.startTime, ordinal)
        for key in entries.keywords { put(&keywordPostings[keywordID(key)], entries.startTime, ordinal) }
        for ref in entries.ranges { put(&rangePostings[rangeID(ref.key)], ref.value, ordinal) }
    }

    mutating func take(_ entries: VisibilityIndex.Entries, _ ordinal: UInt32) {
        all.remove(entries.startTime, ordinal)
        statusCounts[Int(entries.status.rawValue)] -= 1
        removeKeyword(.predefined(.executionStatus, entries.status.description), entries.startTime, ordinal)
        for key in entries.keywords { removeKeyword(key, entries.startTime, ordinal) }
        for ref in entries.ranges {
            if let id = existingRangeID(ref.key) { rangePostings[id].remove(ref.value, ordinal) }
        }
    }

    /// Moves run `ordinal` from the postings of `old` to those of `new`, touching only the
    /// postings that differ. A close changes the status and adds the close time and an upsert
    /// changes a few custom entries; the WorkflowId, WorkflowType and TaskQueue postings stay as
    /// they are. A different start time (the order key of every keyword posting) moves them all.
    mutating func replace(_ old: VisibilityIndex.Entries, with new: VisibilityIndex.Entries, _ ordinal: UInt32) {
        guard old.startTime == new.startTime else {
            take(old, ordinal)
            add(new, ordinal)
            return
        }
        let start = old.startTime
        if old.status != new.status {
            statusCounts[Int(old.status.rawValue)] -= 1
            statusCounts[Int(new.status.rawValue)] += 1
            removeKeyword(.predefined(.executionStatus, old.status.description), start, ordinal)
            keywordPostings[keywordID(.predefined(.executionStatus, new.status.description))].insert(start, ordinal)
        }
        if old.keywords != new.keywords {
            for key in old.keywords where !new.keywords.contains(key) { removeKeyword(key, start, ordinal) }
            for key in new.keywords where !old.keywords.contains(key) { keywordPostings[keywordID(key)].insert(start, ordinal) }
        }
        if old.ranges != new.ranges {
            for ref in old.ranges where !new.ranges.contains(ref) {
                if let id = existingRangeID(ref.key) { rangePostings[id].remove(ref.value, ordinal) }
            }
            for ref in new.ranges where !old.ranges.contains(ref) { rangePostings[rangeID(ref.key)].insert(ref.value, ordinal) }
        }
    }
}
