#if canImport(Glibc)
import Glibc
#endif

/// What ``Log/compact(below:keeping:)`` did.
public struct CompactionSummary: Sendable, Equatable {
    /// Sealed segments that were read and replaced.
    public var segmentsRewritten = 0
    /// Segments written in their place.
    public var segmentsWritten = 0
    /// Records copied forward.
    public var recordsKept = 0
    /// Records dropped.
    public var recordsDropped = 0
    /// Bytes of the replaced segments.
    public var bytesBefore = 0
    /// Bytes of the segments written in their place.
    public var bytesAfter = 0
}

extension Log {
    /// Rewrites the sealed segments whose records all lie below `offset` (every sealed segment
    /// when `nil`), keeping the records for which `isLive` returns true, with their offsets, and
    /// swaps the new segments in.
    ///
    /// The swap is crash-safe: new segments are written as `*.log.cleaned` / `*.index.cleaned` and
    /// fsynced; a `swap-manifest` naming old and new segments is then installed atomically — the
    /// commit point; then the renames and deletions follow. Opening a log whose swap was interrupted
    /// finishes it when the manifest exists and discards the `.cleaned` files when it does not.
    /// Appends and reads may continue meanwhile: only sealed segments are touched. Compactions and
    /// ``deleteSegments(below:)`` run one at a time (`isLive` must not call either).
    ///
    /// - Throws: what `isLive` throws (nothing is changed then); ``LogError/Code/corruptBatch`` from
    ///   reading; ``LogError/Code/io``. A failure after the commit point poisons the log (reopen it).
    public func compact(below offset: UInt64? = nil, keeping isLive: (LogRecord) throws -> Bool) throws -> CompactionSummary {
        try withoutActuallyEscaping(isLive) { isLive in try compact(below: offset, judge: .record(isLive)) }
    }

    /// ``compact(below:keeping:)`` for a predicate on offsets alone — what the stores' compactions
    /// use — which lets it skip work: a batch with no live record is not decoded (its checksum is
    /// still verified), and a batch whose records are all live is copied as it is, compressed or
    /// not, without decoding or re-encoding it. Same crash safety, same result for readers.
    public func compactByOffset(below offset: UInt64? = nil, keeping isLive: (UInt64) throws -> Bool) throws -> CompactionSummary {
        try withoutActuallyEscaping(isLive) { isLive in try compact(below: offset, judge: .offset(isLive)) }
    }

    private enum Judge {
        case record((LogRecord) throws -> Bool)
        case offset((UInt64) throws -> Bool)
    }

