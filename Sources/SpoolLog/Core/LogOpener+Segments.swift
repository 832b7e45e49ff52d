#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives

/// Opening the segments themselves: a trusted segment (index checked, batches not scanned), a
/// scanned one (every batch verified, a torn tail cut), and rebuilding an index that does not fit.
extension LogOpener {
    func fileSize(of base: UInt64) throws(LogError) -> Int {
        let path = directory + "/" + Segment.fileName(base, ".log")
        do {
            let fd = try syscalls.open(path, flags: O_RDONLY, mode: 0)
            defer { syscalls.close(fd) }
            return Int(try syscalls.fileSize(fd))
        } catch {
            throw .io(error, "cannot stat the segment", path: path)
        }
    }

    /// A segment before the recovery point (or after a clean shutdown): its batches are not
    /// scanned, but its index is checked and rebuilt when it does not fit the segment.
    mutating func openTrusted(base: UInt64, size: Int, isLast: Bool) throws(LogError) -> Segment {
        let indexPath = directory + "/" + Segment.fileName(base, ".index")
        let entries = OffsetIndex.entriesInFile(indexPath, syscalls: syscalls)
        let segment = try Segment(directory: directory, baseOffset: base, size: size, indexEntries: entries ?? 0,
                                  indexCapacity: isLast ? indexCapacity : (entries ?? 0), syscalls: syscalls, create: false,
                                  readOnly: readOnly)
        if entries == nil || !indexMatches(segment, size: size) {
            try rebuildIndex(segment, size: size, isLast: isLast)
        } else if isLast {
            segment.nextIndexPosition = segment.index.count == 0 ? 0 :
                Int(segment.index.entry(segment.index.count - 1).position) + configuration.indexIntervalBytes
        }
        if isLast && size >= RecordBatchHeader.size {
            // The segment's age (segmentMaxAgeMilliseconds) counts from its first batch, not from this open.
            var header: [UInt8] = []
            if (try? syscalls.preadFully(segment.fd, into: &header, count: RecordBatchHeader.size, at: 0)) == RecordBatchHeader.size {
                segment.firstTimestamp = header.withUnsafeBytes { RecordBatchHeader($0) }?.timestampMilliseconds
            }
        }
        segment.zeroedUpTo = try segment.fileSize()
        return segment
    }

    /// Whether the index is plausible and its last entry names a batch with the offset it claims.
    func indexMatches(_ segment: Segment, size: Int) -> Bool {
        let index = segment.index
        if size > 0 && index.count == 0 { return false }
        guard index.isPlausible(logSize: size) else { return false }
        guard index.count > 0 else { return true }
        let last = index.entry(index.count - 1)
        var header: [UInt8] = []
        let n = try? syscalls.preadFully(segment.fd, into: &header, count: RecordBatchHeader.size, at: Int64(last.position))
        guard n == RecordBatchHeader.size,
              let parsed = header.withUnsafeBytes({ RecordBatchHeader($0) }) else { return false }
        return parsed.baseOffset == segment.baseOffset + UInt64(last.relativeOffset)
    }

    mutating func rebuildIndex(_ segment: Segment, size: Int, isLast: Bool) throws(LogError) {
        let mapping = try segment.map(size: size)
        let scan = SegmentScan.run(mapping.bytes, baseOffset: segment.baseOffset, from: 0, nextOffset: segment.baseOffset,
                                   indexInterval: configuration.indexIntervalBytes)
        if let damage = scan.damage, !(isLast && damage.nextValidBatch == nil) {
            throw corruption(segment.logPath, damage)
        }
        if !isLast && scan.endPosition != size {  // as in openScanned
            throw corruption(segment.logPath, .init(position: scan.endPosition, reason: "zero bytes inside a sealed segment", nextValidBatch: nil))
        }
        report.scannedBytes += scan.endPosition
        if isLast {
            // The active index keeps its preallocated capacity.
            segment.index.reset(to: scan.indexEntries)
            segment.nextIndexPosition = (scan.indexEntries.last.map { Int($0.position) } ?? -configuration.indexIntervalBytes)
                + configuration.indexIntervalBytes
        } else {
            try replaceSealedIndex(segment, entries: scan.indexEntries)
        }
        report.rebuiltIndexes.append(segment.indexPath)
    }

    /// A sealed index cannot grow in place (its mapping has the old size): write a new file.
    func replaceSealedIndex(_ segment: Segment, entries: [(relativeOffset: UInt32, position: UInt32)]) throws(LogError) {
        if readOnly {
            let index = OffsetIndex(inMemoryFrom: segment.indexPath, capacity: entries.count, keepingEntries: 0, syscalls: syscalls)
            index.reset(to: entries)
            segment.replaceIndex(index)
            return
        }
        if entries.count <= segment.index.count {
            segment.index.reset(to: entries)
            try segment.index.persist(trim: true)
            return
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * OffsetIndex.entrySize)
        for entry in entries {
            withUnsafeBytes(of: entry.relativeOffset.littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: entry.position.littleEndian) { bytes.append(contentsOf: $0) }
        }
        try CheckpointFile.writeAtomically(bytes, directory: directory, name: Segment.fileName(segment.baseOffset, ".index"),
                                           syscalls: syscalls)
        segment.replaceIndex(try OffsetIndex(path: segment.indexPath, capacity: entries.count, keepingEntries: entries.count,
                                             syscalls: syscalls))
    }

