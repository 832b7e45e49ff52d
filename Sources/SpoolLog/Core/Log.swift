#if canImport(Glibc)
import Glibc
#endif
import DequeModule
import Synchronization
import SpoolPrimitives

/// A durable, append-only, segmented log of byte records, addressed by 64-bit offsets.
///
/// ```swift
/// let log = try Log.open(directory: "/var/lib/app/log", configuration: .init(durability: .sync))
/// let offset = try await log.append(Array("hello".utf8))   // returns once fdatasync'ed
/// let bytes = try log.read(at: offset)
/// try log.close()
/// ```
///
/// - Appends may come from any number of tasks and threads at once. They are grouped into
///   record batches by one writer thread; in ``Durability/sync`` mode all appends written
///   before an `fdatasync` starts are acknowledged by it (group commit), and the next group
///   is written while the previous one syncs.
/// - Reads may come from any thread, concurrently with appends. A record is readable once
///   its append has been acknowledged. Every batch's checksum is verified before its
///   records are returned.
/// - Opening the directory is recovery: see ``open(directory:configuration:)``.
/// - A failed write or fsync *poisons* the log: the failed appends and every later call
///   throw ``LogError/Code/poisoned``. Reopen the directory to recover.
/// - One ``Log`` owns a directory at a time (an advisory `flock` on `lock`); call ``close()``.
public final class Log {
    /// The directory holding the segments.
    public let directory: String
    /// The settings the log was opened with.
    public let configuration: LogConfiguration
    /// What opening the directory found and repaired.
    public let recovery: RecoveryReport

    let syscalls: any Syscalls
    private let lockFD: Int32

    // Segments, oldest first; the last is active. Guarded by `segmentLock`.
    let segmentLock = ThreadLock()
    var segments: [Segment]
    /// Set by ``close()`` and ``abandon()``, after which reads throw ``LogError/Code/closed``: another
    /// process may own the directory by then. Guarded by `segmentLock`.
    var refusesReads = false
    /// Serializes ``compact(below:keeping:)`` and ``deleteSegments(below:)``.
    let maintenanceLock = ThreadLock()
    /// Set by close and abandon: compactions stop at their next batch and none starts.
    let maintenanceStopping = Atomic<Bool>(false)
    /// Set by ``requestRoll()``: the writer seals the active segment before its next write.
    let rollRequested = Atomic<Bool>(false)
    /// Set (in `sync` mode) by a write that left less than a zero-fill step of zeros ahead of the
    /// data: the writer thread zero-fills, syncs and records the next steps (``keepExtentAhead()``).
    let extentRequested = Atomic<Bool>(false)

    // The append pipeline, guarded by `pipelineLock`.
    let pipelineLock = ThreadLock()
    let syncWakeup = ThreadCondition()
    /// Appends on their way to the writer (lock-free).
    let intake = AppendIntake()
    /// Held by whichever thread takes requests from the intake and writes them: the writer
    /// thread, or in `sync` mode a syncer about to claim a sync. Guards `nextOffset`, the active
    /// segment's write state and `writerScratch`. Taken before `pipelineLock`, never after.
    let writeLock = ThreadLock()
    let writerScratch: WriterScratch
    /// The offset the next appended record gets; guarded by `writeLock`.
    var nextOffset: UInt64
    var failure: LogError?
    var closing = false
    var closed = false
    var writerDone = false
    /// The writer has taken batches and not yet published them.
    var writerBusy = false
    var writtenSequence: UInt64 = 0
    var claimedSequence: UInt64 = 0
    var syncGroups: Deque<SyncGroup> = []
    /// When the first group not yet claimed by a sync was written (`SyncGroup.writtenAt`), or nil
    /// when every group is claimed: what a syncer needs to know without scanning `syncGroups`.
    var firstUnclaimedGroupWrittenAt: UInt64?
    /// Syncs in flight, in the order they were claimed; acknowledged in that order.
    var syncClaims: Deque<SyncClaim> = []
    var currentSegment: Segment
    var lastSyncNanoseconds: UInt64 = 0
    /// fdatasyncs in flight, and a moving average of how long one takes (for staggering them).
    var syncsInFlight = 0
    var averageSyncNanoseconds: UInt64 = 100_000
    var threads: [pthread_t] = []

    /// One past the last acknowledged record.
    let acknowledgedEnd: Atomic<UInt64>
    let counters = Counters()

