#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives

/// The steps of opening a log directory, in order; see ``Log/open(directory:configuration:)``.
struct LogOpener {
    let directory: String
    let configuration: LogConfiguration
    let syscalls: any Syscalls
    var report = RecoveryReport()
    /// The directory's `log-manifest`, once read (`nil` for a log made before manifests existed).
    var manifest: LogManifest?
    /// A reader: nothing is written (``LogAccess/readOnly``).
    let readOnly: Bool

    init(directory: String, configuration: LogConfiguration) {
        self.directory = directory
        self.configuration = configuration
        self.syscalls = configuration.syscalls
        self.readOnly = configuration.access == .readOnly
    }

    var indexCapacity: Int { configuration.segmentBytes / configuration.indexIntervalBytes + 2 }

    mutating func run() throws(LogError) -> ([Segment], UInt64) {
        if readOnly {
            if syscalls.exists(directory + "/" + SegmentSwap.manifestName) {
                throw LogError(.readOnly, "a compaction swap was interrupted here and must be finished before the log can be read; "
                               + "open it once read-write (or run `spool recover`)", path: directory + "/" + SegmentSwap.manifestName)
            }
        } else {
            report.resolvedCompactionFiles = try SegmentSwap.resolve(directory: directory, syscalls: syscalls)
        }
        var bases = try listSegments()
        manifest = try LogManifest.read(directory: directory, syscalls: syscalls)
        if bases.isEmpty && manifest.map({ $0.segments.isEmpty }) ?? true {
            if readOnly { throw LogError(.emptyLogDirectory, "holds no log segments (a read-only open creates none)", path: directory) }
            let first = try Segment(directory: directory, baseOffset: 0, size: 0, indexEntries: 0, indexCapacity: indexCapacity,
                                    syscalls: syscalls, create: true)
            do { try syscalls.fsyncDirectory(directory) } catch { throw .io(error, "cannot sync the directory", path: directory) }
            try writeRecoveryPoint(0)
            try? CheckpointFile.remove(directory: directory, name: CheckpointFile.cleanShutdownName, syscalls: syscalls)
            // A new log knows its shape from the start.
            manifest = LogManifest(segments: [LogManifest.Entry(base: 0, length: nil)])
            try manifest!.write(directory: directory, syscalls: syscalls)
            report.segments = 1
            return ([first], 0)
        }
        bases.sort()
        // Segments lost or cut short behind the log's back are refused before anything is changed.
        try checkShape(bases: bases)
        let marker = try readCleanShutdownMarker(lastBase: bases.last)
        if !readOnly {
            // From here on a crash must lead to a scan: the marker goes before any write is accepted.
            try CheckpointFile.remove(directory: directory, name: CheckpointFile.cleanShutdownName, syscalls: syscalls)
        }

        let scanFrom: Int
        if marker != nil {
            report.cleanShutdown = true
            scanFrom = bases.count  // nothing is scanned
        } else {
            let point = try readRecoveryPoint()
            scanFrom = point.flatMap { p in bases.lastIndex { $0 <= p } } ?? 0
        }

        var segments: [Segment] = []
        var nextOffset: UInt64 = 0
        for (i, base) in bases.enumerated() {
            let isLast = i == bases.count - 1
            let segment: Segment
            if i < scanFrom || marker != nil {
                let size = isLast ? Int(marker!.activeSize) : try fileSize(of: base)
                segment = try openTrusted(base: base, size: size, isLast: isLast)
                nextOffset = isLast ? marker!.nextOffset : nextOffset
            } else {
                let (scanned, end) = try openScanned(base: base, isLast: isLast)
                segment = scanned
                nextOffset = end
            }
            segments.append(segment)
        }
        report.segments = segments.count
        // The active segment keeps what the manifest recorded for it while it was active (and still
        // holds: `checkShape` refused it otherwise): its durable extent, which only grows from here
        // while it takes appends, and whether its first batch's checksum is recorded.
        if let active = segments.last, let entry = manifest?.segments.first(where: { $0.base == active.baseOffset }), entry.length == nil {
            if let extent = entry.extent { active.recordedExtent.store(Int(clamping: extent), ordering: .relaxed) }
            if entry.fingerprint != nil && active.writePosition > 0 { active.firstBatchDurable.store(true, ordering: .relaxed) }
        }
        // Sealed segments are read through mmap.
        for segment in segments.dropLast() {
            segment.mapping = try segment.map(size: segment.writePosition)
        }
        return (segments, nextOffset)
    }

    // MARK: Steps

