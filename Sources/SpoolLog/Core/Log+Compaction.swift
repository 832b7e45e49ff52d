#if canImport(Glibc)
import Glibc
#endif

/// What ``Log/compact(below:keeping:)`` did.
public struct CompactionSummary: Sendable, Equatable {
    /// Sealed segments that were read and replaced.
    public var segmentsRewritten = 0
    /// Segments written in their place.
    public var segmentsWritten = 0
    /// Records copied forward.
    public var recordsKept = 0
    /// Records dropped.
    public var recordsDropped = 0
    /// Bytes of the replaced segments.
    public var bytesBefore = 0
    /// Bytes of the segments written in their place.
    public var bytesAfter = 0
}

extension Log {
    /// Rewrites the sealed segments whose records all lie below `offset` (every sealed segment
    /// when `nil`), keeping the records for which `isLive` returns true, with their offsets, and
    /// swaps the new segments in.
    ///
    /// The swap is crash-safe: new segments are written as `*.log.cleaned` / `*.index.cleaned` and
    /// fsynced; a `swap-manifest` naming old and new segments is then installed atomically — the
    /// commit point; then the renames and deletions follow. Opening a log whose swap was interrupted
    /// finishes it when the manifest exists and discards the `.cleaned` files when it does not.
    /// Appends and reads may continue meanwhile: only sealed segments are touched. Compactions and
    /// ``deleteSegments(below:)`` run one at a time (`isLive` must not call either).
    ///
    /// - Throws: what `isLive` throws (nothing is changed then); ``LogError/Code/corruptBatch`` from
    ///   reading; ``LogError/Code/io``. A failure after the commit point poisons the log (reopen it).
    public func compact(below offset: UInt64? = nil, keeping isLive: (LogRecord) throws -> Bool) throws -> CompactionSummary {
        try withoutActuallyEscaping(isLive) { isLive in try compact(below: offset, judge: .record(isLive), pacer: nil) }
    }

    /// ``compact(below:keeping:)`` for a predicate on offsets alone — what the stores' compactions
    /// use — which lets it skip work: a batch with no live record is not decoded (its checksum is
    /// still verified), and a batch whose records are all live is copied as it is, compressed or
    /// not, without decoding or re-encoding it. Same crash safety, same result for readers.
    public func compactByOffset(below offset: UInt64? = nil, keeping isLive: (UInt64) throws -> Bool) throws -> CompactionSummary {
        try withoutActuallyEscaping(isLive) { isLive in try compact(below: offset, judge: .offset(isLive), pacer: nil) }
    }

    /// How a compaction decides which records stay.
    enum Judge {
        case record((LogRecord) throws -> Bool)
        case offset((UInt64) throws -> Bool)
    }

    /// A compaction in three steps, as Kafka's `Cleaner` does (`cleanSegments` / `cleanInto` /
    /// `replaceSegments`): pick the sealed segments (``compactionCandidates(below:)``), copy their
    /// live records into `.cleaned` files (``copyLiveRecords(of:judge:into:summary:)``), then swap those in
    /// through the manifest (``swapInCompactedSegments(_:writer:)``). Crash points, in order: the
    /// `.cleaned` files' writes and fsyncs; the directory fsync and the manifest's install (the
    /// commit point); the renames, deletions, directory fsync and the manifest's removal.
    func compact(below offset: UInt64?, judge: Judge, pacer: CompactionPacer?) throws -> CompactionSummary {
        if let error = pipelineLock.withLock({ refusal() }) { throw error }
        // One compaction or deletion at a time: each works on a snapshot of the sealed segments.
        maintenanceLock.lock()
        defer { maintenanceLock.unlock() }
        if maintenanceStopping.load(ordering: .acquiring) { throw LogError(.closed, "the log is closed", path: directory) }
        let candidates = compactionCandidates(below: offset)
        guard let first = candidates.first else { return CompactionSummary() }
        var summary = CompactionSummary()
        var writer = CleanedSegmentWriter(directory: directory, firstBase: first.baseOffset, configuration: configuration)
        do {
            try copyLiveRecords(of: candidates, judge: judge, pacer: pacer, into: &writer, summary: &summary)
            try writer.finish()
        } catch {
            writer.discard()
            throw error
        }
        summary.segmentsWritten = writer.written.count
        summary.bytesAfter = writer.written.reduce(0) { $0 + $1.size }
        try swapInCompactedSegments(candidates, writer: &writer)
        return summary
    }

    /// Planning: the sealed segments whose records all lie below `offset` (every sealed segment
    /// when `nil`), oldest first. The active segment is never one of them.
    func compactionCandidates(below offset: UInt64?) -> [Segment] {
        segmentLock.withLock {
            var picked: [Segment] = []
            for i in 0..<(segments.count - 1) {
                let next = segments[i + 1].baseOffset
                if let offset, next > offset { break }
                picked.append(segments[i])
            }
            return picked
        }
    }
}