    /// Serializes rewrites of `log-manifest` (roll, compaction swap, retention, close): each takes
    /// its snapshot of `segments` under it, so the last one written is the newest shape.
    let manifestLock = ThreadLock()
    /// The ranges removed on purpose, as the manifest records them. Guarded by `manifestLock`.
    var manifestGaps: [LogManifest.Gap]

    init(directory: String, configuration: LogConfiguration, lockFD: Int32, segments: [Segment],
         nextOffset: UInt64, recovery: RecoveryReport, manifestGaps: [LogManifest.Gap] = []) {
        self.manifestGaps = manifestGaps
        self.directory = directory
        self.configuration = configuration
        self.syscalls = configuration.syscalls
        self.lockFD = lockFD
        self.segments = segments
        self.currentSegment = segments[segments.count - 1]
        self.nextOffset = nextOffset
        self.writerScratch = WriterScratch(compressionThreshold: configuration.compressionThresholdBytes)
        self.acknowledgedEnd = Atomic(nextOffset)
        self.recovery = recovery
        // What a first sync covers: the file as open found it (and made it; a crash may have left
        // bytes in the page cache only, which that sync makes durable too).
        currentSegment.publishedDataEnd = currentSegment.writePosition
        currentSegment.publishedExtent = max(currentSegment.zeroedUpTo, currentSegment.writePosition)
        // A reader has no writer thread: appends and flushes are refused at the door (``refusal()``).
        if configuration.access == .readOnly { intake.refuse() }
    }

    /// The offset of the first record still in the log (the first segment's base).
    public var startOffset: UInt64 {
        segmentLock.withLock { segments[0].baseOffset }
    }

    /// A log dropped without ``close()`` is closed here (errors are ignored; call `close()` to see them).
    deinit {
        try? close()
    }

    /// One past the offset of the last acknowledged record: the offset the next append will get
    /// once everything in flight has been acknowledged.
    public var endOffset: UInt64 { acknowledgedEnd.load(ordering: .acquiring) }

    /// Base offsets of the segments, oldest first; the last is the active segment.
    public var segmentBaseOffsets: [UInt64] {
        segmentLock.withLock { segments.map(\.baseOffset) }
    }

    /// Counters since open.
    public var statistics: LogStatistics {
        LogStatistics(fdatasyncs: counters.fdatasyncs.load(ordering: .relaxed),
                      batchesWritten: counters.batches.load(ordering: .relaxed),
                      recordsWritten: counters.records.load(ordering: .relaxed),
                      bytesWritten: counters.bytes.load(ordering: .relaxed),
                      segmentsRolled: counters.rolls.load(ordering: .relaxed),
                      fdatasyncNanoseconds: counters.fdatasyncNanoseconds.load(ordering: .relaxed),
                      syncAcknowledged: counters.syncAcknowledged.load(ordering: .relaxed),
                      writtenToSyncStartNanoseconds: counters.writtenToSyncStartNanoseconds.load(ordering: .relaxed),
                      syncStartToAcknowledgedNanoseconds: counters.syncStartToAcknowledgedNanoseconds.load(ordering: .relaxed))
    }

    /// Stops the writer and syncers, cuts the active segment's zero-filled preallocation, syncs
    /// everything written, trims the active index and writes the clean-shutdown marker so that
    /// the next open skips the scan.
    ///
    /// Appends that were waiting are completed first. Calling `close()` twice is harmless.
    /// - Throws: the error that poisoned the log, if one did (no marker is written then), or
    ///   ``LogError/Code/io`` when the final sync fails.
    public func close() throws(LogError) {
        guard stopThreads(abandoning: false) else { return }
        stopMaintenance()
        defer { if lockFD >= 0 { syscalls.close(lockFD) } }
        // A reader wrote nothing and writes nothing now: it only lets go of the lock.
        if configuration.access == .readOnly { return }
        if let failure = pipelineLock.withLock({ failure }) { throw failure }
        let active = currentSegment
        // The recorded extent first, down to the data (the threads are stopped: nothing raises it).
        try manifestLock.withLock { () throws(LogError) in try lowerExtentBeforeCut(of: active, to: active.writePosition) }
        do {
            // A closed log takes only the bytes it holds; the next append preallocates again.
            if active.zeroedUpTo > active.writePosition {
                try syscalls.ftruncate(active.fd, to: Int64(active.writePosition))
                active.zeroedUpTo = active.writePosition
            }
        } catch {
            throw .io(error, "cannot cut the preallocated tail at byte \(active.writePosition)", path: active.logPath)
        }
        do {
            try syscalls.fdatasync(active.fd)
        } catch {
            throw .io(error, "the final fdatasync failed; reopen to recover", path: active.logPath)
        }
        try active.index.persist(trim: true)
        // The manifest first, with the active segment's length: the marker vouches for both.
        try writeManifest(cleanClose: true, activeLength: active.writePosition)
        let marker = CheckpointFile(magic: CheckpointFile.cleanShutdownMagic,
                                    fields: [nextOffset, active.baseOffset, UInt64(active.writePosition)])
        try CheckpointFile.writeAtomically(marker.encoded, directory: directory, name: CheckpointFile.cleanShutdownName, syscalls: syscalls)
    }