    /// Segment base offsets in the directory; removes leftover `.tmp` files of unfinished checkpoint writes.
    func listSegments() throws(LogError) -> [UInt64] {
        let names: [String]
        do { names = try syscalls.listDirectory(directory) } catch { throw .io(error, "cannot list the directory", path: directory) }
        var bases: [UInt64] = []
        for name in names {
            if let base = Segment.baseOffset(ofLogFile: name) {
                bases.append(base)
            } else if name.hasSuffix(".tmp") && !readOnly {
                try? syscalls.unlink(directory + "/" + name)
            }
        }
        return bases
    }

    /// Throws `notALogDirectory` when an existing directory holds no segment but other files, before
    /// anything (even the lock file) is created in it.
    static func checkIsLogDirectory(_ directory: String, syscalls: any Syscalls) throws(LogError) {
        let names: [String]
        do { names = try syscalls.listDirectory(directory) } catch { throw .io(error, "cannot list the directory", path: directory) }
        let ours: Set<String> = [DataDirectory.lockFileName, CheckpointFile.recoveryPointName, CheckpointFile.cleanShutdownName,
                                 SegmentSwap.manifestName, LogManifest.fileName]
        if names.contains(where: { Segment.baseOffset(ofLogFile: $0) != nil }) { return }
        let foreign = names.filter { !ours.contains($0) && !$0.hasSuffix(".index") && !$0.hasSuffix(".tmp") && !$0.hasSuffix(".cleaned") }
        if !foreign.isEmpty {
            throw LogError(.notALogDirectory, "holds no segments but other files (\(foreign.sorted().prefix(3).joined(separator: ", "))); "
                           + "it is not a Spool log directory", path: directory)
        }
    }

    struct CleanShutdownMarker { var nextOffset: UInt64; var activeBase: UInt64; var activeSize: UInt64 }

    /// The marker, when present, valid, and matching the last segment; `nil` means scan.
    ///
    /// A valid marker of the last segment claiming more bytes than the file holds means the segment
    /// was cut after the clean close: ``LogError/Code/segmentShortened`` (the manifest, written by the
    /// same close, usually says so first in ``checkShape(bases:)``) — unless the manifest records a
    /// length the file still has, which makes the marker the wrong one: it is ignored, and open scans.
    func readCleanShutdownMarker(lastBase: UInt64?) throws(LogError) -> CleanShutdownMarker? {
        let path = directory + "/" + CheckpointFile.cleanShutdownName
        guard let bytes = try CheckpointFile.readFile(path, syscalls: syscalls),
              let file = CheckpointFile.decode(bytes, magic: CheckpointFile.cleanShutdownMagic, fieldCount: 3)
        else { return nil }
        let marker = CleanShutdownMarker(nextOffset: file.fields[0], activeBase: file.fields[1], activeSize: file.fields[2])
        guard let lastBase, marker.activeBase == lastBase, marker.nextOffset >= lastBase,
              let size = try? fileSize(of: lastBase) else { return nil }
        // The manifest written by the same clean close records the same length: a marker that
        // disagrees with it is not this close's (another store's, mixed up), and trusting its
        // length would hide every record after it. Ignore it; the scan finds the real end.
        if let recorded = recordedLength(lastBase), manifest?.cleanClose == true, UInt64(recorded) != marker.activeSize,
           size >= recorded {
            return nil
        }
        if UInt64(size) < marker.activeSize {
            // The manifest, written by the same close, records the length too: when the file still has
            // that many bytes, the marker is the one that is wrong; ignore it and scan.
            if let recorded = recordedLength(lastBase), size >= recorded { return nil }
            // Otherwise the marker recorded more bytes at the clean close than the file holds: they were
            // on stable storage and are gone (a torn tail is impossible after a clean close). Refused like
            // a cut the manifest records; a log without a manifest has only the marker to tell.
            let remains = try? scanRemains(base: lastBase)
            let lost = remains.map { $0.nextOffset..<max($0.nextOffset, marker.nextOffset) }
            throw LogManifest.Finding.shortened(base: lastBase, recorded: marker.activeSize, actual: UInt64(size))
                .error(directory: directory, lostOffsets: lost)
        }
        return marker
    }

