#if canImport(Glibc)
import Glibc
#endif

extension OfflineLog {
    /// Verifies the whole directory without changing anything: every batch's header, checksum, payload
    /// structure and offset sequence in every segment; every index against its segment; the
    /// `recovery-point`, `clean-shutdown` and `swap-manifest` files; offset continuity across segments;
    /// the directory against `log-manifest` and the clean-shutdown marker, as open compares them
    /// (a listed segment missing → `segmentMissing`, a segment shorter than recorded →
    /// `segmentShortened`, both damage). A pending compaction swap is modelled as finished, as the
    /// next open finishes it.
    ///
    /// Cost: one read of every segment file (checksums at GB/s), plus decompression of compressed batches.
    /// - Throws: ``LogError/Code/io`` when a file cannot be read. Damage is reported, not thrown.
    public func verify(progress: MaintenanceProgress? = nil) throws(LogError) -> LogVerification {
        let listing = try self.listing()
        var result = LogVerification(directory: directory)
        result.files = listing.segments.count + listing.segments.filter { $0.indexSize != nil }.count + listing.checkpointFiles.count
            + listing.temporaryFiles.count + listing.compactionFiles.count + listing.orphanIndexes.count + listing.foreignFiles.count
        var segments = listing.segments

        // A pending swap: verify the directory as the next open will leave it after rolling forward.
        let manifestPath = directory + "/" + SegmentSwap.manifestName
        var pendingSwap = false
        var swapBases: Set<UInt64> = []
        var manifest: LogManifest?
        do {
            manifest = try LogManifest.read(directory: directory, syscalls: syscalls)
        } catch {
            result.problems.append(LogProblem(kind: "logManifestDamaged", severity: .damage, file: error.path ?? directory,
                                              message: "the log manifest is damaged or unreadable; open refuses the directory "
                                                  + "(a repair rewrites it from the segments present)"))
        }
        if let bytes = try CheckpointFile.readFile(manifestPath, syscalls: syscalls) {
            let fieldCount = max(0, (bytes.count - 12) / 8)
            if let file = CheckpointFile.decode(bytes, magic: SegmentSwap.magic, fieldCount: fieldCount),
               let swap = SegmentSwap(fields: file.fields) {
                pendingSwap = true
                result.notes.append("a compaction swap is pending (\(swap.old.count) segments replaced by \(swap.new.count)); "
                                    + "the next open finishes it")
                segments = try segmentsAfterSwap(swap, segments, &result)
                swapBases = Set(swap.old).union(swap.new)
                // As the roll-forward will record it: the new segments replace the old ones.
                if var model = manifest {
                    model.segments.removeAll { swapBases.contains($0.base) }
                    model.segments += swap.new.map { LogManifest.Entry(base: $0, length: nil) }
                    model.segments.sort { $0.base < $1.base }
                    manifest = model
                }
            } else {
                result.problems.append(LogProblem(kind: "swapManifestDamaged", severity: .damage, file: manifestPath,
                                                  message: "the segment swap manifest is damaged; open refuses the directory"))
            }
        }
        if !pendingSwap && !listing.compactionFiles.isEmpty {
            result.notes.append("\(listing.compactionFiles.count) leftover compaction file(s) (*.cleaned); the next open deletes them")
        }
        if !listing.temporaryFiles.isEmpty {
            result.notes.append("\(listing.temporaryFiles.count) leftover temporary file(s) (*.tmp); the next open deletes them")
        }
        for path in listing.foreignFiles { result.notes.append("\(path) does not belong in a log directory") }
        for path in listing.orphanIndexes {
            // An index of a segment that the pending swap renames into place or deletes: the roll-forward settles it.
            let name = path.split(separator: "/").last.map(String.init) ?? path
            if pendingSwap, let base = UInt64(name.prefix(20)), swapBases.contains(base) { continue }
            result.problems.append(LogProblem(kind: "orphanIndex", severity: .inconsistency, file: path,
                                              message: "index without a segment"))
        }

        let lastRecordedLength = segments.last.flatMap { last in manifest?.segments.first { $0.base == last.baseOffset }?.length }
        // The lock file holds nothing, but open must be able to open it: a directory (or anything
        // else that is not a file) in its place makes every open refuse.
        let lockPath = DataDirectory.lockFile(ofLog: directory)
        var lockInfo = stat()
        if stat(lockPath, &lockInfo) == 0 ? lockInfo.st_mode & S_IFMT != S_IFREG : errno != ENOENT {
            result.problems.append(LogProblem(kind: "lockUnusable", severity: .damage, file: lockPath,
                                              message: "is not a file open can lock (a directory, or unreadable); open refuses the "
                                                  + "directory. Remove it: it holds no data, and the next open creates it"))
        }
        let marker = readCleanShutdown(lastBase: segments.last?.baseOffset, manifestLength: lastRecordedLength,
                                       manifestCleanClose: manifest?.cleanClose == true, &result)
        result.cleanShutdown = marker != nil
        // The directory against the manifest, as open compares them (a shortened segment's offsets come after the walk).
        var shortened: [UInt64: (recorded: UInt64, actual: UInt64)] = [:]
        if let manifest {
            let sizes = segments.reduce(into: [UInt64: Int]()) { $0[$1.baseOffset] = $1.size }
            let paths = segments.reduce(into: [UInt64: String]()) { $0[$1.baseOffset] = $1.path }
            let syscalls = self.syscalls
            var findings = manifest.check(bases: segments.map(\.baseOffset), size: { sizes[$0] }, fingerprint: { base in
                paths[base].flatMap { LogManifest.fingerprint(ofSegment: $0, syscalls: syscalls) }
            })
            if manifest.isForeign(findings: findings, bases: segments.map(\.baseOffset)) {
                result.problems.append(LogProblem(kind: "logManifestForeign", severity: .damage, file: directory + "/" + LogManifest.fileName,
                                                  message: "the log manifest does not describe this log: none of the segments it records has "
                                                      + "the first batch it recorded (another store's manifest?); open refuses the directory "
                                                      + "(a repair rewrites it from the segments present)"))
                findings = []
            }
            for finding in findings {
                switch finding {
                case .replaced(let base, let recorded, let actual):
                    result.problems.append(LogProblem(
                        kind: "segmentReplaced", severity: .damage, file: paths[base] ?? directory + "/" + Segment.fileName(base, ".log"),
                        message: LogManifest.Finding.replacedMessage(recorded: recorded, actual: actual) + "; open refuses the directory "
                            + "(restore the right file from a backup, or move this one out of the directory: then `--mode salvage` "
                            + "accepts the missing segment)"))
                case .missing(let base, let from, let upTo):
                    let offsets = upTo.map { "offsets \(from)..<\($0)" } ?? "offsets from \(from) on"
                    result.problems.append(LogProblem(
                        kind: "segmentMissing", severity: .damage, file: directory + "/" + Segment.fileName(base, ".log"),
                        bytes: manifest.segments.first { $0.base == base }?.length.map { 0..<Int(clamping: $0) },
                        offsets: upTo.map { from..<$0 },
                        message: "missing, although the log manifest lists it and nothing removed it on purpose: \(offsets) "
                            + "are lost; " + (segments.first.map { base < $0.baseOffset } ?? false
                                ? "open accepts the shorter log (as if retention had removed it) and reports it"
                                : "open refuses the directory")
                            + " (restore the file, or `--mode salvage` accepts the loss)"))
                case .shortened(let base, let recorded, let actual):
                    shortened[base] = (recorded, actual)
                }
            }
        }
        if let recorded = result.markerRecordedLastLength, let last = segments.last, shortened[last.baseOffset] == nil {
            shortened[last.baseOffset] = (recorded, UInt64(last.size))
        }
        if let last = segments.last, let cut = shortened[last.baseOffset], result.markerRecordedLastLength != nil
            || manifest?.cleanClose == true {
            result.notes.append("the log was closed cleanly, but its last segment is \(cut.actual) bytes long where the clean close "
                                + "recorded \(cut.recorded) (see segmentShortened); the next open refuses it")
        } else if marker == nil {
            result.notes.append("the log was not closed cleanly; the next open scans from the recovery point")
        }

        let total = segments.reduce(0) { $0 + $1.size }
        var done = 0
        var lastReported = 0
        progress?(.verifying, 0, total)
        for (i, segment) in segments.enumerated() {
            let isLast = i == segments.count - 1
            let nextBase = isLast ? nil : segments[i + 1].baseOffset
            var damage: [DamagedBytes] = []
            var bad: [SegmentBatch] = []
            var positions: [Int: UInt64] = [:]  // intact batch position → base offset, for the index check
            var zeroTail: Range<Int>?
            let summary = try walkSegment(segment, nextSegmentBase: nextBase) { item in
                switch item {
                case .batch(let batch):
                    if batch.isIntact { positions[batch.position] = batch.header.baseOffset } else { bad.append(batch) }
                    if let report = progress, done + batch.position - lastReported >= 1 << 20 {
                        lastReported = done + batch.position
                        report(.verifying, lastReported, total)
                    }
                case .damage(let range): damage.append(range)
                case .zeroTail(let range): zeroTail = range
                }
            }
            done += segment.size
            lastReported = done
            progress?(.verifying, done, total)
            result.batches += summary.batches
            result.records += summary.records
            result.bytes += segment.size

            for range in damage {
                // Bytes within a length the log recorded (at a clean close, or when the segment was sealed) were on
                // stable storage: damage there is never a torn tail.
                let recordedLength = shortened[segment.baseOffset]?.recorded ?? marker.map(\.activeSize)
                let isTornTail = isLast && range.bytes.lowerBound >= summary.endOfIntactData
                    && (recordedLength.map { UInt64(range.bytes.lowerBound) >= $0 } ?? true)
                result.problems.append(LogProblem(
                    kind: isTornTail ? "tornTail" : "damagedBytes", severity: isTornTail ? .inconsistency : .damage,
                    file: segment.path, position: range.bytes.lowerBound, bytes: range.bytes, offsets: range.offsetsAtMost,
                    message: "\(range.reason); \(range.bytes.count) bytes unreadable"
                        + (range.offsetsAtMost.map { " (offsets at most \($0.lowerBound)..<\($0.upperBound))" } ?? "")
                        + (isTornTail ? "; a torn tail, which the next open cuts" : "")))
            }
            for batch in bad {
                result.problems.append(LogProblem(kind: "invalidBatch", severity: .damage, file: segment.path, position: batch.position,
                                                  bytes: batch.bytes, offsets: batch.offsets, message: batch.problem ?? ""))
            }
            if let zeroTail, !isLast {
                result.problems.append(LogProblem(kind: "zerosInSealedSegment", severity: .damage, file: segment.path,
                                                  position: zeroTail.lowerBound, bytes: zeroTail,
                                                  offsets: nextBase.map { summary.nextOffset..<max(summary.nextOffset, $0) },
                                                  message: "\(zeroTail.count) zero bytes at the end of a sealed segment "
                                                      + "(truncated or zero-filled); open refuses it"))
            }
            if isLast, let marker, !summary.isDamaged, UInt64(summary.endOfIntactData) < marker.activeSize {
                // Zeros where the clean close recorded batches (an older copy of the segment, with its
                // preallocation): the records after the intact ones are gone, as open says.
                let from = summary.nextOffset, upTo = max(from, marker.nextOffset)
                result.problems.append(LogProblem(
                    kind: "recordedDataMissing", severity: .damage, file: segment.path, position: summary.endOfIntactData,
                    bytes: summary.endOfIntactData..<Int(marker.activeSize), offsets: from..<upTo,
                    message: "the clean close recorded \(marker.activeSize) bytes of batches up to offset \(marker.nextOffset), but they "
                        + "end at byte \(summary.endOfIntactData), zeros follow: offsets \(from)..<\(upTo) are gone (an older copy of "
                        + "the segment?); open refuses the directory (restore the file, or `--mode salvage` accepts the loss)"))
            } else if isLast, let marker, !summary.isDamaged {
                let markerPath = directory + "/" + CheckpointFile.cleanShutdownName
                if UInt64(summary.endOfIntactData) != marker.activeSize {
                    result.problems.append(LogProblem(kind: "cleanShutdownMismatch", severity: .damage, file: markerPath,
                                                      message: "says the last segment's data ends at byte \(marker.activeSize), but its "
                                                          + "batches end at byte \(summary.endOfIntactData); open would trust the marker"))
                }
                if marker.nextOffset != summary.nextOffset {
                    result.problems.append(LogProblem(kind: "cleanShutdownMismatch", severity: .damage, file: markerPath,
                                                      message: "says the next offset is \(marker.nextOffset), but the last segment's "
                                                          + "batches end at offset \(summary.nextOffset); open would trust the marker"))
                }
            }
            if i > 0, let first = summary.firstOffset, let previous = result.segments.last, first > previous.summary.nextOffset {
                let absent = previous.summary.nextOffset..<first
                let why = manifest.map { manifest in
                    manifest.gap(covering: absent).map { "removed on purpose by \($0.reason.description), as the log manifest records" }
                        ?? "not recorded in the log manifest"
                } ?? "normal after compaction or salvage; this log has no manifest to tell"
                result.notes.append("offsets \(absent.lowerBound)..<\(absent.upperBound) are absent between \(previous.file.name) and "
                                    + "\(segment.name) (\(why))")
            }
            let entries = checkIndex(segment, positions: positions, dataEnd: summary.endOfIntactData,
                                     preallocated: isLast && marker == nil, segmentDamaged: summary.isDamaged, &result)
            result.segments.append(SegmentVerification(file: segment, summary: summary, indexEntries: entries))
        }
        let markerNextOffset = result.markerNextOffset
        for (base, lengths) in shortened.sorted(by: { $0.key < $1.key }) {
            guard let i = result.segments.firstIndex(where: { $0.file.baseOffset == base }) else { continue }
            let from = result.segments[i].summary.nextOffset
            let upTo = i + 1 < result.segments.count ? result.segments[i + 1].file.baseOffset
                : (markerNextOffset.map { max($0, from) })
            let path = result.segments[i].file.path
            let lostText = "the segment is \(lengths.actual) bytes long, but the log recorded \(lengths.recorded) bytes on stable "
                + "storage: bytes \(lengths.actual)..<\(lengths.recorded)"
                + (upTo.map { " (offsets \(from)..<\($0))" } ?? " (offsets from \(from) on)") + " are gone"
            // The cut already shows as damaged bytes at the segment's end: one problem, which says both.
            if let j = result.problems.firstIndex(where: { $0.kind == "damagedBytes" && $0.file == path
                                                        && $0.bytes?.upperBound == Int(lengths.actual) }) {
                result.problems[j].message += "; \(lostText)"
                continue
            }
            result.problems.append(LogProblem(
                kind: "segmentShortened", severity: .damage, file: result.segments[i].file.path, position: Int(lengths.actual),
                bytes: Int(lengths.actual)..<Int(lengths.recorded), offsets: upTo.map { from..<$0 },
                message: "\(lengths.actual) bytes long, but the log recorded \(lengths.recorded) bytes on stable storage: bytes "
                    + "\(lengths.actual)..<\(lengths.recorded)" + (upTo.map { " (offsets \(from)..<\($0))" } ?? " (offsets from \(from) on)")
                    + " are gone, which is damage, not a torn tail; open refuses the directory (restore the file, or "
                    + "`--mode salvage` accepts the loss)"))
        }
        try checkRecoveryPoint(segments, &result)
        result.problems.sort { ($0.file, $0.position ?? -1) < ($1.file, $1.position ?? -1) }
        return result
    }
}
