#if canImport(Glibc)
import Glibc
#endif

extension Log {
    /// Copying: reads every batch of `candidates` (checksums verified) and hands the records
    /// `judge` keeps to `writer`, with their offsets; counts what it kept and dropped in `summary`;
    /// `pacer` (online compactions) holds the rate and may stop it.
    /// Writes only `.cleaned` files: nothing a reader or an open sees changes.
    /// - Throws: ``LogError/Code/corruptBatch`` for a batch that fails its checks; what the
    ///   judge throws; the writer's ``LogError/Code/io``. The caller discards the writer's files.
    func copyLiveRecords(of candidates: [Segment], judge: Judge, pacer: CompactionPacer?, into writer: inout CleanedSegmentWriter,
                         summary: inout CompactionSummary) throws {
        // Per record of the batch at hand, whether it is live (offset predicates only).
        var live: [Bool] = []
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
                if let pacer { try pacer.pace(header.totalLength, directory: directory) }
                if maintenanceStopping.load(ordering: .relaxed) { throw LogError(.closed, "the log is closed", path: directory) }
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
    private let compressor = LZ4.Compressor()
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
                                compressionThreshold: configuration.compressionThresholdBytes, compressor: compressor)
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

