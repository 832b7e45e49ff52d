#if canImport(Glibc)
import Glibc
#endif

/// A problem found by ``OfflineLog/verify(progress:)``: what, where (file and byte), how bad.
public struct LogProblem: Sendable, Equatable, CustomStringConvertible {
    /// How bad a problem is.
    public enum Severity: String, Sendable, Equatable {
        /// Records are unreadable or would be lost, or ``Log/open(directory:configuration:)`` refuses the
        /// directory: run `spool recover --mode truncate` or `salvage`.
        case damage
        /// The log opens and reads correctly, but a file is stale or missing (an index, a checkpoint, a
        /// torn tail the next open cuts). The next open or `spool recover` repairs it; nothing is lost.
        case inconsistency
    }

    /// A stable machine-readable kind, such as `"damagedBytes"` or `"indexMissing"`.
    public var kind: String
    /// How bad it is.
    public var severity: Severity
    /// The file concerned.
    public var file: String
    /// The byte position in `file`, when the problem has one.
    public var position: Int?
    /// The byte range concerned, when the problem covers one.
    public var bytes: Range<Int>?
    /// The offsets concerned: exact for out-of-sequence batches, an upper bound for damaged bytes.
    public var offsets: Range<UInt64>?
    /// A sentence saying what is wrong.
    public var message: String

    public var description: String {
        "\(severity.rawValue): \(file)\(position.map { " at byte \($0)" } ?? ""): \(message)"
    }
}

/// Per-segment results of a verification.
public struct SegmentVerification: Sendable {
    /// The segment as listed (for a pending compaction swap, possibly its `.log.cleaned` file).
    public var file: SegmentFileInfo
    /// What the walk counted.
    public var summary: SegmentWalkSummary
    /// Index entries (the file size / 8, or the valid prefix of a preallocated active index); `nil` when missing.
    public var indexEntries: Int?
}

/// What ``OfflineLog/verify(progress:)`` found.
public struct LogVerification: Sendable {
    /// The directory verified.
    public var directory: String
    /// Segments in offset order, as the next open would see them.
    public var segments: [SegmentVerification] = []
    /// Every problem, in log order.
    public var problems: [LogProblem] = []
    /// Observations that are not problems (an unclean shutdown, leftover temporary files, gaps left by compaction).
    public var notes: [String] = []
    /// Whether a valid clean-shutdown marker matching the last segment is present.
    public var cleanShutdown = false
    /// Files examined.
    public var files = 0
    /// Intact batches.
    public var batches = 0
    /// Records in intact batches.
    public var records = 0
    /// Bytes of segment files read.
    public var bytes = 0

    /// No problem at all.
    public var isClean: Bool { problems.isEmpty }
    /// Whether ``Log/open(directory:configuration:)`` would accept the directory and every record be
    /// readable: no problem of severity ``LogProblem/Severity/damage``.
    public var opensCleanly: Bool { !problems.contains { $0.severity == .damage } }
}

/// What verification and repair report as they go: the phase, bytes done and the phase's total.
public enum MaintenancePhase: String, Sendable {
    case verifying, backingUp, rewriting
}

/// Progress callback: `(phase, bytes done, bytes total)`, called at most about once per MiB.
public typealias MaintenanceProgress = (MaintenancePhase, Int, Int) -> Void

