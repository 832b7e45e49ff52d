#if canImport(Glibc)
import Glibc
#endif

/// Why a ``Log/scan(from:releasingPagesBehind:_:)`` stopped early: the log failed (a damaged
/// batch, a read error, a closed log), or the caller's body threw.
public enum LogScanError<Failure: Error>: Error {
    /// The log's failure, as ``Log/read(from:maxRecords:)`` would have thrown it.
    case log(LogError)
    /// What the body threw; the scan stopped there.
    case body(Failure)
}

extension Log {
    /// Calls `body` with every record from `offset` to ``endOffset`` (as it was when the scan
    /// started), in offset order, across segments, skipping offsets removed by compaction: the
    /// records ``reader(from:releasingPagesBehind:)`` returns, without copying any of them.
    ///
    /// `record` is a view of the record's bytes where they lie: in the sealed segment's mapping,
    /// in the batch decompressed into a buffer the scan reuses, or in the chunk of the active
    /// segment it read. It is valid only during the call; copy what must outlive it. Every
    /// batch's checksum is verified, and the whole batch parsed, before any of its records is
    /// passed on: a batch that fails either throws, and none of its bytes reach `body`.
    ///
    /// With `releasingPagesBehind`, each sealed segment's pages are unmapped from the process once
    /// the scan is past it (as ``reader(from:releasingPagesBehind:)`` does).
    ///
    /// A replay that reads every record of a large log pays for the reader's copies: an array
    /// per record and per chunk of 1,024. This reads the same bytes at the speed of the checksum.
    /// - Returns: the offset after the last record visited, or `offset` when there was none.
    /// - Throws: ``LogScanError/log(_:)`` with what ``read(from:maxRecords:)`` throws
    ///   (``LogError/Code/offsetOutOfRange``, ``LogError/Code/corruptBatch``,
    ///   ``LogError/Code/decompressionFailed``, ``LogError/Code/closed``, ``LogError/Code/io``);
    ///   ``LogScanError/body(_:)`` with what `body` threw.
    @discardableResult
    public func scan<Failure: Error>(from offset: UInt64, releasingPagesBehind: Bool = false,
                                     _ body: (_ offset: UInt64, _ record: UnsafeRawBufferPointer) throws(Failure) -> Void)
        throws(LogScanError<Failure>) -> UInt64 {
        let end = endOffset
        var scanner = SegmentScanner()
        defer { scanner.deallocate() }
        var next = offset
        var first = true
        while true {
            let snapshot = segmentLock.withLock { () -> (Segment, MappedFile?, UInt64?, UInt64)? in
                if refusesReads { return nil }
                let i = segmentIndex(containing: next)
                return (segments[i], segments[i].mapping, i + 1 < segments.count ? segments[i + 1].baseOffset : nil, segments[0].baseOffset)
            }
            guard let (segment, mapping, nextBase, start) = snapshot else {
                throw .log(LogError(.closed, "the log is closed; open it again to read", path: directory))
            }
            if first {
                guard offset >= start else {
                    throw .log(LogError(.offsetOutOfRange, "offset \(offset) is below the log start \(start) (removed by retention)",
                                        path: directory, offset: offset))
                }
                guard offset <= end else {
                    throw .log(LogError(.offsetOutOfRange, "offset \(offset) is past the end of the log (\(end))", path: directory, offset: offset))
                }
                first = false
            }
            if next >= end { return next }
            let size = mapping?.bytes.count ?? segment.readableSize.load(ordering: .acquiring)
            let hint = segment.index.lookup(UInt32(clamping: next - segment.baseOffset))
            try scanner.walk(segment, mapping: mapping, size: size, from: Int(hint.position), hintOffset: hint.relativeOffset,
                             syscalls: syscalls, next: &next, end: end, body)
            guard let nextBase, nextBase < end else { return next }
            if releasingPagesBehind, let mapping { mapping.releasePages() }
            next = max(next, nextBase)
        }
    }
}

/// The buffers one scan reuses: the decompressed batch, and the chunk of an active segment read with `pread`.
private struct SegmentScanner {
    private var raw = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var chunk = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// The segment position of `chunk`'s first byte, and how many bytes it holds.
    private var chunkPosition = 0
    private var chunkCount = 0
    /// The segment `chunk` was read from: held, so that its descriptor stays open and is not
    /// reused by another segment's file while the chunk may be served again.
    private var chunkSegment: Segment?

    /// Bytes read from the active segment at a time.
    static let chunkBytes = 1 << 20

    mutating func deallocate() {
        raw.deallocate()
        chunk.deallocate()
    }

    /// `count` bytes at `position`: a slice of the mapping, or of a chunk read from the file; valid
    /// until the next call. Fewer bytes when the file ends first.
    private mutating func bytes(_ segment: Segment, _ mapping: MappedFile?, at position: Int, count: Int, size: Int,
                                syscalls: any Syscalls) throws(LogError) -> UnsafeRawBufferPointer {
        if let mapping {
            let end = min(position + count, mapping.bytes.count)
            return UnsafeRawBufferPointer(rebasing: mapping.bytes[min(position, end)..<end])
        }
        if chunkSegment !== segment || position < chunkPosition || position + count > chunkPosition + chunkCount {
            let want = max(count, min(Self.chunkBytes, size - position))
            if chunk.count < want {
                chunk.deallocate()
                chunk = .allocate(byteCount: max(want, Self.chunkBytes), alignment: 16)
            }
            let n: Int
            do {
                n = try syscalls.preadFully(segment.fd, into: UnsafeMutableRawBufferPointer(rebasing: chunk[0..<want]), at: Int64(position))
            } catch {
                throw .io(error, "cannot read at byte \(position)", path: segment.logPath)
            }
            chunkSegment = segment
            chunkPosition = position
            chunkCount = n
        }
        let from = position - chunkPosition
        return UnsafeRawBufferPointer(rebasing: chunk[from..<min(from + count, chunkCount)])
    }

