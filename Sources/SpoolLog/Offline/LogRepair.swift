#if canImport(Glibc)
import Glibc
#endif

extension OfflineLog {
    /// `<parent>/<name>.backup-<UTC timestamp>`: the default place for the files a repair changes.
    public var defaultBackupDirectory: String {
        let trimmed = DataDirectory.normalised(directory)
        let parent = DataDirectory.parent(of: trimmed)
        let name = trimmed.split(separator: "/").last.map(String.init) ?? "log"
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let stamp = "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
        return (parent == "/" ? "" : parent) + "/" + name + ".backup-" + stamp
    }

    /// Repairs the directory so that ``Log/open(directory:configuration:)`` succeeds and returns every
    /// record that is kept, and reports exactly what was removed.
    ///
    /// Both modes first finish (or, with a damaged manifest, discard) an interrupted compaction swap and
    /// remove leftover `*.cleaned` files and orphan indexes; then they remove damaged bytes (see
    /// ``RepairMode``), rebuild the indexes of changed segments and of stale ones, delete the
    /// `clean-shutdown` marker and point `recovery-point` at the last segment. A log without problems
    /// is not touched.
    ///
    /// Crash-safe: every file it changes is first copied to `backupDirectory` (created; the copies are
    /// fsynced); a rewritten segment is written to `<name>.tmp`, fsynced and renamed over the original;
    /// later segments are deleted before an earlier one is cut, so a repair interrupted at any point
    /// leaves a directory that the same repair finishes.
    ///
    /// - Parameters:
    ///   - backupDirectory: where to copy every file before it is changed or deleted; `nil` for no backup.
    ///   - indexIntervalBytes: the index density of rebuilt indexes (``LogConfiguration/indexIntervalBytes``).
    /// - Throws: ``LogError/Code/invalidArgument`` for a read-only handle; ``LogError/Code/io``.
    public func repair(_ mode: RepairMode, backupDirectory: String?, indexIntervalBytes: Int = 4096,
                       progress: MaintenanceProgress? = nil) throws(LogError) -> RepairReport {
        guard isWritable else { throw LogError(.invalidArgument, "open the directory writable to repair it", path: directory) }
        guard indexIntervalBytes >= 64 else { throw LogError(.invalidArgument, "indexIntervalBytes must be at least 64") }
        let before = try verify(progress: progress)
        // A segment of another store in this one's place: keeping its intact batches would adopt records
        // that are not this log's (foreign acks hide tasks), and dropping them silently is no better. The
        // operator decides: restore the right file, or move this one away (then the segment is missing,
        // which a repair accepts, naming its offsets).
        if let replaced = before.problems.first(where: { $0.kind == "segmentReplaced" }) {
            throw LogError(.segmentReplaced, "cannot repair: " + replaced.message, path: replaced.file)
        }
        var report = RepairReport(mode: mode, before: before, after: before)
        let leftovers = try listing().compactionFiles
        if before.isClean && leftovers.isEmpty {
            return report
        }
        var backup = FileBackup(directory: backupDirectory, syscalls: syscalls)

        // 1. Leftovers of compaction, decided as the next open would (or discarded, when the manifest is damaged).
        try resolveCompactionLeftovers(&backup, &report)

        // 2. Plan, from a fresh walk of what is now there.
        let verification = report.deletedFiles.isEmpty && report.changedFiles.isEmpty ? before : try verify(progress: progress)
        var plan = try makePlan(mode, verification, indexIntervalBytes: indexIntervalBytes)
        // Segments lost or cut short behind the log's back: accepting the loss is what the repair is asked for.
        var accepted: [LostData] = []
        let reasons = ["segmentMissing": "segment file missing (listed in the log manifest)",
                       "segmentShortened": "segment cut short after its bytes were on stable storage",
                       "recordedDataMissing": "zeros where the clean close recorded batches"]
        for problem in verification.problems {
            guard let reason = reasons[problem.kind] else { continue }
            accepted.append(LostData(file: problem.file, bytes: problem.bytes ?? 0..<0, offsets: problem.offsets, offsetsExact: false,
                                     reason: reason,
                                     firstPossibleOffset: problem.offsets == nil ? Self.firstOffset(named: problem.file) : nil))
        }
        plan.lost = (plan.lost + accepted).sorted { ($0.offsets?.lowerBound ?? $0.firstPossibleOffset ?? 0) < ($1.offsets?.lowerBound ?? $1.firstPossibleOffset ?? 0) }
        report.lost = plan.lost

        // 3. Back up every file the plan changes, before changing any.
        let markerPath = directory + "/" + CheckpointFile.cleanShutdownName
        let pointPath = directory + "/" + CheckpointFile.recoveryPointName
        var toBackUp: [String] = []
        for action in plan.actions where action.kind != .keep {
            toBackUp.append(action.segment.path)
            if action.segment.indexSize != nil { toBackUp.append(action.segment.indexPath) }
        }
        for action in plan.actions where action.kind == .keep && action.rewriteIndex && action.segment.indexSize != nil {
            toBackUp.append(action.segment.indexPath)
        }
        let logManifestPath = directory + "/" + LogManifest.fileName
        if syscalls.exists(markerPath) { toBackUp.append(markerPath) }
        if syscalls.exists(pointPath) { toBackUp.append(pointPath) }
        if syscalls.exists(logManifestPath) { toBackUp.append(logManifestPath) }
        try backup.copy(toBackUp, progress: progress)

        // The new shape before any segment changes: an interrupted repair never leaves the manifest
        // listing a segment it deleted (lengths of changed segments are recorded once they are written).
        var manifest = LogManifest()
        // The gaps of another log's manifest say nothing about this one.
        if !verification.problems.contains(where: { $0.kind == "logManifestForeign" }) {
            manifest.gaps = (try? LogManifest.read(directory: directory, syscalls: syscalls))?.gaps ?? []
        }
        for lost in plan.lost {
            if let offsets = lost.offsets { manifest.record(offsets, .repair) }
        }
        manifest.segments = plan.actions.filter { $0.kind != .delete }.map {
            LogManifest.Entry(base: $0.segment.baseOffset, length: $0.kind == .keep ? UInt64($0.segment.size) : nil)
        }
        try manifest.write(directory: directory, syscalls: syscalls)
        report.changedFiles.append(logManifestPath)

        // 4. Apply. The marker goes first: from here on a crash leads to a scanning open.
        if syscalls.exists(markerPath) {
            try CheckpointFile.remove(directory: directory, name: CheckpointFile.cleanShutdownName, syscalls: syscalls)
            report.deletedFiles.append(markerPath)
        }
        let rewriteTotal = plan.actions.reduce(0) { $0 + ($1.kind == .rewrite ? $1.keep.reduce(0) { $0 + $1.count } : 0) }
        var rewritten = 0
        // Later segments go before earlier ones are cut, so an interruption leaves a prefix to cut again.
        for i in plan.actions.indices.reversed() where plan.actions[i].kind == .delete {
            let segment = plan.actions[i].segment
            try removeFile(segment.indexPath, &report)
            try removeFile(segment.path, &report)
            try syncDirectory()
        }
        for i in plan.actions.indices where plan.actions[i].kind == .rewrite || plan.actions[i].kind == .truncate {
            let segment = plan.actions[i].segment
            // A missing index is rebuilt by open; a stale one between these steps could mislead readers.
            try removeFile(segment.indexPath, &report)
            try syncDirectory()
            if plan.actions[i].kind == .truncate {
                try truncateSegment(segment, to: plan.actions[i].keep.last?.upperBound ?? 0)
            } else {
                try rewriteSegment(segment, keeping: plan.actions[i].keep) { bytes in
                    rewritten += bytes
                    progress?(.rewriting, rewritten, rewriteTotal)
                }
            }
            report.changedFiles.append(segment.path)
            plan.actions[i].rewriteIndex = true
        }
        for action in plan.actions where action.kind != .delete && action.rewriteIndex {
            try CheckpointFile.writeAtomically(try indexBytes(action, interval: indexIntervalBytes), directory: directory,
                                               name: Segment.fileName(action.segment.baseOffset, ".index"), syscalls: syscalls)
            report.changedFiles.append(action.segment.indexPath)
        }
        if let last = plan.actions.last(where: { $0.kind != .delete }) {
            let point = CheckpointFile(magic: CheckpointFile.recoveryPointMagic, fields: [last.segment.baseOffset])
            let current = try CheckpointFile.readFile(pointPath, syscalls: syscalls)
            if current != point.encoded {
                try CheckpointFile.writeAtomically(point.encoded, directory: directory, name: CheckpointFile.recoveryPointName,
                                                   syscalls: syscalls)
                report.changedFiles.append(pointPath)
            }
        }
        manifest.segments = manifest.segments.map { entry in
            LogManifest.Entry(base: entry.base, length: OfflineLog.size(of: directory + "/" + Segment.fileName(entry.base, ".log")).map { UInt64($0) })
        }
        try manifest.write(directory: directory, syscalls: syscalls)
        try syncDirectory()
        report.backupDirectory = backup.created ? backupDirectory : nil
        report.backedUpFiles = backup.copied
        report.after = try verify(progress: nil)
        return report
    }

