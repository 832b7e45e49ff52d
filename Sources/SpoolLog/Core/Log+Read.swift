#if canImport(Glibc)
import Glibc
#endif

/// A record read back from the log.
public struct LogRecord: Sendable, Equatable {
    /// The record's offset.
    public var offset: UInt64
    /// The bytes that were appended.
    public var payload: [UInt8]

    /// A record value.
    public init(offset: UInt64, payload: [UInt8]) {
        self.offset = offset
        self.payload = payload
    }
}

extension Log {
    /// The record at `offset`.
    ///
    /// Cost: an index lookup (binary search), then reading and verifying at most about
    /// ``LogConfiguration/indexIntervalBytes`` of batches.
    /// - Throws: ``LogError/Code/offsetOutOfRange`` when `offset` is below ``startOffset``, at or past
    ///   ``endOffset``, or was removed by compaction; ``LogError/Code/corruptBatch`` when the batch holding
    ///   it fails its checksum (its bytes are never returned); ``LogError/Code/closed`` after ``close()``.
    public func read(at offset: UInt64) throws(LogError) -> [UInt8] {
        let records = try read(from: offset, maxRecords: 1)
        guard let record = records.first, record.offset == offset else {
            throw LogError(.offsetOutOfRange, "offset \(offset) is not in the log (it was removed by compaction)", path: directory,
                           offset: offset)
        }
        return record.payload
    }

    /// Up to `maxRecords` records from `offset` on (skipping offsets removed by compaction),
    /// stopping at the end of the segment that holds `offset` or at ``endOffset``.
    /// An empty result means `offset` is the end of the log.
    ///
    /// - Throws: ``LogError/Code/invalidArgument`` when `maxRecords < 1`; ``LogError/Code/offsetOutOfRange``
    ///   when `offset` is below ``startOffset`` or past ``endOffset``; ``LogError/Code/corruptBatch``;
    ///   ``LogError/Code/closed`` after ``close()``.
    public func read(from offset: UInt64, maxRecords: Int = 1024) throws(LogError) -> [LogRecord] {
        guard maxRecords >= 1 else { throw LogError(.invalidArgument, "maxRecords = \(maxRecords) must be at least 1") }
        let end = endOffset
        let snapshot = segmentLock.withLock { () -> (Segment, MappedFile?, UInt64?, UInt64)? in
            if refusesReads { return nil }
            let i = segmentIndex(containing: offset)
            return (segments[i], segments[i].mapping, i + 1 < segments.count ? segments[i + 1].baseOffset : nil, segments[0].baseOffset)
        }
        guard let (segment, mapping, nextBase, start) = snapshot else {
            throw LogError(.closed, "the log is closed; open it again to read", path: directory)
        }
        guard offset >= start else {
            throw LogError(.offsetOutOfRange, "offset \(offset) is below the log start \(start) (removed by retention)",
                           path: directory, offset: offset)
        }
        guard offset <= end else {
            throw LogError(.offsetOutOfRange, "offset \(offset) is past the end of the log (\(end))", path: directory, offset: offset)
        }
        if offset == end { return [] }
        let size = mapping?.bytes.count ?? segment.readableSize.load(ordering: .acquiring)
        let hint = segment.index.lookup(UInt32(clamping: offset - segment.baseOffset))
        var records = try readBatches(segment, mapping: mapping, size: size, from: Int(hint.position), offset: offset,
                                      limit: min(maxRecords, Int(clamping: end - offset)), hintOffset: hint.relativeOffset)
        if records.isEmpty, let nextBase, nextBase < end {
            // Everything from `offset` to the end of this segment was compacted away.
            records = try read(from: nextBase, maxRecords: maxRecords)
        }
        return records.filter { $0.offset < end }
    }

    /// The index of the last segment whose base is at most `offset` (0 when none); call with `segmentLock` held.
    func segmentIndex(containing offset: UInt64) -> Int {
        var low = 0, high = segments.count - 1, found = 0
        while low <= high {
            let mid = (low + high) / 2
            if segments[mid].baseOffset <= offset { found = mid; low = mid + 1 } else { high = mid - 1 }
        }
        return found
    }