    /// Stops the threads without syncing or writing the clean-shutdown marker, and releases the
    /// directory lock: what a killed process leaves behind (the page cache keeps what was written).
    package func abandon() {
        guard stopThreads(abandoning: true) else { return }
        stopMaintenance()
        if lockFD >= 0 { syscalls.close(lockFD) }
    }

    /// Rewrites `log-manifest` from the segments in memory: every sealed segment with its length,
    /// the active one with `activeLength` (at a clean close) or its durable extent, and the recorded
    /// gaps. `adding` records a new gap first. Cheap (one small atomic file replace); called when
    /// the set of segments changes, at close, and when the active segment's extent changes.
    func writeManifest(cleanClose: Bool = false, activeLength: Int? = nil, adding gap: LogManifest.Gap? = nil) throws(LogError) {
        try manifestLock.withLock { () throws(LogError) in
            try writeManifestLocked(cleanClose: cleanClose, activeLength: activeLength, adding: gap)
        }
    }

    /// ``writeManifest(cleanClose:activeLength:adding:)`` with `manifestLock` held. `activeExtent`
    /// records that extent for that segment, if it is the active one, instead of its `recordedExtent`.
    func writeManifestLocked(cleanClose: Bool = false, activeLength: Int? = nil, adding gap: LogManifest.Gap? = nil,
                             activeExtent: (segment: Segment, extent: Int)? = nil) throws(LogError) {
        var manifest = LogManifest(cleanClose: cleanClose, gaps: manifestGaps)
        if let gap { manifest.record(gap.offsets, gap.reason) }
        let snapshot: [Segment] = segmentLock.withLock { segments }
        for (i, segment) in snapshot.enumerated() {
            let isLast = i == snapshot.count - 1
            let length: Int? = isLast ? activeLength : segment.readableSize.load(ordering: .acquiring)
            var entry = LogManifest.Entry(base: segment.baseOffset, length: length.map { UInt64($0) })
            if isLast, length == nil {
                // The active segment's first batch, once durable (a sealed one's is filled in by `write`).
                if segment.firstBatchDurable.load(ordering: .relaxed) {
                    entry.fingerprint = LogManifest.fingerprint(ofSegment: segment.logPath, syscalls: syscalls)
                }
                let extent = activeExtent.flatMap { $0.segment === segment ? $0.extent : nil }
                    ?? segment.recordedExtent.load(ordering: .relaxed)
                if extent > 0 { entry.extent = UInt64(extent) }
            }
            manifest.segments.append(entry)
        }
        try manifest.write(directory: directory, syscalls: syscalls)
        manifestGaps = manifest.gaps
    }

    /// Rewrites `log-manifest` with `extent` as `segment`'s durable extent, then remembers it in
    /// `segment.recordedExtent`. Call with `manifestLock` held; every change of the extent goes
    /// through here, so the manifest on disk is never behind what the log acts on.
    func writeExtentLocked(_ extent: Int, of segment: Segment) throws(LogError) {
        try writeManifestLocked(activeExtent: (segment, extent))
        segment.recordedExtent.store(extent, ordering: .relaxed)
    }

    /// Before the active segment's file is cut to its data (`length`, by a roll or a clean close):
    /// stops raising its extent and lowers a recorded extent beyond `length` to `length`, so that the
    /// manifest never records more than the file may hold after the cut (a crash right after the
    /// `ftruncate` would otherwise read as damage). Safe to lower: every record acknowledged in the
    /// segment ends within its data. Call with `manifestLock` held; writes the manifest only when the
    /// recorded extent is beyond `length`.
    func lowerExtentBeforeCut(of segment: Segment, to length: Int) throws(LogError) {
        segment.extentFrozen = true
        guard segment.recordedExtent.load(ordering: .relaxed) > length else { return }
        try writeExtentLocked(length, of: segment)
    }

