/// When an append is acknowledged, and therefore what survives a crash.
public enum Durability: Sendable, Equatable, CustomStringConvertible {
    /// An append returns after its bytes are on stable storage (`fdatasync`).
    ///
    /// Survives a process crash and a power loss. Appends that arrive while a sync is in flight
    /// share the next one (group commit), and the next batch is written while the previous
    /// one syncs, so throughput grows with the number of concurrent appenders.
    case sync
    /// An append returns once written to the page cache; the log `fdatasync`s at most
    /// `milliseconds` later.
    ///
    /// Survives a process crash (the kernel still holds the bytes). A power loss or kernel crash
    /// loses at most the appends of the last `milliseconds` (plus the duration of one sync).
    case interval(milliseconds: Int)
    /// An append returns once written to the page cache; the log syncs only on ``Log/flush()``,
    /// on a segment roll and on ``Log/close()``.
    ///
    /// Survives a process crash; a power loss loses everything since the last flush or roll.
    case none

    public var description: String {
        switch self {
        case .sync: "sync"
        case .interval(let milliseconds): "interval(\(milliseconds)ms)"
        case .none: "none"
        }
    }
}

/// Whether a ``Log`` may write to its directory.
public enum LogAccess: Sendable, Equatable {
    /// The default: the owner of the directory. Opening takes the lock exclusively (creating the
    /// directory and the lock file when needed) and recovers the directory (cuts a torn tail,
    /// rebuilds indexes, finishes a compaction swap).
    case readWrite
    /// A reader: opening writes nothing at all — no directory, lock file, marker, recovery point,
    /// index or manifest is created, changed or deleted. It takes a shared `flock` on the lock
    /// file when the file exists and can be opened, so a writer holding the directory makes it fail
    /// with ``LogError/Code/directoryLocked`` (and a writer cannot open it meanwhile); a directory
    /// without a usable lock file (a read-only copy, another user's store) is read without one.
    /// A torn tail is ignored in memory and indexes that need rebuilding are rebuilt in memory.
    /// ``Log/append(_:)``, ``Log/flush()``, ``Log/compact(below:keeping:)`` and
    /// ``Log/deleteSegments(below:)`` throw ``LogError/Code/readOnly``.
    ///
    /// Opening fails with ``LogError/Code/readOnly`` when the directory needs a write before it
    /// can be read (an interrupted compaction swap: open it once read-write, or run `spool recover`),
    /// with ``LogError/Code/logDirectoryMissing`` when the directory does not exist, and with
    /// ``LogError/Code/emptyLogDirectory`` when it holds no segment.
    case readOnly
}

/// Settings of a ``Log``. Every value is checked by ``Log/open(directory:configuration:)``,
/// which throws ``LogError/Code/invalidConfiguration`` naming the field that is out of range.
public struct LogConfiguration: Sendable {
    /// When appends are acknowledged. Default ``Durability/sync``.
    public var durability: Durability = .sync
    /// A segment is rolled when the next batch would take it past this size. Default 128 MiB;
    /// at least 64 KiB and at most 2 GiB (index positions are 32-bit).
    public var segmentBytes: Int = 128 << 20
    /// A non-empty segment is rolled when its first batch is older than this, in milliseconds.
    /// `nil` (the default) rolls by size only.
    public var segmentMaxAgeMilliseconds: Int64? = nil
    /// One index entry is written per this many bytes of log. Default 4 KiB.
    public var indexIntervalBytes: Int = 4096
    /// Batches whose raw payload is at least this large are LZ4-compressed when that saves an eighth.
    /// Default 4 KiB; `Int.max` turns compression off.
    public var compressionThresholdBytes: Int = 4096
    /// Appends are grouped into batches of at most this many payload bytes. Default 1 MiB.
    public var maxBatchBytes: Int = 1 << 20
    /// The largest record accepted. Default 8 MiB; must fit in a segment with its header.
    public var maxRecordBytes: Int = 8 << 20
    /// How many `fdatasync` calls may be in flight at once in ``Durability/sync`` mode (one
    /// syncer thread each). Overlapping syncs can shorten the wait of a group commit on a device
    /// that serves cache flushes in parallel; each costs a thread and more, smaller syncs. Default
    /// 1: on the 2-core development VM one syncer gave more appends per second at 128 and 512
    /// producers and less CPU per append than three (`spool bench log --concurrent-syncs`, see
    /// Docs/measurements/2026-12-07-syncers-write.md).
    public var concurrentSyncs: Int = 1
    /// The longest a flush's `fdatasync` waits for the writer thread to finish writing appends
    /// it already has in hand, in the modes where that thread writes (``Durability/interval``,
    /// ``Durability/none``; in ``Durability/sync`` the syncers write and the group commit is
    /// whatever arrived while the last sync ran). The wait ends early as soon as the writer is
    /// idle. Default 100 µs; 0 syncs at once.
    public var maxGroupCommitDelayMicroseconds: Int = 100
    /// The step in which the active segment is zero-filled ahead of the write position, so that
    /// `fdatasync` after an append overwrites allocated blocks instead of growing the file (which
    /// needs a journal commit). In ``Durability/sync`` mode the writer thread keeps one to two
    /// steps of synced zeros ahead of the data, beside the group commits; in the other modes the
    /// writing thread fills inline and the zeros stay half a step to one and a half steps ahead.
    /// Default 1 MiB (larger steps make the flush of each step's zeros, which a group commit may
    /// queue behind, longer: the p99 append latency in `spool bench log` grows with the step);
    /// 0 turns it off.
    ///
    /// The zero fill also paces the rewrites of `log-manifest` that record the active segment's
    /// durable extent (no record beyond it is acknowledged; see Docs/durability.md, "What damage
    /// open cannot see"): one per step, made by the writer thread after it synced the step in
    /// `sync` mode, after the acknowledgements of the sync that covered it in the other modes.
    /// With 0 the extent is the data's end,
    /// and every acknowledgement that grows the file rewrites the manifest (an atomic file replace).
    public var preallocationBytes: Int = 1 << 20