    /// A segment at or after the recovery point: every batch is verified and the index rebuilt;
    /// a torn tail of the last segment is cut. Returns the segment and the offset after its last batch.
    mutating func openScanned(base: UInt64, isLast: Bool) throws(LogError) -> (Segment, UInt64) {
        let fileSize = try self.fileSize(of: base)
        let segment = try Segment(directory: directory, baseOffset: base, size: 0, indexEntries: 0,
                                  indexCapacity: isLast ? indexCapacity : fileSize / configuration.indexIntervalBytes + 2,
                                  syscalls: syscalls, create: false, readOnly: readOnly)
        let mapping = try segment.map(size: fileSize)
        let scan = SegmentScan.run(mapping.bytes, baseOffset: base, from: 0, nextOffset: base,
                                   indexInterval: configuration.indexIntervalBytes)
        report.scannedBytes += scan.endPosition
        var end = scan.endPosition
        if let damage = scan.damage {
            guard isLast, damage.nextValidBatch == nil else { throw corruption(segment.logPath, damage) }
            if let recorded = recordedLength(base), damage.position < recorded {
                // Bytes the log recorded as on stable storage (at a clean close) cannot be a torn tail.
                throw LogError(.corruptBatch, "\(damage.reason) at byte \(damage.position), inside the \(recorded) bytes the log "
                               + "recorded as on stable storage at its last clean close, so this is not a torn tail; "
                               + "run `spool recover` to repair", path: segment.logPath, offset: UInt64(damage.position))
            }
            // A torn tail: the batch being written when the process or machine stopped.
            let garbage = mapping.bytes[damage.position...]
            let nonZero = garbage.lastIndex { $0 != 0 }.map { $0 + 1 - damage.position } ?? 0
            if readOnly {
                // A reader leaves the tail where it is; it only stops reading before it.
                report.tornTailIgnored = true
            } else {
                // A recorded durable extent beyond the cut comes down to it first: a crash right after the
                // cut must not find the file shorter than the manifest says. Nothing acknowledged lies
                // beyond a torn tail, so the lower extent still covers every acknowledged record.
                try lowerRecordedExtent(of: base, to: damage.position)
                do {
                    try syscalls.ftruncate(segment.fd, to: Int64(damage.position))
                    try syscalls.fsync(segment.fd)
                } catch {
                    throw .io(error, "cannot cut the torn tail at byte \(damage.position)", path: segment.logPath)
                }
            }
            report.truncatedBytes += nonZero
            report.truncatedSegment = segment.logPath
            report.truncatedPosition = damage.position
            end = damage.position
        } else if !isLast && end != fileSize {
            throw corruption(segment.logPath, .init(position: end, reason: "zero bytes inside a sealed segment", nextValidBatch: nil))
        }
        segment.index.reset(to: scan.indexEntries)
        if !isLast && !readOnly {
            try segment.index.persist(trim: true)
        }
        report.rebuiltIndexes.append(segment.indexPath)
        segment.writePosition = end
        segment.zeroedUpTo = try segment.fileSize()
        segment.readableSize.store(end, ordering: .releasing)
        segment.nextIndexPosition = (scan.indexEntries.last.map { Int($0.position) } ?? -configuration.indexIntervalBytes)
            + configuration.indexIntervalBytes
        segment.firstTimestamp = scan.firstTimestamp
        return (segment, scan.nextOffset)
    }

    /// Rewrites the manifest with segment `base`'s durable extent at most `length`, when it records more.
    mutating func lowerRecordedExtent(of base: UInt64, to length: Int) throws(LogError) {
        guard var manifest, let i = manifest.segments.firstIndex(where: { $0.base == base }),
              let extent = manifest.segments[i].extent, extent > UInt64(length) else { return }
        manifest.segments[i].extent = UInt64(length)
        try manifest.write(directory: directory, syscalls: syscalls)
        self.manifest = manifest
    }

    func corruption(_ path: String, _ damage: SegmentScan.Damage) -> LogError {
        LogError(.corruptBatch, "\(damage.reason) at byte \(damage.position)"
                 + (damage.nextValidBatch.map { " (a valid batch follows at byte \($0), so this is not a torn tail)" } ?? "")
                 + "; run `spool recover` to repair", path: path, offset: UInt64(damage.position))
    }
}