    /// Refuses new calls, lets the writer finish what it was given (when abandoning, fails it
    /// instead), and joins the threads. Returns false when the log was already stopped.
    private func stopThreads(abandoning: Bool) -> Bool {
        let alreadyClosed: Bool = pipelineLock.withLock {
            if closed { return true }
            closed = true
            intake.refuse()
            closing = true
            if abandoning && failure == nil { failure = LogError(.closed, "the log was abandoned") }
            syncWakeup.broadcast()
            return false
        }
        if alreadyClosed { return false }
        segmentLock.withLock { refusesReads = true }
        intake.stopping.store(true, ordering: .sequentiallyConsistent)
        intake.wake()
        for thread in threads { pthread_join(thread, nil) }
        threads = []
        return true
    }
}

// All mutable state is guarded by `segmentLock` or `pipelineLock`, written only under `writeLock`
// (offsets, segment write positions), or atomic; see the comments on each property.
extension Log: @unchecked Sendable {}

/// Counters kept by a ``Log`` since it was opened.
public struct LogStatistics: Sendable, Equatable {
    /// `fdatasync` calls issued for appends and flushes (group commits).
    public var fdatasyncs: Int
    /// Record batches written.
    public var batchesWritten: Int
    /// Records written.
    public var recordsWritten: Int
    /// Bytes written to segments, headers included.
    public var bytesWritten: Int
    /// Segments rolled.
    public var segmentsRolled: Int
    /// Time spent inside those `fdatasync` calls, summed (overlapping syncs each count).
    public var fdatasyncNanoseconds: Int
    /// Appends and flushes acknowledged by an `fdatasync` (in ``Durability/sync`` mode, and
    /// flushes in any mode): the callers the two sums below are over.
    public var syncAcknowledged: Int
    /// Summed over ``syncAcknowledged``: from the end of the write that carried the caller's
    /// records to the start of the `fdatasync` that covered them (group commit gathering, and
    /// waiting for a syncer). Divide by ``syncAcknowledged`` for the mean.
    public var writtenToSyncStartNanoseconds: Int
    /// Summed over ``syncAcknowledged``: from the start of that `fdatasync` to the caller's
    /// acknowledgement (the sync itself, then waiting for earlier overlapping syncs to finish,
    /// since acknowledgements go in claim order). Divide by ``syncAcknowledged`` for the mean.
    public var syncStartToAcknowledgedNanoseconds: Int
}

final class Counters: Sendable {
    let fdatasyncs = Atomic<Int>(0)
    let batches = Atomic<Int>(0)
    let records = Atomic<Int>(0)
    let bytes = Atomic<Int>(0)
    let rolls = Atomic<Int>(0)
    let fdatasyncNanoseconds = Atomic<Int>(0)
    let syncAcknowledged = Atomic<Int>(0)
    let writtenToSyncStartNanoseconds = Atomic<Int>(0)
    let syncStartToAcknowledgedNanoseconds = Atomic<Int>(0)
}

/// What ``Log/open(directory:configuration:)`` found and repaired.
public struct RecoveryReport: Sendable, Equatable {
    /// The previous owner closed the log cleanly, so no batch was scanned.
    public var cleanShutdown = false
    /// Segments in the log after open.
    public var segments = 0
    /// Bytes of batches verified by the scan.
    public var scannedBytes = 0
    /// Bytes cut from the end of the last segment (a torn tail), zero-filled preallocation excluded.
    public var truncatedBytes = 0
    /// The segment file whose torn tail was cut, if any.
    public var truncatedSegment: String?
    /// The byte position in ``truncatedSegment`` where the cut tail began.
    public var truncatedPosition: Int?
    /// The log was opened ``LogAccess/readOnly`` and the torn tail described by ``truncatedSegment``
    /// and ``truncatedPosition`` was only ignored (it is still in the file; a read-write open cuts it).
    public var tornTailIgnored = false
    /// Index files rebuilt from their segments because they were missing or stale.
    public var rebuiltIndexes: [String] = []
    /// Files of an interrupted compaction that were rolled forward or removed.
    public var resolvedCompactionFiles: [String] = []
}