    /// Whether the log may write to its directory. Default ``LogAccess/readWrite``.
    public var access: LogAccess = .readWrite

    /// Seal a non-empty active segment when the log is opened (before any append), as a roll
    /// would, so that ``Log/compact(below:keeping:)`` can rewrite it too: what the offline
    /// compactions set, so that a store smaller than one segment shrinks as well. Appends then go
    /// to a new, empty segment. Default `false`; ignored when ``access`` is read-only.
    public var sealsActiveSegmentAtOpen = false

    /// The system-call layer; tests replace it to inject faults.
    package var syscalls: any Syscalls = SystemCalls()

    /// The defaults described on each property.
    public init() {}

    /// The defaults with the given durability.
    public init(durability: Durability) {
        self.durability = durability
    }

    func validate() throws(LogError) {
        func fail(_ field: String, _ value: Any, _ rule: String) -> LogError {
            LogError(.invalidConfiguration, "\(field) = \(value) is invalid: \(rule)")
        }
        if case .interval(let ms) = durability, ms <= 0 {
            throw fail("durability", durability, "the interval must be at least 1 millisecond")
        }
        guard segmentBytes >= 64 << 10, segmentBytes <= Int(Int32.max) else {
            throw fail("segmentBytes", segmentBytes, "must be between 65536 and 2147483647")
        }
        if let age = segmentMaxAgeMilliseconds, age <= 0 {
            throw fail("segmentMaxAgeMilliseconds", age, "must be positive, or nil to roll by size only")
        }
        guard indexIntervalBytes >= 64 else { throw fail("indexIntervalBytes", indexIntervalBytes, "must be at least 64") }
        guard compressionThresholdBytes >= 0 else {
            throw fail("compressionThresholdBytes", compressionThresholdBytes, "must not be negative")
        }
        guard maxBatchBytes >= 1024 else { throw fail("maxBatchBytes", maxBatchBytes, "must be at least 1024") }
        guard maxRecordBytes >= 1, maxRecordBytes + 4 + RecordBatchHeader.size <= segmentBytes, maxRecordBytes <= Int(Int32.max) / 2 else {
            throw fail("maxRecordBytes", maxRecordBytes, "must be at least 1 and fit in one segment with its header (segmentBytes = \(segmentBytes))")
        }
        guard concurrentSyncs >= 1, concurrentSyncs <= 64 else {
            throw fail("concurrentSyncs", concurrentSyncs, "must be between 1 and 64")
        }
        guard maxGroupCommitDelayMicroseconds >= 0, maxGroupCommitDelayMicroseconds <= 1_000_000 else {
            throw fail("maxGroupCommitDelayMicroseconds", maxGroupCommitDelayMicroseconds, "must be between 0 and 1000000")
        }
        guard preallocationBytes >= 0 else { throw fail("preallocationBytes", preallocationBytes, "must not be negative") }
    }
}
