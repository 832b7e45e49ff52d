/// One thing found walking a segment file; see ``OfflineLog/walkSegment(_:nextSegmentBase:decodeRecords:_:)``.
public enum SegmentItem: Sendable {
    /// A batch whose header parses, fits in the file and whose CRC32C matches. It may still be
    /// unusable: see ``SegmentBatch/problem``.
    case batch(SegmentBatch)
    /// Bytes that are neither a valid batch nor the zero-filled tail, up to the next valid batch
    /// (or the last non-zero byte of the file).
    case damage(DamagedBytes)
    /// The zero bytes after the last batch: normal in the active segment, damage in a sealed one.
    case zeroTail(Range<Int>)
}

/// A checksum-valid batch found in a segment file.
public struct SegmentBatch: Sendable {
    /// Byte position of its header in the file.
    public var position: Int
    /// The parsed header.
    public var header: RecordBatchHeader
    /// Why the batch cannot be kept although its checksum matches (its records do not parse, or
    /// its offsets are out of sequence); `nil` for an intact batch.
    public var problem: String?
    /// The decoded records, when asked for and the batch is intact.
    public var records: [LogRecord]?

    /// Whether the batch can be read and kept.
    public var isIntact: Bool { problem == nil }
    /// The offsets of its records.
    public var offsets: Range<UInt64> { header.baseOffset..<header.nextOffset }
    /// Its bytes in the file.
    public var bytes: Range<Int> { position..<position + header.totalLength }
}

/// A damaged byte range of a segment file.
public struct DamagedBytes: Sendable, Equatable {
    /// The segment file.
    public var file: String
    /// The damaged bytes.
    public var bytes: Range<Int>
    /// What is wrong at its first byte.
    public var reason: String
    /// The header at its first byte, when one parses (its fields cannot be trusted: the CRC failed).
    public var header: RecordBatchHeader?
    /// The offsets the damaged bytes can have held: from the end of the previous intact batch to the
    /// start of the next one (or of the next segment). Records may be fewer (compaction leaves gaps);
    /// `nil` when there is no upper bound (the end of the last segment).
    public var offsetsAtMost: Range<UInt64>?
    /// The lowest offset a record in the damaged bytes can have had (the end of the previous intact batch).
    public var firstPossibleOffset: UInt64
}

/// Totals of one walk over a segment.
public struct SegmentWalkSummary: Sendable, Equatable {
    /// Intact batches.
    public var batches = 0
    /// Records in intact batches.
    public var records = 0
    /// First offset of the first intact batch.
    public var firstOffset: UInt64?
    /// Offset after the last intact batch (the segment base when there is none).
    public var nextOffset: UInt64 = 0
    /// Timestamp of the first intact batch.
    public var firstTimestamp: Int64?
    /// Position after the last intact batch.
    public var endOfIntactData = 0
    /// Bytes walked (the file size).
    public var bytes = 0
    /// Whether anything other than intact batches and a zero tail was found.
    public var isDamaged = false
}

