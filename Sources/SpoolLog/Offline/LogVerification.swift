#if canImport(Glibc)
import Glibc
#endif

/// A problem found by ``OfflineLog/verify(progress:)``: what, where (file and byte), how bad.
public struct LogProblem: Sendable, Equatable, CustomStringConvertible {
    /// How bad a problem is.
    public enum Severity: String, Sendable, Equatable {
        /// Records are unreadable or would be lost, or ``Log/open(directory:configuration:)`` refuses the
        /// directory: run `spool recover --mode truncate` or `salvage`.
        case damage
        /// The log opens and reads correctly, but a file is stale or missing (an index, a checkpoint, a
        /// torn tail the next open cuts). The next open or `spool recover` repairs it; nothing is lost.
        case inconsistency
    }

    /// A stable machine-readable kind, such as `"damagedBytes"` or `"indexMissing"`.
    public var kind: String
    /// How bad it is.
    public var severity: Severity
    /// The file concerned.
    public var file: String
    /// The byte position in `file`, when the problem has one.
    public var position: Int?
    /// The byte range concerned, when the problem covers one.
    public var bytes: Range<Int>?
    /// The offsets concerned: exact for out-of-sequence batches, an upper bound for damaged bytes.
    public var offsets: Range<UInt64>?
    /// A sentence saying what is wrong.
    public var message: String

    public var description: String {
        "\(severity.rawValue): \(file)\(position.map { " at byte \($0)" } ?? ""): \(message)"
    }
}

/// Per-segment results of a verification.
public struct SegmentVerification: Sendable {
    /// The segment as listed (for a pending compaction swap, possibly its `.log.cleaned` file).
    public var file: SegmentFileInfo
    /// What the walk counted.
    public var summary: SegmentWalkSummary
    /// Index entries (the file size / 8, or the valid prefix of a preallocated active index); `nil` when missing.
    public var indexEntries: Int?
}

/// What ``OfflineLog/verify(progress:)`` found.
public struct LogVerification: Sendable {
    /// The directory verified.
    public var directory: String
    /// Segments in offset order, as the next open would see them.
    public var segments: [SegmentVerification] = []
    /// Every problem, in log order.
    public var problems: [LogProblem] = []
    /// Observations that are not problems (an unclean shutdown, leftover temporary files, gaps left by compaction).
    public var notes: [String] = []
    /// Whether a valid clean-shutdown marker matching the last segment is present.
    public var cleanShutdown = false
    /// Files examined.
    public var files = 0
    /// Intact batches.
    public var batches = 0
    /// Records in intact batches.
    public var records = 0
    /// Bytes of segment files read.
    public var bytes = 0

    /// The next offset a valid clean-shutdown marker for the last segment records.
    var markerNextOffset: UInt64?
    /// The last segment's length a valid clean-shutdown marker records when the file is shorter
    /// (the segment was cut after a clean close).
    var markerRecordedLastLength: UInt64?

    /// No problem at all.
    public var isClean: Bool { problems.isEmpty }
    /// Whether ``Log/open(directory:configuration:)`` would accept the directory and every record be
    /// readable: no problem of severity ``LogProblem/Severity/damage``.
    public var opensCleanly: Bool { !problems.contains { $0.severity == .damage } }
}

/// What verification and repair report as they go: the phase, bytes done and the phase's total.
public enum MaintenancePhase: String, Sendable {
    case verifying, backingUp, rewriting
}

/// Progress callback: `(phase, bytes done, bytes total)`, called at most about once per MiB.
public typealias MaintenanceProgress = (MaintenancePhase, Int, Int) -> Void