    /// Visits the records of one segment's batches from byte `start` on (an index hint for
    /// `next`), those at `next` or after and below `end`, advancing `next` past each.
    mutating func walk<Failure: Error>(_ segment: Segment, mapping: MappedFile?, size: Int, from start: Int, hintOffset: UInt32,
                                       syscalls: any Syscalls, next: inout UInt64, end: UInt64,
                                       _ body: (UInt64, UnsafeRawBufferPointer) throws(Failure) -> Void) throws(LogScanError<Failure>) {
        var position = start
        var trustedStart = start == 0
        while position < size {
            let headerBytes: UnsafeRawBufferPointer
            do { headerBytes = try bytes(segment, mapping, at: position, count: RecordBatchHeader.size, size: size, syscalls: syscalls) } catch {
                throw .log(error)
            }
            let header = RecordBatchHeader(headerBytes)
            guard let header, position + header.totalLength <= size,
                  trustedStart || header.baseOffset == segment.baseOffset + UInt64(hintOffset) else {
                if !trustedStart {
                    // The index pointed somewhere wrong (a stale index): fall back to a scan from the start.
                    trustedStart = true
                    position = 0
                    continue
                }
                throw .log(LogError(.corruptBatch, "invalid batch header at byte \(position); run `spool recover`", path: segment.logPath,
                                    offset: UInt64(position)))
            }
            trustedStart = true
            if header.baseOffset >= end { return }
            let batch: UnsafeRawBufferPointer
            do { batch = try bytes(segment, mapping, at: position, count: header.totalLength, size: size, syscalls: syscalls) } catch {
                throw .log(error)
            }
            // Batches before `next` are verified too (see Log.read(from:maxRecords:)).
            guard header.checksumMatches(batch) else {
                throw .log(LogError(.corruptBatch, "checksum mismatch in the batch at byte \(position); run `spool recover`",
                                    path: segment.logPath, offset: UInt64(position)))
            }
            if header.nextOffset > next {
                let payload: UnsafeRawBufferPointer
                do { payload = try decompressed(header, batch, path: segment.logPath) } catch { throw .log(error) }
                do { try Self.checkSplit(payload, header, path: segment.logPath) } catch { throw .log(error) }
                var p = 0
                var recordOffset = header.baseOffset
                for _ in 0..<header.recordCount {
                    let length = Int(payload.loadUnaligned(fromByteOffset: p, as: UInt32.self).littleEndian)
                    p += 4
                    if recordOffset >= next && recordOffset < end {
                        do { try body(recordOffset, UnsafeRawBufferPointer(rebasing: payload[p..<p + length])) } catch { throw .body(error) }
                        next = recordOffset + 1
                    }
                    p += length
                    recordOffset += 1
                }
            }
            position += header.totalLength
        }
    }

    /// The batch's raw payload: the stored bytes, or them decompressed into `raw`.
    private mutating func decompressed(_ header: RecordBatchHeader, _ batch: UnsafeRawBufferPointer,
                                       path: String) throws(LogError) -> UnsafeRawBufferPointer {
        let stored = UnsafeRawBufferPointer(rebasing: batch[RecordBatchHeader.size..<header.totalLength])
        guard header.isCompressed else { return stored }
        let count = Int(header.rawLength)
        if raw.count < count {
            raw.deallocate()
            raw = .allocate(byteCount: max(count, 1 << 16), alignment: 16)
        }
        let target = UnsafeMutableRawBufferPointer(rebasing: raw[0..<count])
        guard LZ4.decompress(stored, into: target) == count else {
            throw LogError(.decompressionFailed, "batch at offset \(header.baseOffset) does not decompress to \(header.rawLength) bytes",
                           path: path)
        }
        return UnsafeRawBufferPointer(target)
    }

    /// Throws unless `raw` is exactly the header's count of length-prefixed records (as
    /// `RecordBatch.splitRecords` requires), before any record of the batch is passed on.
    private static func checkSplit(_ raw: UnsafeRawBufferPointer, _ header: RecordBatchHeader, path: String) throws(LogError) {
        var position = 0
        var records = 0
        while records < Int(header.recordCount) {
            guard position + 4 <= raw.count else { break }
            let length = Int(raw.loadUnaligned(fromByteOffset: position, as: UInt32.self).littleEndian)
            position += 4
            guard length <= raw.count - position else { break }
            position += length
            records += 1
        }
        guard records == Int(header.recordCount), position == raw.count else {
            throw LogError(.corruptBatch, "batch at offset \(header.baseOffset): payload does not hold \(header.recordCount) records",
                           path: path)
        }
    }
}
