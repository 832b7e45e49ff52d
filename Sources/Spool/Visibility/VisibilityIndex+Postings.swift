import SpoolPrimitives

extension VisibilityIndex {
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
}
