#if canImport(Glibc)
import Glibc
#endif

extension Log {
    /// Swapping: commits the swap of `candidates` for the segments `writer` wrote (the manifest's
    /// install is the commit point), rolls it forward, and puts the new segments in the list
    /// readers see.
    /// - Throws: ``LogError/Code/io`` (or ``LogError/Code/corruptCheckpoint``). Before the commit
    ///   point the `.cleaned` files are discarded and the log is unchanged; once the manifest is
    ///   in place the log is poisoned, and the next open finishes the swap.
    func swapInCompactedSegments(_ candidates: [Segment], writer: inout CleanedSegmentWriter) throws(LogError) {
        let swap = SegmentSwap(old: candidates.map(\.baseOffset), new: writer.written.map(\.base))
        do {
            try swap.commit(directory: directory, syscalls: syscalls)
        } catch {
            if syscalls.exists(directory + "/" + SegmentSwap.manifestName) {
                // The manifest was renamed into place (a later fsync failed): the swap may be durable,
                // so the next open must find the `.cleaned` files to finish it. Keep them; stop here.
                poison(error)
                throw error
            }
            writer.discard()
            throw error
        }
        // The roll-forward rewrites `log-manifest` from the file; a roll's rewrite (from memory) waits
        // until the segments in memory match it again.
        manifestLock.lock()
        defer { manifestLock.unlock() }
        do {
            _ = try swap.rollForward(directory: directory, syscalls: syscalls)
            if let manifest = try? LogManifest.read(directory: directory, syscalls: syscalls) { manifestGaps = manifest.gaps }
            var replacements: [Segment] = []
            for file in writer.written {
                let segment = try Segment(directory: directory, baseOffset: file.base, size: file.size, indexEntries: file.indexEntries,
                                          indexCapacity: file.indexEntries, syscalls: syscalls, create: false)
                segment.mapping = try segment.map(size: file.size)
                replacements.append(segment)
            }
            segmentLock.withLock {
                let oldBases = Set(candidates.map(\.baseOffset))
                segments.removeAll { oldBases.contains($0.baseOffset) }
                segments.insert(contentsOf: replacements, at: 0)
            }
        } catch {
            poison(error)
            throw error
        }
    }
}

/// The crash-safe swap of compacted segments, driven by a `swap-manifest` file.
struct SegmentSwap {
    static let manifestName = "swap-manifest"
    static let magic: UInt32 = 0x5753_5053  // "SPSW"

    var old: [UInt64]
    var new: [UInt64]

    /// Installs the manifest: after this returns, the swap happens even if the process dies.
    func commit(directory: String, syscalls: any Syscalls) throws(LogError) {
        do { try syscalls.fsyncDirectory(directory) } catch { throw .io(error, "cannot sync the directory", path: directory) }
        let file = CheckpointFile(magic: Self.magic, fields: [UInt64(old.count)] + old + [UInt64(new.count)] + new)
        try CheckpointFile.writeAtomically(file.encoded, directory: directory, name: Self.manifestName, syscalls: syscalls)
    }

    /// Renames the `.cleaned` files into place, records the new shape in `log-manifest`, deletes
    /// replaced segments, then the swap manifest. Idempotent: each step checks what is already done.
    /// The log manifest is rewritten after the renames and before the deletions, so that at no
    /// point does it list a segment that is gone (until the swap manifest is removed, the next open
    /// repeats the whole roll-forward).
    func rollForward(directory: String, syscalls: any Syscalls) throws(LogError) -> [String] {
        var touched: [String] = []
        func path(_ base: UInt64, _ suffix: String) -> String { directory + "/" + Segment.fileName(base, suffix) }
        // Never delete old segments for a replacement that is not there.
        for base in new where !syscalls.exists(path(base, ".log") + ".cleaned") && !syscalls.exists(path(base, ".log")) {
            throw LogError(.corruptCheckpoint, "the swap manifest names the compacted segment \(Segment.fileName(base, ".log")), "
                           + "which is missing; the old segments were left in place — run `spool recover`",
                           path: directory + "/" + Self.manifestName)
        }
        do {
            for base in new {
                for suffix in [".index", ".log"] {
                    let cleaned = path(base, suffix) + ".cleaned"
                    if syscalls.exists(cleaned) {
                        try syscalls.rename(cleaned, to: path(base, suffix))
                        touched.append(cleaned)
                    }
                }
            }
            try syscalls.fsyncDirectory(directory)
        } catch {
            throw .io(error, "cannot finish the segment swap; reopen the log to retry", path: directory)
        }
        try recordInLogManifest(directory: directory, syscalls: syscalls)
        do {
            let kept = Set(new)
            for base in old where !kept.contains(base) {
                for suffix in [".log", ".index"] where syscalls.exists(path(base, suffix)) {
                    try syscalls.unlink(path(base, suffix))
                    touched.append(path(base, suffix))
                }
            }
            try syscalls.fsyncDirectory(directory)
        } catch {
            throw .io(error, "cannot finish the segment swap; reopen the log to retry", path: directory)
        }
        try CheckpointFile.remove(directory: directory, name: Self.manifestName, syscalls: syscalls)
        return touched
    }