    private func compact(below offset: UInt64?, judge: Judge) throws -> CompactionSummary {
        if let error = pipelineLock.withLock({ refusal() }) { throw error }
        // One compaction or deletion at a time: each works on a snapshot of the sealed segments.
        maintenanceLock.lock()
        defer { maintenanceLock.unlock() }
        let candidates: [Segment] = segmentLock.withLock {
            var picked: [Segment] = []
            for i in 0..<(segments.count - 1) {
                let next = segments[i + 1].baseOffset
                if let offset, next > offset { break }
                picked.append(segments[i])
            }
            return picked
        }
        guard let first = candidates.first else { return CompactionSummary() }
        var summary = CompactionSummary()
        var writer = CleanedSegmentWriter(directory: directory, firstBase: first.baseOffset, configuration: configuration)
        // Per record of the batch at hand, whether it is live (offset predicates only).
        var live: [Bool] = []
        do {
            for segment in candidates {
                summary.segmentsRewritten += 1
                summary.bytesBefore += segment.writePosition
                let mapping: MappedFile = segmentLock.withLock { segment.mapping! }
                var position = 0
                while position < mapping.bytes.count {
                    let view = UnsafeRawBufferPointer(rebasing: mapping.bytes[position...])
                    guard let header = RecordBatchHeader(view), header.totalLength <= view.count, header.checksumMatches(view) else {
                        throw LogError(.corruptBatch, "invalid batch at byte \(position); run `spool recover` before compacting",
                                       path: segment.logPath, offset: UInt64(position))
                    }
                    defer { position += header.totalLength }
                    let count = Int(header.recordCount)
                    var isLive: (LogRecord) throws -> Bool
                    switch judge {
                    case .record(let predicate):
                        isLive = predicate
                    case .offset(let predicate):
                        live.removeAll(keepingCapacity: true)
                        for i in 0..<count { live.append(try predicate(header.baseOffset + UInt64(i))) }
                        let liveCount = live.reduce(0) { $0 + ($1 ? 1 : 0) }
                        if liveCount == 0 {
                            summary.recordsDropped += count
                            continue
                        }
                        if liveCount == count {
                            try writer.appendBatch(UnsafeRawBufferPointer(rebasing: view[0..<header.totalLength]), header)
                            summary.recordsKept += count
                            continue
                        }
                        isLive = { [live] record in live[Int(record.offset - header.baseOffset)] }
                    }
                    let records = try RecordBatch.decode(header, view)
                    for (i, payload) in records.enumerated() {
                        let record = LogRecord(offset: header.baseOffset + UInt64(i), payload: payload)
                        if try isLive(record) {
                            try writer.append(record, timestamp: header.timestampMilliseconds)
                            summary.recordsKept += 1
                        } else {
                            summary.recordsDropped += 1
                        }
                    }
                }
            }
            try writer.finish()
        } catch {
            writer.discard()
            throw error
        }
        summary.segmentsWritten = writer.written.count
        summary.bytesAfter = writer.written.reduce(0) { $0 + $1.size }

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
        do {
            _ = try swap.rollForward(directory: directory, syscalls: syscalls)
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
        return summary
    }
}

/// Writes kept records into `<base>.log.cleaned` segments (and their indexes), grouping runs of
/// consecutive offsets into batches.
struct CleanedSegmentWriter {
    struct File { var base: UInt64; var size: Int; var indexEntries: Int }

    let directory: String
    let configuration: LogConfiguration
    var syscalls: any Syscalls { configuration.syscalls }
    private(set) var written: [File] = []
    private var nextBase: UInt64
    private var fd: Int32 = -1
    private var current: File?
    private var index: [UInt8] = []
    private var nextIndexPosition = 0
    /// Bytes of the current file not written yet: its last `pending.count` bytes.
    private var pending: [UInt8] = []
    private var batch = PendingBatchBuffer()
    private var batchBase: UInt64 = 0
    private var batchCount = 0
    private var batchTimestamp: Int64 = 0

    init(directory: String, firstBase: UInt64, configuration: LogConfiguration) {
        self.directory = directory
        self.nextBase = firstBase
        self.configuration = configuration
    }

    static func cleanedName(_ base: UInt64, _ suffix: String) -> String { Segment.fileName(base, suffix) + ".cleaned" }

    mutating func append(_ record: LogRecord, timestamp: Int64) throws(LogError) {
        if batchCount > 0 && (record.offset != batchBase + UInt64(batchCount)
                              || batch.payloadCount + record.payload.count + 4 > configuration.maxBatchBytes) {
            try flushBatch()
        }
        if batchCount == 0 {
            batchBase = record.offset
            batchTimestamp = timestamp
        }
        record.payload.withUnsafeBytes { batch.append($0) }
        batchCount += 1
    }

    mutating func finish() throws(LogError) {
        try flushBatch()
        try closeFile()
    }

    /// Copies a whole batch as it is (its records all kept, with their offsets), after the
    /// records appended before it.
    mutating func appendBatch(_ bytes: UnsafeRawBufferPointer, _ header: RecordBatchHeader) throws(LogError) {
        try flushBatch()
        try write(bytes, base: header.baseOffset, count: Int(header.recordCount))
    }