    /// The base offset in a segment file's name.
    static func firstOffset(named path: String) -> UInt64? {
        (path.split(separator: "/").last).flatMap { Segment.baseOffset(ofLogFile: String($0)) }
    }

    // MARK: Compaction leftovers

    private func resolveCompactionLeftovers(_ backup: inout FileBackup, _ report: inout RepairReport) throws(LogError) {
        let manifestPath = directory + "/" + SegmentSwap.manifestName
        let listing = try self.listing()
        var swap: SegmentSwap?
        if let bytes = try CheckpointFile.readFile(manifestPath, syscalls: syscalls) {
            let fieldCount = max(0, (bytes.count - 12) / 8)
            swap = CheckpointFile.decode(bytes, magic: SegmentSwap.magic, fieldCount: fieldCount).flatMap { SegmentSwap(fields: $0.fields) }
            if let candidate = swap, candidate.new.contains(where: {
                !syscalls.exists(directory + "/" + CleanedSegmentWriter.cleanedName($0, ".log"))
                    && !syscalls.exists(directory + "/" + Segment.fileName($0, ".log"))
            }) {
                swap = nil  // a replacement is missing: keep the old segments, drop the swap
            }
            var files = [manifestPath] + listing.compactionFiles
            if let swap {
                // The roll-forward rewrites the log manifest too.
                let logManifestPath = directory + "/" + LogManifest.fileName
                if syscalls.exists(logManifestPath) { files.append(logManifestPath) }
                for base in swap.old + swap.new {
                    for suffix in [".log", ".index"] where syscalls.exists(directory + "/" + Segment.fileName(base, suffix)) {
                        files.append(directory + "/" + Segment.fileName(base, suffix))
                    }
                }
            }
            try backup.copy(files, progress: nil)
            if let swap {
                let touched = try swap.rollForward(directory: directory, syscalls: syscalls)
                report.changedFiles += touched.filter { $0.hasSuffix(".cleaned") }.map { String($0.dropLast(".cleaned".count)) }
                report.deletedFiles += touched.filter { !$0.hasSuffix(".cleaned") }
            } else {
                try removeFile(manifestPath, &report)
            }
        }
        for path in (try self.listing()).compactionFiles + listing.orphanIndexes where syscalls.exists(path) {
            try backup.copy([path], progress: nil)
            try removeFile(path, &report)
        }
        try syncDirectory()
    }

