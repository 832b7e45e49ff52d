// One definition of "median" for every bench: of values, and of runs.

/// The median of `values`: the middle one, or of an even count the mean of the two middle ones;
/// 0 when there are none.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/// The median run by `key`: the middle one, or of an even count the lower of the two middle
/// ones, so that every figure reported with it comes from one real run and an even number of
/// runs does not flatter the result. Nil when there are none.
func medianRun<Run>(_ runs: [Run], by key: (Run) -> Double) -> Run? {
    guard !runs.isEmpty else { return nil }
    return runs.sorted { key($0) < key($1) }[(runs.count - 1) / 2]
}
