extension VisibilityIndex.NamespaceIndex {
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
                if let id = rangeIDs[ref.key] { rangePostings[Int(id)].remove(ref.value, ordinal) }
            }
            for ref in new.ranges where !old.ranges.contains(ref) { rangePostings[rangeID(ref.key)].insert(ref.value, ordinal) }
        }
    }
}