extension OfflineLog {
    /// Verifies the whole directory without changing anything: every batch's header, checksum, payload
    /// structure and offset sequence in every segment; every index against its segment; the
    /// `recovery-point`, `clean-shutdown` and `swap-manifest` files; offset continuity across segments.
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
        if let bytes = try CheckpointFile.readFile(manifestPath, syscalls: syscalls) {
            let fieldCount = max(0, (bytes.count - 12) / 8)
            if let file = CheckpointFile.decode(bytes, magic: SegmentSwap.magic, fieldCount: fieldCount),
               let swap = SegmentSwap(fields: file.fields) {
                pendingSwap = true
                result.notes.append("a compaction swap is pending (\(swap.old.count) segments replaced by \(swap.new.count)); "
                                    + "the next open finishes it")
                segments = try segmentsAfterSwap(swap, segments, &result)
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
            result.problems.append(LogProblem(kind: "orphanIndex", severity: .inconsistency, file: path,
                                              message: "index without a segment"))
        }

        let marker = readCleanShutdown(lastBase: segments.last?.baseOffset, &result)
        result.cleanShutdown = marker != nil
        if marker == nil { result.notes.append("the log was not closed cleanly; the next open scans from the recovery point") }

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
                let isTornTail = isLast && range.bytes.lowerBound >= summary.endOfIntactData
                    && (marker.map { UInt64(range.bytes.lowerBound) >= $0.activeSize } ?? true)
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
            if isLast, let marker, !summary.isDamaged {
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
                result.notes.append("offsets \(previous.summary.nextOffset)..<\(first) are absent between \(previous.file.name) and "
                                    + "\(segment.name) (normal after compaction or salvage)")
            }
            let entries = checkIndex(segment, positions: positions, dataEnd: summary.endOfIntactData,
                                     preallocated: isLast && marker == nil, segmentDamaged: summary.isDamaged, &result)
            result.segments.append(SegmentVerification(file: segment, summary: summary, indexEntries: entries))
        }
        try checkRecoveryPoint(segments, &result)
        result.problems.sort { ($0.file, $0.position ?? -1) < ($1.file, $1.position ?? -1) }
        return result
    }

    /// The segments the next open will see once it has rolled `swap` forward; reports a missing replacement.
    private func segmentsAfterSwap(_ swap: SegmentSwap, _ listed: [SegmentFileInfo],
                                   _ result: inout LogVerification) throws(LogError) -> [SegmentFileInfo] {
        let replaced = Set(swap.old).subtracting(swap.new)
        var byBase: [UInt64: SegmentFileInfo] = [:]
        for segment in listed where !replaced.contains(segment.baseOffset) { byBase[segment.baseOffset] = segment }
        for base in swap.new {
            let cleaned = directory + "/" + CleanedSegmentWriter.cleanedName(base, ".log")
            guard let size = Self.size(of: cleaned) else {
                if byBase[base] == nil {
                    result.problems.append(LogProblem(kind: "swapSegmentMissing", severity: .damage, file: directory + "/" + SegmentSwap.manifestName,
                                                      message: "names the compacted segment \(Segment.fileName(base, ".log")), which is missing; "
                                                          + "open refuses the directory"))
                }
                continue
            }
            let cleanedIndex = directory + "/" + CleanedSegmentWriter.cleanedName(base, ".index")
            let indexPath = Self.size(of: cleanedIndex) != nil ? cleanedIndex : directory + "/" + Segment.fileName(base, ".index")
            byBase[base] = SegmentFileInfo(baseOffset: base, path: cleaned, size: size, indexPath: indexPath, indexSize: Self.size(of: indexPath))
        }
        return byBase.values.sorted { $0.baseOffset < $1.baseOffset }
    }

    struct CleanShutdown { var nextOffset: UInt64; var activeBase: UInt64; var activeSize: UInt64 }

    /// The clean-shutdown marker when it is valid and matches the last segment; reports one that is not.
    private func readCleanShutdown(lastBase: UInt64?, _ result: inout LogVerification) -> CleanShutdown? {
        let path = directory + "/" + CheckpointFile.cleanShutdownName
        guard let bytes = try? CheckpointFile.readFile(path, syscalls: syscalls) else { return nil }
        guard let file = CheckpointFile.decode(bytes, magic: CheckpointFile.cleanShutdownMagic, fieldCount: 3) else {
            result.problems.append(LogProblem(kind: "cleanShutdownDamaged", severity: .inconsistency, file: path,
                                              message: "the clean-shutdown marker is damaged (the next open ignores it and scans)"))
            return nil
        }
        let marker = CleanShutdown(nextOffset: file.fields[0], activeBase: file.fields[1], activeSize: file.fields[2])
        let lastSize = lastBase.flatMap { Self.size(of: directory + "/" + Segment.fileName($0, ".log")) } ?? 0
        guard marker.activeBase == lastBase, marker.nextOffset >= marker.activeBase, UInt64(lastSize) >= marker.activeSize else {
            result.problems.append(LogProblem(kind: "cleanShutdownMismatch", severity: .inconsistency, file: path,
                                              message: "the clean-shutdown marker (segment \(marker.activeBase), \(marker.activeSize) bytes, "
                                                  + "next offset \(marker.nextOffset)) does not match the last segment; the next open ignores it"))
            return nil
        }
        return marker
    }

    private func checkRecoveryPoint(_ segments: [SegmentFileInfo], _ result: inout LogVerification) throws(LogError) {
        let path = directory + "/" + CheckpointFile.recoveryPointName
        guard let bytes = try CheckpointFile.readFile(path, syscalls: syscalls) else {
            result.problems.append(LogProblem(kind: "recoveryPointMissing", severity: .inconsistency, file: path,
                                              message: "missing; an unclean open scans every segment"))
            return
        }
        guard let point = CheckpointFile.decode(bytes, magic: CheckpointFile.recoveryPointMagic, fieldCount: 1)?.fields[0] else {
            result.problems.append(LogProblem(kind: "recoveryPointDamaged", severity: .inconsistency, file: path,
                                              message: "damaged; an unclean open scans every segment"))
            return
        }
        if !segments.contains(where: { $0.baseOffset == point }) {
            result.problems.append(LogProblem(kind: "recoveryPointStale", severity: .inconsistency, file: path,
                                              message: "names segment \(point), which does not exist"))
        }
    }

    /// Checks an index against the intact batches of its segment; returns its entry count.
    private func checkIndex(_ segment: SegmentFileInfo, positions: [Int: UInt64], dataEnd: Int, preallocated: Bool,
                            segmentDamaged: Bool, _ result: inout LogVerification) -> Int? {
        func problem(_ kind: String, _ message: String, position: Int? = nil) {
            result.problems.append(LogProblem(kind: kind, severity: .inconsistency, file: segment.indexPath, position: position,
                                              message: message))
        }
        guard let size = segment.indexSize else {
            if segment.size > 0 { problem("indexMissing", "missing (rebuilt by the next open)") }
            return nil
        }
        guard let mapping = try? mapFile(segment.indexPath) else {
            problem("indexUnreadable", "cannot be read")
            return nil
        }
        guard size % OffsetIndex.entrySize == 0 else {
            problem("indexDamaged", "size \(size) is not a multiple of \(OffsetIndex.entrySize)")
            return nil
        }
        var entries = size / OffsetIndex.entrySize
        func entry(_ i: Int) -> (UInt32, UInt32) {
            (mapping.bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt32.self).littleEndian,
             mapping.bytes.loadUnaligned(fromByteOffset: i * 8 + 4, as: UInt32.self).littleEndian)
        }
        if preallocated {
            // The active index of a log that was not closed is preallocated with zeros and is rebuilt at
            // the next open; only its non-zero prefix means anything.
            while entries > 1 && entry(entries - 1) == (0, 0) { entries -= 1 }
            if entries == 1 && dataEnd == 0 && entry(0) == (0, 0) { entries = 0 }
        }
        // The index of a damaged segment is rewritten by any repair; its entries are not worth reporting.
        if segmentDamaged { return entries }
        if dataEnd > 0 && entries == 0 {
            problem("indexEmpty", "empty for a segment of \(dataEnd) bytes")
            return 0
        }
        var previous: (UInt32, UInt32)?
        for i in 0..<entries {
            let (relative, position) = entry(i)
            if let (p, q) = previous, relative <= p || position <= q {
                problem("indexDamaged", "entry \(i) (\(relative), \(position)) does not follow entry \(i - 1)", position: i * 8)
                return entries
            }
            previous = (relative, position)
            guard let base = positions[Int(position)], base == segment.baseOffset + UInt64(relative) else {
                if preallocated { continue }  // rebuilt from the scan anyway
                problem("indexStale", "entry \(i) says offset \(segment.baseOffset + UInt64(relative)) is at byte \(position), "
                        + "where no intact batch of that offset starts", position: i * 8)
                return entries
            }
        }
        if let first = positions[0], entries > 0, entry(0) != (UInt32(truncatingIfNeeded: first - segment.baseOffset), 0) {
            problem("indexStale", "the first entry does not point at the first batch", position: 0)
        }
        return entries
    }
}