    /// Replaces the old segments by the new ones in `log-manifest`, with their lengths, and records
    /// the compacted range as a gap. A log without a manifest (made before manifests existed) gets
    /// none here; a damaged one is left for open and `spool recover` to report.
    func recordInLogManifest(directory: String, syscalls: any Syscalls) throws(LogError) {
        guard var manifest = try? LogManifest.read(directory: directory, syscalls: syscalls),
              let first = old.min(), let last = old.max() else { return }
        let replaced = Set(old).union(new)
        let end = manifest.segments.first { $0.base > last && !replaced.contains($0.base) }?.base ?? (new.max().map { $0 + 1 } ?? last + 1)
        manifest.segments.removeAll { replaced.contains($0.base) }
        for base in new {
            let path = directory + "/" + Segment.fileName(base, ".log")
            var length: UInt64?
            if let fd = try? syscalls.open(path, flags: O_RDONLY, mode: 0) {
                length = (try? syscalls.fileSize(fd)).map { UInt64($0) }
                syscalls.close(fd)
            }
            manifest.segments.append(LogManifest.Entry(base: base, length: length))
        }
        manifest.segments.sort { $0.base < $1.base }
        manifest.cleanClose = false
        manifest.record(first..<end, .compaction)
        try manifest.write(directory: directory, syscalls: syscalls)
    }

    /// At open: finishes a committed swap, or discards the files of one that did not commit.
    static func resolve(directory: String, syscalls: any Syscalls) throws(LogError) -> [String] {
        var touched: [String] = []
        if let bytes = try CheckpointFile.readFile(directory + "/" + manifestName, syscalls: syscalls) {
            let fieldCount = max(0, (bytes.count - 12) / 8)
            guard let file = CheckpointFile.decode(bytes, magic: magic, fieldCount: fieldCount),
                  let swap = SegmentSwap(fields: file.fields) else {
                throw LogError(.corruptCheckpoint, "the segment swap manifest is damaged; run `spool recover`",
                               path: directory + "/" + manifestName)
            }
            touched += try swap.rollForward(directory: directory, syscalls: syscalls)
        }
        let names: [String]
        do { names = try syscalls.listDirectory(directory) } catch { throw .io(error, "cannot list the directory", path: directory) }
        var removed = false
        for name in names where name.hasSuffix(".cleaned") {
            try? syscalls.unlink(directory + "/" + name)
            touched.append(directory + "/" + name)
            removed = true
        }
        if removed {
            do { try syscalls.fsyncDirectory(directory) } catch { throw .io(error, "cannot sync the directory", path: directory) }
        }
        return touched
    }

    init(old: [UInt64], new: [UInt64]) {
        self.old = old
        self.new = new
    }

    init?(fields: [UInt64]) {
        // The counts come from disk: compare them as UInt64 first, so that a huge one (a damaged
        // manifest whose CRC still matches) is rejected instead of trapping in Int(_:) or `+`.
        guard let first = fields.first, first <= UInt64(fields.count), fields.count >= 2 + Int(first) else { return nil }
        let oldCount = Int(first)
        guard fields[1 + oldCount] <= UInt64(fields.count) else { return nil }
        let newCount = Int(fields[1 + oldCount])
        guard fields.count == 2 + oldCount + newCount else { return nil }
        old = Array(fields[1..<1 + oldCount])
        new = Array(fields[(2 + oldCount)...])
    }
}
