#if canImport(Glibc)
import Glibc
#endif

/// How ``OfflineLog/repair(_:backupDirectory:indexIntervalBytes:progress:)`` treats damaged batches.
public enum RepairMode: String, Sendable, CaseIterable {
    /// Cut the log at the first damage: the rest of that segment and every later segment are removed.
    /// What remains is a prefix of the log with no gap that was not already there.
    case truncate
    /// Keep every intact batch, also after damage, with its offsets; drop only the damaged bytes (and
    /// checksum-valid batches whose records do not parse or whose offsets are out of sequence). Leaves gaps.
    case salvage
}

/// Something a repair removed.
public struct LostData: Sendable, Equatable, CustomStringConvertible {
    /// The segment file it was in.
    public var file: String
    /// Its bytes in that file (before the repair).
    public var bytes: Range<Int>
    /// The offsets of the records removed: exact when ``offsetsExact`` (intact batches), otherwise an
    /// upper bound (damaged bytes; the records there may have been fewer); `nil` when unknowable.
    public var offsets: Range<UInt64>?
    /// Whether ``offsets`` are exactly the records removed.
    public var offsetsExact: Bool
    /// Why it was removed.
    public var reason: String
    /// When ``offsets`` is `nil`: the lowest offset the removed bytes can have held (their records, if
    /// any, had offsets from here on; the next append takes this offset or a later one).
    public var firstPossibleOffset: UInt64? = nil

    public var description: String {
        let what = offsets.map { offsetsExact ? "offsets \($0.lowerBound)..<\($0.upperBound)"
                                              : "offsets at most \($0.lowerBound)..<\($0.upperBound)" }
            ?? firstPossibleOffset.map { "offsets from \($0) on, if any" } ?? "offsets unknown"
        return "\(file) bytes \(bytes.lowerBound)..<\(bytes.upperBound) (\(bytes.count) bytes), \(what): \(reason)"
    }
}

/// What ``OfflineLog/repair(_:backupDirectory:indexIntervalBytes:progress:)`` did.
public struct RepairReport: Sendable {
    /// The mode used.
    public var mode: RepairMode
    /// The verification before anything was changed.
    public var before: LogVerification
    /// The verification after the repair (no problem is left when the repair succeeded).
    public var after: LogVerification
    /// Everything removed, in log order.
    public var lost: [LostData] = []
    /// Files rewritten, truncated or created.
    public var changedFiles: [String] = []
    /// Files deleted.
    public var deletedFiles: [String] = []
    /// Where the original files were copied, when a backup was made.
    public var backupDirectory: String?
    /// The files copied there (original paths).
    public var backedUpFiles: [String] = []

    /// The offsets of intact records that were removed (exactly), merged into ranges.
    public var lostOffsets: [Range<UInt64>] {
        mergeRanges(lost.filter(\.offsetsExact).compactMap(\.offsets))
    }
    /// Whether the repair changed nothing (the log had no problem).
    public var changedNothing: Bool { changedFiles.isEmpty && deletedFiles.isEmpty }
}

func mergeRanges(_ ranges: [Range<UInt64>]) -> [Range<UInt64>] {
    var merged: [Range<UInt64>] = []
    for range in ranges.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
        if let last = merged.last, range.lowerBound <= last.upperBound {
            merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
        } else {
            merged.append(range)
        }
    }
    return merged
}