    /// Compares the directory with `log-manifest`, before anything is changed.
    ///
    /// Every listed segment that is missing is damage, the first ones included: retention and
    /// compaction rewrite the manifest *before* they delete a segment, so a segment they removed is
    /// never listed, and a listed one that is gone was lost behind the log's back. (Accepting lost
    /// leading segments as "a shorter log" hid acknowledged tasks: a task store whose ack level lies
    /// inside them opened without them.) A log without a manifest cannot tell, and opens as before.
    /// - Throws: ``LogError/Code/missingSegment`` for a listed segment that is missing;
    ///   ``LogError/Code/segmentShortened`` for a segment shorter than its recorded length
    ///   (``LogError/Code/corruptBatch`` when the cut splits a batch of a sealed segment, as a scan
    ///   would find it), naming the file, the bytes and the offsets lost.
    mutating func checkShape(bases: [UInt64]) throws(LogError) {
        guard let manifest else { return }
        let sizes = bases.reduce(into: [UInt64: Int]()) { $0[$1] = try? fileSize(of: $1) }
        let directory = self.directory, syscalls = self.syscalls
        let findings = manifest.check(bases: bases, size: { sizes[$0] }, fingerprint: { base in
            LogManifest.fingerprint(ofSegment: directory + "/" + Segment.fileName(base, ".log"), syscalls: syscalls)
        })
        if manifest.isForeign(findings: findings, bases: bases) { throw LogManifest.foreignError(directory: directory) }
        for finding in findings {
            switch finding {
            case .missing, .replaced:
                throw finding.error(directory: directory)
            case .shortened(let base, let recorded, let actual):
                let isLast = base == bases.last
                // The last segment's records ran up to the next offset its clean close recorded.
                let upTo = bases.first { $0 > base } ?? (isLast ? recordedNextOffset(base: base) : nil)
                let scan = try? scanRemains(base: base)
                let lost = scan.flatMap { scan in upTo.map { scan.nextOffset..<max(scan.nextOffset, $0) } }
                if !isLast, let scan, let damage = scan.damage {
                    let offsets = lost.map { " (offsets \($0.lowerBound)..<\($0.upperBound))" } ?? ""
                    throw LogError(.corruptBatch, "\(damage.reason) at byte \(damage.position): the segment is \(actual) bytes long, "
                                   + "but the log recorded \(recorded) bytes when it was sealed, so bytes \(actual)..<\(recorded)\(offsets) "
                                   + "are gone; run `spool recover` to repair", path: directory + "/" + Segment.fileName(base, ".log"),
                                   offset: UInt64(damage.position))
                }
                // The active segment of a log not closed cleanly (its durable extent): nothing records where
                // its records ended, only that those after the intact ones are gone.
                let unbounded = isLast && upTo == nil ? scan.map { $0.nextOffset..<UInt64.max } : nil
                throw finding.error(directory: directory, lostOffsets: lost ?? unbounded ?? scan.map { $0.nextOffset..<$0.nextOffset })
            }
        }
    }

    /// The next offset a valid clean-shutdown marker for segment `base` records, whatever the file's size.
    func recordedNextOffset(base: UInt64) -> UInt64? {
        guard let bytes = try? CheckpointFile.readFile(directory + "/" + CheckpointFile.cleanShutdownName, syscalls: syscalls),
              let file = CheckpointFile.decode(bytes, magic: CheckpointFile.cleanShutdownMagic, fieldCount: 3),
              file.fields[1] == base else { return nil }
        return file.fields[0]
    }

    /// A read-only scan of what is left of segment `base` (to name what a cut lost).
    func scanRemains(base: UInt64) throws(LogError) -> SegmentScan {
        let path = directory + "/" + Segment.fileName(base, ".log")
        let fd: Int32
        do { fd = try syscalls.open(path, flags: O_RDONLY, mode: 0) } catch { throw .io(error, "cannot open the segment", path: path) }
        defer { syscalls.close(fd) }
        let size: Int
        do { size = Int(try syscalls.fileSize(fd)) } catch { throw .io(error, "cannot stat the segment", path: path) }
        let mapping: MappedFile
        do { mapping = try MappedFile(fd: fd, size: size, path: path) } catch { throw .io(error, "cannot map the segment", path: path) }
        return SegmentScan.run(mapping.bytes, baseOffset: base, from: 0, nextOffset: base,
                               indexInterval: configuration.indexIntervalBytes)
    }

    /// The length recorded for segment `base` in the manifest, if any.
    func recordedLength(_ base: UInt64) -> Int? {
        manifest?.segments.first { $0.base == base }?.length.map { Int(clamping: $0) }
    }

    func readRecoveryPoint() throws(LogError) -> UInt64? {
        let path = directory + "/" + CheckpointFile.recoveryPointName
        guard let bytes = try CheckpointFile.readFile(path, syscalls: syscalls) else { return nil }
        // A damaged recovery point only costs a longer scan.
        return CheckpointFile.decode(bytes, magic: CheckpointFile.recoveryPointMagic, fieldCount: 1)?.fields[0]
    }

    func writeRecoveryPoint(_ base: UInt64) throws(LogError) {
        let file = CheckpointFile(magic: CheckpointFile.recoveryPointMagic, fields: [base])
        try CheckpointFile.writeAtomically(file.encoded, directory: directory, name: CheckpointFile.recoveryPointName, syscalls: syscalls)
    }

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