    // MARK: Planning

    struct SegmentAction {
        enum Kind { case keep, truncate, rewrite, delete }
        var segment: SegmentFileInfo
        var kind: Kind
        /// Byte ranges of the batches kept (for `.truncate`, one range from 0).
        var keep: [Range<Int>]
        var rewriteIndex: Bool
    }

    struct Plan {
        var actions: [SegmentAction] = []
        var lost: [LostData] = []
    }

    private func makePlan(_ mode: RepairMode, _ verification: LogVerification, indexIntervalBytes: Int) throws(LogError) -> Plan {
        var plan = Plan()
        let segments = verification.segments.map(\.file)
        let staleIndexes = Set(verification.problems.filter { $0.kind.hasPrefix("index") }.map(\.file))
        var cut = false  // truncate: a damage was met, everything after it goes
        for (i, segment) in segments.enumerated() {
            let isLast = i == segments.count - 1
            var intact: [Range<Int>] = []
            var intactOffsets: [(Range<Int>, Range<UInt64>)] = []
            var dropped: [LostData] = []
            var firstDamage: Int?
            var previousEnd = segment.baseOffset
            try walkSegment(segment, nextSegmentBase: isLast ? nil : segments[i + 1].baseOffset) { item in
                switch item {
                case .batch(let batch) where batch.isIntact:
                    intact.append(batch.bytes)
                    intactOffsets.append((batch.bytes, batch.offsets))
                    previousEnd = batch.header.nextOffset
                case .batch(let batch):
                    firstDamage = firstDamage ?? batch.position
                    dropped.append(LostData(file: segment.path, bytes: batch.bytes, offsets: batch.offsets, offsetsExact: true,
                                            reason: batch.problem ?? "invalid batch"))
                case .damage(let range):
                    firstDamage = firstDamage ?? range.bytes.lowerBound
                    dropped.append(LostData(file: segment.path, bytes: range.bytes, offsets: range.offsetsAtMost, offsetsExact: false,
                                            reason: range.reason,
                                            firstPossibleOffset: range.offsetsAtMost == nil ? range.firstPossibleOffset : nil))
                case .zeroTail(let range) where !isLast:
                    firstDamage = firstDamage ?? range.lowerBound
                    let next = segments[i + 1].baseOffset
                    dropped.append(LostData(file: segment.path, bytes: range, offsets: previousEnd..<max(previousEnd, next),
                                            offsetsExact: false, reason: "zero bytes at the end of a sealed segment"))
                case .zeroTail:
                    break
                }
            }
            let indexStale = staleIndexes.contains(segment.indexPath) || (segment.indexSize == nil && !intact.isEmpty)
            var action = SegmentAction(segment: segment, kind: .keep, keep: intact, rewriteIndex: indexStale)
            switch mode {
            case .truncate:
                if cut {
                    action.kind = .delete
                    plan.lost += intactOffsets.map { LostData(file: segment.path, bytes: $0.0, offsets: $0.1, offsetsExact: true,
                                                             reason: "intact batches after the cut") } + dropped
                } else if let firstDamage {
                    cut = true
                    action.kind = .truncate
                    action.keep = intact.filter { $0.upperBound <= firstDamage }
                    let kept = action.keep.last?.upperBound ?? 0
                    action.keep = kept > 0 ? [0..<kept] : []
                    let removed = intactOffsets.filter { $0.0.lowerBound >= firstDamage }
                        .map { LostData(file: segment.path, bytes: $0.0, offsets: $0.1, offsetsExact: true, reason: "intact batches after the cut") }
                    plan.lost += (removed + dropped).sorted { $0.bytes.lowerBound < $1.bytes.lowerBound }
                }
            case .salvage:
                if firstDamage != nil {
                    action.kind = intact.isEmpty && !isLast ? .delete : .rewrite
                    plan.lost += dropped
                }
            }
            plan.actions.append(action)
        }
        plan.lost = Self.coalesce(plan.lost)
        // Keep at least one segment: an emptied log keeps its first segment, empty.
        if !plan.actions.isEmpty && plan.actions.allSatisfy({ $0.kind == .delete }) {
            plan.actions[0].kind = .rewrite
            plan.actions[0].keep = []
        }
        return plan
    }