    /// Reads batches of one segment from `position` and collects records at or after `offset`.
    private func readBatches(_ segment: Segment, mapping: MappedFile?, size: Int, from start: Int, offset: UInt64,
                             limit: Int, hintOffset: UInt32) throws(LogError) -> [LogRecord] {
        var position = start
        var records: [LogRecord] = []
        var scratch: [UInt8] = []
        var trustedStart = start == 0
        while position < size && records.count < limit {
            let header: RecordBatchHeader? = try withBytes(segment, mapping, at: position, count: RecordBatchHeader.size, scratch: &scratch) {
                RecordBatchHeader($0)
            }
            guard let header, position + header.totalLength <= size,
                  trustedStart || header.baseOffset == segment.baseOffset + UInt64(hintOffset) else {
                if !trustedStart {
                    // The index pointed somewhere wrong (a stale index): fall back to a scan from the start.
                    trustedStart = true
                    position = 0
                    continue
                }
                throw LogError(.corruptBatch, "invalid batch header at byte \(position); run `spool recover`", path: segment.logPath,
                               offset: UInt64(position))
            }
            trustedStart = true
            // Batches before `offset` are verified too: the checksum covers the header, and a damaged
            // offset, count or length would otherwise make the walk skip records (reported as
            // compacted) or land inside another batch.
            let decoded: [[UInt8]] = try withBytes(segment, mapping, at: position, count: header.totalLength, scratch: &scratch) {
                (batch) throws(LogError) -> [[UInt8]] in
                guard header.checksumMatches(batch) else {
                    throw LogError(.corruptBatch, "checksum mismatch in the batch at byte \(position); run `spool recover`",
                                   path: segment.logPath, offset: UInt64(position))
                }
                return header.nextOffset > offset ? try RecordBatch.decode(header, batch) : []
            }
            for (i, payload) in decoded.enumerated() where header.baseOffset + UInt64(i) >= offset && records.count < limit {
                records.append(LogRecord(offset: header.baseOffset + UInt64(i), payload: payload))
            }
            position += header.totalLength
        }
        return records
    }

    /// Calls `body` with `count` bytes at `position`: a slice of the mapping for a sealed
    /// segment, a `pread` into `scratch` for the active one.
    private func withBytes<T>(_ segment: Segment, _ mapping: MappedFile?, at position: Int, count: Int, scratch: inout [UInt8],
                              _ body: (UnsafeRawBufferPointer) throws(LogError) -> T) throws(LogError) -> T {
        if let mapping {
            let end = min(position + count, mapping.bytes.count)
            return try body(UnsafeRawBufferPointer(rebasing: mapping.bytes[position..<end]))
        }
        let n: Int
        do {
            n = try syscalls.preadFully(segment.fd, into: &scratch, count: count, at: Int64(position))
        } catch {
            throw .io(error, "cannot read at byte \(position)", path: segment.logPath)
        }
        let result: Result<T, LogError> = scratch.withUnsafeBytes { buffer in
            do throws(LogError) { return .success(try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Unmaps from this process the pages of the sealed segments that hold only offsets below
    /// `below`, from the one holding `from` on; returns the base offset of the first segment it
    /// did not release, where the next call can start. See ``reader(from:releasingPagesBehind:)``.
    func releaseMappedPages(from: UInt64, below: UInt64) -> UInt64 {
        let (mappings, next) = segmentLock.withLock { () -> ([MappedFile], UInt64) in
            var mappings: [MappedFile] = []
            var next = from
            var i = segmentIndex(containing: from)
            while i + 1 < segments.count && segments[i + 1].baseOffset <= below {
                if let mapping = segments[i].mapping { mappings.append(mapping) }
                next = segments[i + 1].baseOffset
                i += 1
            }
            return (mappings, next)
        }
        for mapping in mappings { mapping.releasePages() }
        return next
    }

    /// A reader that iterates records from `offset` on, across segments.
    ///
    /// Sealed segments are read through memory mappings, and every page a read touches counts in
    /// the process's resident size (as file-backed memory, which the kernel reclaims when it
    /// needs to), so a scan of the whole log would leave the whole log counted. With
    /// `releasingPagesBehind`, the reader unmaps each sealed segment's pages from the process
    /// once it has read past the segment (`madvise(MADV_DONTNEED)`): they stay in the kernel's
    /// page cache, and a later read maps them again, so no read changes. A task store's and an
    /// engine's replay at open read this way.
    public func reader(from offset: UInt64, releasingPagesBehind: Bool = false) -> LogReader {
        LogReader(log: self, nextOffset: offset, releasesPagesBehind: releasingPagesBehind)
    }
}

/// Sequential iteration over a log's records, across segments, from any thread.
///
/// ```swift
/// var reader = log.reader(from: log.startOffset)
/// while let record = try reader.next() { ... }
/// ```
/// Records are fetched in chunks; `next()` returns `nil` at ``Log/endOffset`` as it was when
/// the chunk was read, and a later call picks up records appended since.
public struct LogReader: Sendable {
    let log: Log
    /// The offset the next call to ``next()`` starts from.
    public private(set) var nextOffset: UInt64
    private var buffer: [LogRecord] = []
    private var position = 0
    private let releasesPagesBehind: Bool
    /// With `releasesPagesBehind`: the segments below this offset have been released.
    private var releasedBelow: UInt64

    init(log: Log, nextOffset: UInt64, releasesPagesBehind: Bool) {
        self.log = log
        self.nextOffset = nextOffset
        self.releasesPagesBehind = releasesPagesBehind
        releasedBelow = nextOffset
    }

    /// The next record, or `nil` at the end of the log.
    /// - Throws: as ``Log/read(from:maxRecords:)``.
    public mutating func next() throws(LogError) -> LogRecord? {
        if position == buffer.count {
            if releasesPagesBehind { releasedBelow = log.releaseMappedPages(from: releasedBelow, below: nextOffset) }
            buffer = try log.read(from: nextOffset, maxRecords: 1024)
            position = 0
            if buffer.isEmpty { return nil }
        }
        let record = buffer[position]
        position += 1
        nextOffset = record.offset + 1
        return record
    }
}
