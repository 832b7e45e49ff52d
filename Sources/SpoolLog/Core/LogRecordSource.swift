/// The records of a log, read either through an open ``Log`` (a compaction that will rewrite it)
/// or through a read-only ``OfflineLog`` (a dry run, which must not change a byte of the
/// directory — opening a ``Log`` may preallocate, cut a torn tail or rewrite its markers).
///
/// The stores' compactions plan from it: which records are still needed, and how many bytes
/// the sealed segments hold.
public struct LogRecordSource {
    /// The first offset the log holds.
    public let startOffset: UInt64
    /// The offset the next append would get.
    public let endOffset: UInt64
    /// The base offset of the active (last) segment: ``Log/compact(below:keeping:)`` rewrites only
    /// the segments before it.
    public let activeBase: UInt64
    /// Bytes of the sealed segments (what a compaction reads).
    public let sealedBytes: Int
    /// How many sealed segments there are.
    public let sealedSegments: Int
    /// Bytes written to the active segment (not its zero-filled preallocated tail).
    public let activeBytes: Int
    private let visit: (UInt64, (LogRecord) throws -> Void) throws -> Void

    /// Reads through an open log.
    public init(log: Log) {
        startOffset = log.startOffset
        endOffset = log.endOffset
        let bases = log.segmentBaseOffsets
        activeBase = bases.last ?? log.endOffset
        sealedBytes = log.segmentLock.withLock { log.segments.dropLast().reduce(0) { $0 + $1.writePosition } }
        sealedSegments = max(0, bases.count - 1)
        activeBytes = log.segmentLock.withLock { log.segments.last?.writePosition ?? 0 }
        visit = { offset, body in
            var reader = log.reader(from: offset)
            while let record = try reader.next() { try body(record) }
        }
    }

    /// Reads segment files without opening the log: nothing in the directory is written.
    /// - Throws: ``LogError/Code/corruptBatch`` when a segment is damaged (run `spool recover`);
    ///   ``LogError/Code/io``.
    public init(offline: OfflineLog) throws(LogError) {
        let segments = try offline.listing().segments
        guard let last = segments.last else {
            throw LogError(.emptyLogDirectory, "holds no log segments", path: offline.directory)
        }
        var end = last.baseOffset
        activeBytes = try offline.walkSegment(last, decodeRecords: false) { item in
            if case .batch(let batch) = item, batch.isIntact { end = max(end, batch.header.nextOffset) }
        }.endOfIntactData
        startOffset = segments[0].baseOffset
        endOffset = end
        activeBase = last.baseOffset
        var sealed = 0
        var walks: [(SegmentFileInfo, UInt64?)] = []
        for (i, segment) in segments.enumerated() {
            walks.append((segment, i + 1 < segments.count ? segments[i + 1].baseOffset : nil))
        }
        for (segment, next) in walks.dropLast() {
            // The written bytes, not the zero-filled preallocated tail.
            sealed += try offline.walkSegment(segment, nextSegmentBase: next) { _ in }.endOfIntactData
        }
        sealedBytes = sealed
        sealedSegments = segments.count - 1
        visit = { offset, body in
            for (segment, next) in walks where next.map({ $0 > offset }) ?? true {
                var records: [LogRecord] = []
                var damage: DamagedBytes?
                try offline.walkSegment(segment, nextSegmentBase: next, decodeRecords: true) { item in
                    switch item {
                    case .batch(let batch):
                        if let decoded = batch.records { records += decoded.lazy.filter { $0.offset >= offset } }
                        else if damage == nil { damage = DamagedBytes(file: segment.path, bytes: batch.bytes, reason: batch.problem ?? "undecodable batch",
                                                                       header: batch.header, offsetsAtMost: nil, firstPossibleOffset: batch.header.baseOffset) }
                    case .damage(let bytes): if damage == nil { damage = bytes }
                    case .zeroTail: break
                    }
                }
                if let damage {
                    throw LogError(.corruptBatch, "\(damage.reason) at byte \(damage.bytes.lowerBound); run `spool recover` first",
                                   path: damage.file, offset: UInt64(damage.bytes.lowerBound))
                }
                for record in records { try body(record) }
            }
        }
    }

    /// Calls `body` with every record from `offset` on, in offset order.
    /// - Throws: what `body` throws; ``LogError`` from reading.
    public func forEachRecord(from offset: UInt64, _ body: (LogRecord) throws -> Void) throws {
        try visit(offset, body)
    }
}

/// A set of log offsets in `[start, end)`, one bit each: what a compaction keeps.
public struct LiveOffsets: Sendable {
    /// The first offset the set can hold.
    public let start: UInt64
    /// One past the last offset the set can hold.
    public let end: UInt64
    private var words: [UInt64]

