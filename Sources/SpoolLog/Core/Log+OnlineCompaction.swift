#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SpoolPrimitives

/// When, and how fast, a store compacts its log while it runs (the task store's
/// ``TaskStoreConfiguration``-side and the engine's settings both hold one).
///
/// Every ``checkInterval`` the store compares its log's bytes with the bytes of the records a
/// reopen still needs (*live* bytes: each live record's payload and 4-byte length). When the
/// dead bytes of the sealed segments are at least ``minimumDeadBytes`` and at least
/// ``minimumDeadFraction`` of their bytes, the sealed segments are rewritten without the dead
/// records (``Log/compactByOffset(below:keeping:pacer:)``), at most ``bytesPerSecond`` bytes of
/// segment read per second. When the log as a whole meets the rule but its sealed segments
/// alone do not — the dead records are in the active segment, as in a store smaller than one
/// segment — the store asks the log to roll the active segment (``Log/requestRoll()``), waits up
/// to 200 ms for the append that rolls it, and rewrites it in the same round (else the next round does).
///
/// Disk use between rounds stays near `live / (1 − minimumDeadFraction)` plus
/// ``minimumDeadBytes``: 0.25 keeps a steady store under about 1.33× its live data.
public struct OnlineCompactionPolicy: Sendable, Equatable {
    /// Whether the store compacts in the background at all. Default true.
    public var isEnabled = true
    /// The fraction of the sealed segments' bytes that must be dead. Default 0.25.
    public var minimumDeadFraction = 0.25
    /// The dead bytes the sealed segments must hold. Default 8 MiB.
    public var minimumDeadBytes = 8 << 20
    /// Segment bytes read (and rewritten) per second at most; 0 for no limit. Default 64 MiB/s.
    public var bytesPerSecond = 64 << 20
    /// How often the store looks. Default 10 s. A look costs one read of the records after the
    /// task store's ack level (or the engine's checkpoint), skipped while the log has not grown
    /// by enough since the last measure to make a compaction due.
    public var checkInterval: Duration = .seconds(10)

    /// The defaults described on each property.
    public init() {}

    /// No background compaction.
    public static var disabled: OnlineCompactionPolicy {
        var policy = OnlineCompactionPolicy()
        policy.isEnabled = false
        return policy
    }

    /// Whether `totalBytes` of segments of which `liveBytes` are live are worth rewriting.
    public func isDue(totalBytes: Int, liveBytes: Int) -> Bool {
        let dead = totalBytes - liveBytes
        return dead > 0 && dead >= minimumDeadBytes && Double(dead) >= minimumDeadFraction * Double(totalBytes)
    }

    /// The first field out of range, as its name, its value and the rule it breaks; nil when
    /// every field is valid.
    public var problem: (field: String, value: String, rule: String)? {
        guard minimumDeadFraction.isFinite, minimumDeadFraction > 0, minimumDeadFraction < 1 else {
            return ("minimumDeadFraction", "\(minimumDeadFraction)", "must be between 0 and 1 (exclusive)")
        }
        guard minimumDeadBytes >= 0 else { return ("minimumDeadBytes", "\(minimumDeadBytes)", "must not be negative") }
        guard bytesPerSecond >= 0 else { return ("bytesPerSecond", "\(bytesPerSecond)", "must not be negative (0: no limit)") }
        guard checkInterval > .zero else { return ("checkInterval", "\(checkInterval)", "must be positive") }
        return nil
    }
}

/// Paces an online compaction: ``Log/compactByOffset(below:keeping:pacer:)`` calls it after each
/// batch it reads, and it sleeps the compacting thread to hold the rate; ``cancel()`` makes the
/// compaction stop at its next batch (nothing is changed then: the `.cleaned` files are removed).
public final class CompactionPacer: Sendable {
    /// Bytes per second at most; 0 for no limit.
    public let bytesPerSecond: Int
    private let cancelled = Atomic<Bool>(false)
    private let progress = Mutex<(start: UInt64, bytes: Int)>((0, 0))

    /// A pacer at `bytesPerSecond` (0: no limit).
    public init(bytesPerSecond: Int) { self.bytesPerSecond = max(0, bytesPerSecond) }

    /// Stops the compaction at its next batch.
    public func cancel() { cancelled.store(true, ordering: .releasing) }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Accounts for `bytes` read; sleeps (in slices of at most 20 ms, watching for a cancel)
    /// until the rate allows them.
    /// - Throws: ``LogError/Code/closed`` once cancelled.
    func pace(_ bytes: Int, directory: String) throws(LogError) {
        if isCancelled { throw LogError(.closed, "the compaction was cancelled", path: directory) }
        guard bytesPerSecond > 0 else { return }
        let now = monotonicNanoseconds()
        let due: UInt64 = progress.withLock { progress in
            if progress.start == 0 { progress.start = now }
            progress.bytes += bytes
            let seconds = Double(progress.bytes) / Double(bytesPerSecond)
            return progress.start &+ UInt64(seconds * 1e9)
        }
        var current = now
        while current < due {
            if isCancelled { throw LogError(.closed, "the compaction was cancelled", path: directory) }
            var pause = timespec(tv_sec: 0, tv_nsec: Int(min(due - current, 20_000_000)))
            nanosleep(&pause, nil)
            current = monotonicNanoseconds()
        }
    }
}

