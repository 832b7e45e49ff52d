/// The histories of the runs a worker ran last, least recently used evicted first.
struct HistoryCache: Sendable {
    let capacity: Int
    private var entries: [String: (history: [HistoryEvent], use: UInt64)] = [:]
    private var clock: UInt64 = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func history(_ runID: String) -> [HistoryEvent]? {
        guard let entry = entries[runID] else { return nil }
        clock &+= 1
        entries[runID] = (entry.history, clock)
        return entry.history
    }

    mutating func store(_ runID: String, _ history: [HistoryEvent]) {
        guard capacity > 0 else { return }
        clock &+= 1
        entries[runID] = (history, clock)
        // Evict in batches (the least recently used tenth), so a store costs O(log n) amortized.
        if entries.count > capacity + max(1, capacity / 10) {
            let oldest = entries.sorted { $0.value.use < $1.value.use }.prefix(entries.count - capacity)
            for (key, _) in oldest { entries[key] = nil }
        }
    }

    mutating func remove(_ runID: String) { entries[runID] = nil }
}
