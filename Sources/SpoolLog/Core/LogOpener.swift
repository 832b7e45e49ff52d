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
        // Bytes after the length the clean close recorded: its own close cut the file there, so these are
        // data the marker does not know (a newer copy of the segment under an older marker). Trusting the
        // marker would hide them; the scan finds every batch.
        if Segment.holdsBytes(directory + "/" + Segment.fileName(lastBase, ".log"), after: marker.activeSize, size: size, syscalls: syscalls) {
            return nil
        }
        try checkRecordedEnd(base: lastBase, marker)
        return marker
    }

    /// Checks, before anything is changed, that the last segment's batches end exactly where the clean
    /// close recorded (its length and next offset), reading from the last index entry on (at most an
    /// index interval and one batch; the whole segment when the index does not name a batch).
    ///
    /// A copy of the segment taken before that close (a restored backup, a snapshot rolled back) holds
    /// a valid prefix and, when it was copied with its zero-filled preallocation, is as long as the close
    /// recorded: the length alone does not show that the records after the prefix are gone.
    /// - Throws: ``LogError/Code/corruptBatch`` naming the bytes and the offsets that are missing.
    func checkRecordedEnd(base: UInt64, _ marker: CleanShutdownMarker) throws(LogError) {
        let size = Int(marker.activeSize)
        if size == 0 && marker.nextOffset == base { return }
        var scan = SegmentScan(endPosition: 0, nextOffset: base)
        if size > 0 {
            let last = OffsetIndex.lastEntryInFile(directory + "/" + Segment.fileName(base, ".index"), syscalls: syscalls)
            scan = try withSegmentBytes(base: base, size: size) { bytes in
                var start = 0, startOffset = base
                if let last, Int(last.position) < size,
                   let header = RecordBatchHeader(UnsafeRawBufferPointer(rebasing: bytes[Int(last.position)...])),
                   header.baseOffset == base + UInt64(last.relativeOffset) {
                    start = Int(last.position)
                    startOffset = header.baseOffset
                }
                return SegmentScan.run(bytes, baseOffset: base, from: start, nextOffset: startOffset, indexInterval: size + 1)
            }
        }
        if scan.damage == nil && scan.endPosition == size && scan.nextOffset == marker.nextOffset { return }
        // Name what is gone from what a full scan still finds.
        let remains = (try? scanRemains(base: base)) ?? scan
        let end = min(remains.endPosition, size)
        let what = remains.damage.map { "\($0.reason) at byte \($0.position)" }
            ?? (end < size ? "zero bytes from byte \(end)" : "the last batch ends at offset \(remains.nextOffset)")
        throw LogError(.corruptBatch, "\(what): the clean close recorded \(size) bytes of batches up to offset \(marker.nextOffset), "
                       + "but they end at byte \(end), so offsets \(min(remains.nextOffset, marker.nextOffset))..<\(marker.nextOffset) "
                       + "are gone (an older copy of the segment?); restore the file, or run `spool recover --mode salvage` "
                       + "to accept the loss", path: directory + "/" + Segment.fileName(base, ".log"), offset: UInt64(end))
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
        try withSegmentBytes(base: base, size: nil) { bytes in
            SegmentScan.run(bytes, baseOffset: base, from: 0, nextOffset: base, indexInterval: configuration.indexIntervalBytes)
        }
    }

    /// `body` with segment `base`'s first `size` bytes (the whole file when nil), mapped read-only.
    func withSegmentBytes<T>(base: UInt64, size: Int?, _ body: (UnsafeRawBufferPointer) -> T) throws(LogError) -> T {
        let path = directory + "/" + Segment.fileName(base, ".log")
        let fd: Int32
        do { fd = try syscalls.open(path, flags: O_RDONLY, mode: 0) } catch { throw .io(error, "cannot open the segment", path: path) }
        defer { syscalls.close(fd) }
        var length = size ?? 0
        if size == nil {
            do { length = Int(try syscalls.fileSize(fd)) } catch { throw .io(error, "cannot stat the segment", path: path) }
        }
        let mapping: MappedFile
        do { mapping = try MappedFile(fd: fd, size: length, path: path) } catch { throw .io(error, "cannot map the segment", path: path) }
        return body(mapping.bytes)
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
}