extension Log {
    /// Asks the writer to seal the active segment before its next write (when it holds
    /// something), so that a compaction can rewrite it. Returns at once; nothing happens while
    /// nothing is appended.
    public func requestRoll() {
        rollRequested.store(true, ordering: .releasing)
    }

    /// Waits up to 200 ms for the active segment to be another than the one at `base` (after a
    /// ``requestRoll()``, the writer rolls at its next write). False when it is not, or the
    /// calling task was cancelled.
    package func waitForRoll(from base: UInt64?) async -> Bool {
        for _ in 0..<40 {
            if segmentBaseOffsets.last != base { return true }
            do { try await Task.sleep(for: .milliseconds(5)) } catch { return false }
        }
        return false
    }

    /// ``compactByOffset(below:keeping:)`` paced by `pacer` (and stopped by its cancel): what the
    /// stores' online compactions use. Appends and reads go on meanwhile; the locks appends take
    /// are held only to snapshot and swap the segment list, and `manifestLock` (which a roll also
    /// takes) during the swap's renames.
    public func compactByOffset(below offset: UInt64?, keeping isLive: (UInt64) throws -> Bool,
                                pacer: CompactionPacer?) throws -> CompactionSummary {
        try withoutActuallyEscaping(isLive) { isLive in try compact(below: offset, judge: .offset(isLive), pacer: pacer) }
    }

    /// Bytes of the log's segments (sealed, and written to the active one): what it takes on disk,
    /// less indexes and preallocation.
    public var segmentBytes: Int {
        segmentLock.withLock { segments.reduce(0) { $0 + $1.writePosition } }
    }

    /// The segments' base offsets and bytes (written bytes for the active one), oldest first.
    public var segmentLayout: [(baseOffset: UInt64, bytes: Int)] {
        segmentLock.withLock { segments.map { ($0.baseOffset, $0.writePosition) } }
    }

    /// Called by close and abandon once the threads are stopped: a compaction or deletion in
    /// progress stops at its next batch (or finishes its swap), and none starts after.
    func stopMaintenance() {
        maintenanceStopping.store(true, ordering: .releasing)
        maintenanceLock.lock()
        maintenanceLock.unlock()
    }
}

/// What a store's online round is asked to do: follow the policy, rewrite regardless (`force`), or
/// only measure the log. Shared by the task store's and the engine's rounds.
package enum OnlineCompactionRound: Sendable {
    case policy, force, measure
}

/// What one round of a store's online compaction did.
public enum OnlineCompactionOutcome: Sendable, Equatable {
    /// Nothing to do: the log holds `segmentBytes`, of which `liveBytes` are live (nil when the
    /// round did not measure, the log being unchanged since the last measure).
    case notDue(segmentBytes: Int, liveBytes: Int?)
    /// The dead records are in the active segment: the log was asked to roll it
    /// (``Log/requestRoll()``), and the next round can rewrite it.
    case rolledActiveSegment(segmentBytes: Int, liveBytes: Int)
    /// The sealed segments were rewritten; `liveBytes` were live in the whole log when judged.
    case compacted(CompactionSummary, liveBytes: Int)
    /// Another compaction, a segment deletion or the store's close was under way.
    case busy
}

/// Counters of a store's online compaction since open.
public struct OnlineCompactionStatistics: Sendable, Equatable {
    /// Rounds run (by the background loop or called).
    public var rounds = 0
    /// Rounds that read the log to measure its live bytes.
    public var measures = 0
    /// Rounds that rewrote sealed segments.
    public var compactions = 0
    /// Rolls of the active segment asked for.
    public var rollsRequested = 0
    /// Rounds that failed (the error went to the store's logger).
    public var failures = 0
    /// Bytes of the segments rewritten, in all.
    public var bytesBefore = 0
    /// Bytes of the segments written in their place, in all.
    public var bytesAfter = 0
    /// Records dropped in all.
    public var recordsDropped = 0
    /// Bytes of the log's segments at the last round.
    public var lastSegmentBytes: Int?
    /// Bytes of the live records (payload and length) at the last measure.
    public var lastLiveBytes: Int?
    /// The longest round that compacted, in nanoseconds (planning, copy and swap).
    public var longestCompactionNanoseconds: UInt64 = 0

    /// No rounds yet.
    public init() {}

    /// Counts `outcome`, which took `nanoseconds`.
    public mutating func record(_ outcome: OnlineCompactionOutcome, nanoseconds: UInt64) {
        rounds += 1
        switch outcome {
        case .notDue(let segmentBytes, let liveBytes):
            if let liveBytes {
                measures += 1
                lastLiveBytes = liveBytes
            }
            lastSegmentBytes = segmentBytes
        case .rolledActiveSegment(let segmentBytes, let liveBytes):
            measures += 1
            rollsRequested += 1
            lastSegmentBytes = segmentBytes
            lastLiveBytes = liveBytes
        case .compacted(let summary, let liveBytes):
            measures += 1
            compactions += 1
            bytesBefore += summary.bytesBefore
            bytesAfter += summary.bytesAfter
            recordsDropped += summary.recordsDropped
            lastLiveBytes = liveBytes
            longestCompactionNanoseconds = max(longestCompactionNanoseconds, nanoseconds)
        case .busy:
            break
        }
    }
}