    /// Joins runs of removed intact batches (adjacent bytes, consecutive offsets, same file) into one entry.
    static func coalesce(_ lost: [LostData]) -> [LostData] {
        var out: [LostData] = []
        for item in lost {
            if var last = out.last, last.offsetsExact, item.offsetsExact, last.file == item.file, last.reason == item.reason,
               last.bytes.upperBound == item.bytes.lowerBound, let a = last.offsets, let b = item.offsets, a.upperBound == b.lowerBound {
                last.bytes = last.bytes.lowerBound..<item.bytes.upperBound
                last.offsets = a.lowerBound..<b.upperBound
                out[out.count - 1] = last
            } else {
                out.append(item)
            }
        }
        return out
    }

    // MARK: Applying

    private func indexBytes(_ action: SegmentAction, interval: Int) throws(LogError) -> [UInt8] {
        // Entries as the writer makes them: the first batch at or after every `interval` bytes.
        let mapping = try mapFile(action.segment.path)
        var bytes: [UInt8] = []
        var nextPosition = 0
        _ = SegmentWalk.run(mapping.bytes, file: action.segment.path, baseOffset: action.segment.baseOffset, nextSegmentBase: nil,
                        decodeRecords: false) { item in
            guard case .batch(let batch) = item, batch.isIntact, batch.position >= nextPosition else { return }
            withUnsafeBytes(of: UInt32(batch.header.baseOffset - action.segment.baseOffset).littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(batch.position).littleEndian) { bytes.append(contentsOf: $0) }
            nextPosition = batch.position + interval
        }
        return bytes
    }