/// The batch-by-batch walk behind verification, inspection and repair. Unlike ``SegmentScan`` (which
/// stops at the first damage, as opening does), it resynchronizes after damage with
/// ``SegmentScan/findValidBatch(_:after:minimumOffset:)`` and goes on to the end of the file.
enum SegmentWalk {
    static func run(_ bytes: UnsafeRawBufferPointer, file: String, baseOffset: UInt64, nextSegmentBase: UInt64?,
                    decodeRecords: Bool, _ visit: (SegmentItem) -> Void) -> SegmentWalkSummary {
        var summary = SegmentWalkSummary(nextOffset: baseOffset, bytes: bytes.count)
        var position = 0
        var next = baseOffset
        while position < bytes.count {
            let view = UnsafeRawBufferPointer(rebasing: bytes[position...])
            let header = RecordBatchHeader(view)
            var reason: String?
            if let header {
                if header.totalLength > view.count {
                    reason = "batch of \(header.totalLength) bytes runs past the end of the file"
                } else if !header.checksumMatches(view) {
                    reason = "checksum mismatch"
                }
            } else if SegmentScan.isZero(view) {
                visit(.zeroTail(position..<bytes.count))
                return summary
            } else {
                reason = view.count < RecordBatchHeader.size ? "partial batch header" : "invalid batch header"
            }
            if let reason {
                summary.isDamaged = true
                let resume = SegmentScan.findValidBatch(bytes, after: position, minimumOffset: next)
                let end = resume ?? (bytes.lastIndex { $0 != 0 }.map { $0 + 1 } ?? position + 1)
                var upper = nextSegmentBase
                if let resume, let following = RecordBatchHeader(UnsafeRawBufferPointer(rebasing: bytes[resume...])),
                   following.baseOffset >= next {
                    upper = following.baseOffset
                }
                visit(.damage(DamagedBytes(file: file, bytes: position..<end, reason: reason, header: header,
                                           offsetsAtMost: upper.map { next..<max(next, $0) }, firstPossibleOffset: next)))
                position = end
                if resume == nil {
                    if end < bytes.count { visit(.zeroTail(end..<bytes.count)) }
                    return summary
                }
                continue
            }
            let batchHeader = header!
            let batch = UnsafeRawBufferPointer(rebasing: view[0..<batchHeader.totalLength])
            var item = SegmentBatch(position: position, header: batchHeader)
            if batchHeader.baseOffset < next || batchHeader.baseOffset < baseOffset
                || batchHeader.baseOffset - baseOffset >= UInt64(UInt32.max) {
                item.problem = "batch offsets \(batchHeader.baseOffset)..<\(batchHeader.nextOffset) out of sequence "
                    + "(expected at least \(next) in the segment of base \(baseOffset))"
            } else if let limit = nextSegmentBase, batchHeader.nextOffset > limit {
                item.problem = "batch offsets \(batchHeader.baseOffset)..<\(batchHeader.nextOffset) overlap the next segment (base \(limit))"
            } else if let problem = payloadProblem(batchHeader, batch) {
                item.problem = problem
            }
            if item.isIntact {
                if decodeRecords, let records = try? RecordBatch.decode(batchHeader, batch) {
                    item.records = records.enumerated().map { LogRecord(offset: batchHeader.baseOffset + UInt64($0.offset), payload: $0.element) }
                }
                summary.batches += 1
                summary.records += Int(batchHeader.recordCount)
                if summary.firstOffset == nil { summary.firstOffset = batchHeader.baseOffset }
                if summary.firstTimestamp == nil { summary.firstTimestamp = batchHeader.timestampMilliseconds }
                summary.nextOffset = batchHeader.nextOffset
                summary.endOfIntactData = position + batchHeader.totalLength
                next = batchHeader.nextOffset
            } else {
                summary.isDamaged = true
            }
            visit(.batch(item))
            position += batchHeader.totalLength
        }
        return summary
    }

    /// Why a checksum-valid batch's payload does not hold its records, or `nil` when it does.
    /// Decompresses into a temporary buffer but copies no record.
    static func payloadProblem(_ header: RecordBatchHeader, _ batch: UnsafeRawBufferPointer) -> String? {
        let stored = UnsafeRawBufferPointer(rebasing: batch[RecordBatchHeader.size..<header.totalLength])
        guard header.isCompressed else { return recordsProblem(stored, header) }
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(header.rawLength), alignment: 8)
        defer { raw.deallocate() }
        guard LZ4.decompress(stored, into: raw) == Int(header.rawLength) else {
            return "payload does not decompress to \(header.rawLength) bytes"
        }
        return recordsProblem(UnsafeRawBufferPointer(raw), header)
    }

    private static func recordsProblem(_ raw: UnsafeRawBufferPointer, _ header: RecordBatchHeader) -> String? {
        var position = 0
        for _ in 0..<header.recordCount {
            guard position + 4 <= raw.count else { return "payload does not hold \(header.recordCount) records" }
            let length = Int(raw.loadUnaligned(fromByteOffset: position, as: UInt32.self).littleEndian)
            position += 4
            guard length <= raw.count - position else { return "payload does not hold \(header.recordCount) records" }
            position += length
        }
        return position == raw.count ? nil : "payload has \(raw.count - position) bytes after its \(header.recordCount) records"
    }
}