    private mutating func flushBatch() throws(LogError) {
        guard batchCount > 0 else { return }
        let full = batch
        batch = PendingBatchBuffer()
        let bytes = full.finish(baseOffset: batchBase, recordCount: batchCount, timestampMilliseconds: batchTimestamp,
                                compressionThreshold: configuration.compressionThresholdBytes)
        let count = batchCount
        batchCount = 0
        let base = batchBase
        let result: Result<Void, LogError> = bytes.withUnsafeBytes { buffer in
            do throws(LogError) { try write(buffer, base: base, count: count); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Writes one encoded batch at the end of the current file, opening the next file first when
    /// this one is full.
    private mutating func write(_ bytes: UnsafeRawBufferPointer, base batchBase: UInt64, count batchCount: Int) throws(LogError) {
        // A segment holds at most segmentBytes, and offsets at most 2^32 - 1 past its base (index entries are 32-bit).
        if let file = current, file.size > 0, file.size + bytes.count > configuration.segmentBytes
            || batchBase + UInt64(batchCount) - file.base > UInt64(UInt32.max) {
            try closeFile()
        }
        if current == nil { try openFile(base: written.isEmpty ? nextBase : batchBase) }
        let position = current!.size
        if position >= nextIndexPosition {
            withUnsafeBytes(of: UInt32(batchBase - current!.base).littleEndian) { index.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(position).littleEndian) { index.append(contentsOf: $0) }
            nextIndexPosition = position + configuration.indexIntervalBytes
            current!.indexEntries += 1
        }
        current!.size += bytes.count
        // Batches are gathered and written in large sequential writes (a kept record is often a
        // batch of its own: one pwrite each would cost more than the copy).
        if pending.isEmpty { pending.reserveCapacity(Self.writeSize) }
        pending.append(contentsOf: bytes)
        if pending.count >= Self.writeSize { try writePending() }
    }

    /// Bytes gathered before a write.
    static let writeSize = 1 << 20

    /// Writes the gathered bytes at the end of what the current file holds.
    private mutating func writePending() throws(LogError) {
        guard let file = current, !pending.isEmpty else { return }
        do {
            try syscalls.pwriteAll(fd, pending, at: Int64(file.size - pending.count))
        } catch {
            throw .io(error, "cannot write a compacted segment", path: directory + "/" + Self.cleanedName(file.base, ".log"))
        }
        pending.removeAll(keepingCapacity: true)
    }

    private mutating func openFile(base: UInt64) throws(LogError) {
        let path = directory + "/" + Self.cleanedName(base, ".log")
        do {
            fd = try syscalls.open(path, flags: O_RDWR | O_CREAT | O_TRUNC, mode: 0o600)
        } catch {
            throw .io(error, "cannot create a compacted segment", path: path)
        }
        current = File(base: base, size: 0, indexEntries: 0)
        index = []
        nextIndexPosition = 0
    }

    private mutating func closeFile() throws(LogError) {
        guard let file = current else { return }
        let path = directory + "/" + Self.cleanedName(file.base, ".log")
        try writePending()
        do {
            try syscalls.fsync(fd)
            syscalls.close(fd)
            fd = -1
        } catch {
            throw .io(error, "cannot sync a compacted segment", path: path)
        }
        try CheckpointFile.writeAtomically(index, directory: directory, name: Self.cleanedName(file.base, ".index"), syscalls: syscalls)
        written.append(file)
        current = nil
    }

    /// Removes every `.cleaned` file written so far (the swap did not commit).
    mutating func discard() {
        pending.removeAll()
        if fd >= 0 { syscalls.close(fd); fd = -1 }
        if let file = current { written.append(file); current = nil }
        for file in written {
            try? syscalls.unlink(directory + "/" + Self.cleanedName(file.base, ".log"))
            try? syscalls.unlink(directory + "/" + Self.cleanedName(file.base, ".index"))
        }
        try? syscalls.fsyncDirectory(directory)
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

    /// Renames the `.cleaned` files into place, deletes replaced segments, then the manifest.
    /// Idempotent: each step checks what is already done.
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