    private func truncateSegment(_ segment: SegmentFileInfo, to size: Int) throws(LogError) {
        do {
            let fd = try syscalls.open(segment.path, flags: O_RDWR, mode: 0)
            defer { syscalls.close(fd) }
            try syscalls.ftruncate(fd, to: Int64(size))
            try syscalls.fsync(fd)
        } catch {
            throw .io(error, "cannot cut the segment at byte \(size)", path: segment.path)
        }
    }

    /// Replaces the segment with its kept batches through ``AtomicFile`` (`<name>.tmp`, fsync,
    /// rename over the segment, directory fsync).
    /// - Throws: ``LogError/Code/io``: "cannot write the repaired segment" with the temporary
    ///   file's path, or "cannot install the repaired segment" with the segment's path.
    private func rewriteSegment(_ segment: SegmentFileInfo, keeping ranges: [Range<Int>], wrote: (Int) -> Void) throws(LogError) {
        let mapping = try mapFile(segment.path)
        do {
            try AtomicFile.replace(segment.name, in: directory, syscalls: syscalls) { fd throws(SystemError) in
                var position: Int64 = 0
                for range in ranges {
                    try syscalls.pwriteAll(fd, UnsafeRawBufferPointer(rebasing: mapping.bytes[range]), at: position)
                    position += Int64(range.count)
                    wrote(range.count)
                }
            }
        } catch {
            throw .io(error.underlying, error.step == .writing ? "cannot write the repaired segment" : "cannot install the repaired segment",
                      path: error.path)
        }
    }

    private func removeFile(_ path: String, _ report: inout RepairReport) throws(LogError) {
        do {
            try syscalls.unlink(path)
            report.deletedFiles.append(path)
        } catch {
            if error.errno != ENOENT { throw .io(error, "cannot delete", path: path) }
        }
    }

    private func syncDirectory() throws(LogError) {
        do { try syscalls.fsyncDirectory(directory) } catch { throw .io(error, "cannot sync the directory", path: directory) }
    }
}