    /// An empty set over `start..<end` (`(end - start) / 8` bytes).
    public init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = max(start, end)
        words = Array(repeating: 0, count: Int((self.end - start + 63) / 64))
    }

    /// Adds `offset`; offsets outside the range are ignored.
    public mutating func insert(_ offset: UInt64) {
        guard offset >= start && offset < end else { return }
        let bit = offset - start
        words[Int(bit / 64)] |= 1 << (bit % 64)
    }

    /// Removes `offset`.
    public mutating func remove(_ offset: UInt64) {
        guard offset >= start && offset < end else { return }
        let bit = offset - start
        words[Int(bit / 64)] &= ~(1 << (bit % 64))
    }

    /// Whether `offset` is in the set.
    public func contains(_ offset: UInt64) -> Bool {
        guard offset >= start && offset < end else { return false }
        let bit = offset - start
        return words[Int(bit / 64)] & (1 << (bit % 64)) != 0
    }
}

extension LogRecordSource {
    /// What ``Log/compact(below:keeping:)`` would do with `isLive`, without writing: records kept
    /// and dropped in the sealed segments (and in the active one, with `includingActiveSegment`, as a
    /// compaction that seals it first rewrites it), and the bytes of the segments it would write, estimated
    /// without compression (a batch header per run of consecutive kept offsets, plus each record).
    public func estimateCompaction(segmentBytes: Int, includingActiveSegment: Bool = false,
                                   keeping isLive: (UInt64) -> Bool) throws -> CompactionSummary {
        var summary = CompactionSummary()
        // A compaction that seals the active segment first (LogConfiguration.sealsActiveSegmentAtOpen) rewrites it too.
        let limit = includingActiveSegment && activeBytes > 0 ? endOffset : activeBase
        guard startOffset < limit else { return summary }
        var previous: UInt64?
        var written = 0
        try forEachRecord(from: startOffset) { record in
            guard record.offset < limit else { return }
            if isLive(record.offset) {
                summary.recordsKept += 1
                if previous.map({ $0 + 1 != record.offset }) ?? true { written += RecordBatchHeader.size }
                written += record.payload.count + 4
                previous = record.offset
            } else {
                summary.recordsDropped += 1
            }
        }
        let sealsActive = limit == endOffset && activeBase < endOffset
        summary.bytesBefore = sealedBytes + (sealsActive ? activeBytes : 0)
        summary.bytesAfter = written
        summary.segmentsRewritten = sealedSegments + (sealsActive ? 1 : 0)
        summary.segmentsWritten = written == 0 ? 0 : (written + segmentBytes - 1) / segmentBytes
        return summary
    }
}

/// Progress of a compaction's copy: offsets of the sealed segments done, and in all.
public typealias CompactionProgress = (_ done: UInt64, _ total: UInt64) -> Void

extension LogRecordSource {
    /// `isLive` as a ``Log/compact(below:keeping:)`` predicate that reports progress: once before the
    /// first record, then every 1,024 records.
    public func reporting(_ progress: CompactionProgress?, _ isLive: @escaping (UInt64) -> Bool) -> (LogRecord) -> Bool {
        guard let progress else { return { isLive($0.offset) } }
        let start = startOffset
        let total = activeBase > start ? activeBase - start : 0
        var seen = 0
        progress(0, total)
        return { record in
            seen += 1
            if seen & 1023 == 0 { progress(record.offset - start, total) }
            return isLive(record.offset)
        }
    }
}

extension LogRecordSource {
    /// `isLive` as a ``Log/compactByOffset(below:keeping:)`` predicate that reports progress: once
    /// before the first offset, then every 1,024 offsets judged.
    public func reportingOffsets(_ progress: CompactionProgress?, _ isLive: @escaping (UInt64) -> Bool) -> (UInt64) -> Bool {
        guard let progress else { return isLive }
        let start = startOffset
        let total = activeBase > start ? activeBase - start : 0
        var seen = 0
        progress(0, total)
        return { offset in
            seen += 1
            if seen & 1023 == 0 { progress(offset - start, total) }
            return isLive(offset)
        }
    }
}

extension LogRecordSource {
    /// Bytes of the records for which `isLive` is true, over the whole log (the active segment
    /// too): each record's payload and its 4-byte length; batch headers not counted.
    public func liveBytes(_ isLive: (UInt64) -> Bool) throws -> Int {
        var bytes = 0
        try forEachRecord(from: startOffset) { record in
            if isLive(record.offset) { bytes += record.payload.count + 4 }
        }
        return bytes
    }
}
