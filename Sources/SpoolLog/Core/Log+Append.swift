#if canImport(Glibc)
import Glibc
#endif
import DequeModule
import Synchronization
import SpoolPrimitives

/// An append waiting for its acknowledgement.
struct AppendWaiter {
    let continuation: UnsafeContinuation<Result<UInt64, LogError>, Never>
    /// What the append returns: the offset of its (last) record.
    let value: UInt64
}

/// Records gathered for one batch, in the order their offsets were assigned.
struct PendingBatch {
    var buffer: PendingBatchBuffer
    let baseOffset: UInt64
    var recordCount = 0
    var waiters: [AppendWaiter] = []
    /// Waiters that need an fdatasync whatever the durability mode (``Log/flush()``).
    var flushWaiters: [AppendWaiter] = []
}

extension Log {
    /// Appends one record and returns its offset once it is acknowledged under the log's ``Durability``.
    ///
    /// Lock-free until the acknowledgement: the record is pushed onto the writer's intake with one
    /// compare-and-swap, without copying.
    /// - Throws: ``LogError/Code/recordTooLarge``; ``LogError/Code/poisoned`` after a failed write or sync
    ///   (this append may or may not be on disk); ``LogError/Code/closed``.
    public func append(_ record: [UInt8]) async throws(LogError) -> UInt64 {
        try checkRecordSize(record.count)
        return try await withUnsafeContinuation { submit(AppendRequest(.record(record), $0)) }.get()
    }

    /// Appends records as one unit: their offsets are consecutive, they are written in one batch,
    /// and all are acknowledged together. Returns the range of their offsets.
    ///
    /// - Throws: ``LogError/Code/invalidArgument`` for an empty array, and as ``append(_:)``.
    public func append(contentsOf records: [[UInt8]]) async throws(LogError) -> Range<UInt64> {
        guard !records.isEmpty else { throw LogError(.invalidArgument, "append(contentsOf:) needs at least one record") }
        var total = RecordBatchHeader.size
        for record in records {
            try checkRecordSize(record.count)
            total += record.count + 4
        }
        guard total <= configuration.segmentBytes else {
            throw LogError(.recordTooLarge, "\(records.count) records of \(total) bytes in all: the records of one "
                           + "append(contentsOf:) share a batch, which must fit in a segment (segmentBytes = \(configuration.segmentBytes))")
        }
        let last = try await withUnsafeContinuation { submit(AppendRequest(.records(records), $0)) }.get()
        return (last + 1 - UInt64(records.count))..<(last + 1)
    }

    /// Returns once everything acknowledged so far is on stable storage (one `fdatasync`),
    /// whatever the durability mode.
    ///
    /// - Throws: ``LogError/Code/poisoned`` after a failed write or sync; ``LogError/Code/closed``.
    public func flush() async throws(LogError) {
        _ = try await withUnsafeContinuation { submit(AppendRequest(.flush, $0)) }.get()
    }

    private func checkRecordSize(_ count: Int) throws(LogError) {
        guard count <= configuration.maxRecordBytes else {
            throw LogError(.recordTooLarge, "a record of \(count) bytes exceeds maxRecordBytes (\(configuration.maxRecordBytes))")
        }
    }

    /// Hands a request to the writer, or fails it at once when the log is closed or poisoned.
    private func submit(_ request: AppendRequest) {
        // One compare-and-swap: the intake refuses the push once the log refuses appends.
        guard intake.push(request) else {
            let error = pipelineLock.withLock { refusal() } ?? LogError(.closed, "the log is closed", path: directory)
            request.continuation.resume(returning: .failure(error))
            return
        }
        // Syncers that write: an idle one writes this request and syncs it (the others will look
        // at the intake when their sync or their wait ends). Under the pipeline lock, so that the
        // signal cannot fall between a syncer's last look and its wait.
        if intake.routesToSyncers && intake.idleSyncers.load(ordering: .sequentiallyConsistent) > 0 {
            pipelineLock.withLock { syncWakeup.signal() }
        }
    }

    /// The error a new call gets, if any; call with `pipelineLock` held.
    func refusal() -> LogError? {
        if configuration.access == .readOnly {
            return LogError(.readOnly, "the log was opened read-only; open it with `access: .readWrite` to change it", path: directory)
        }
        if let failure {
            if failure.code == .poisoned || failure.code == .closed { return failure }
            return LogError(.poisoned, "an earlier write or fsync failed; reopen the log to recover", path: failure.path,
                            underlying: failure)
        }
        if closing { return LogError(.closed, "the log is closed", path: directory) }
        return nil
    }

    /// Groups requests, in arrival order, into batches of at most `maxBatchBytes` (a request's
    /// records always share one batch), assigning offsets.
    private func makeBatches(_ requests: [AppendRequest]) -> [PendingBatch] {
        var batches: [PendingBatch] = []
        // Each batch's buffer is reserved for what is left to write (up to a batch's limit), so that it
        // is not reallocated and copied as it fills.
        var remainingBytes = requests.reduce(0) { $0 + $1.batchBytes }
        var remainingRequests = requests.count
        for request in requests {
            let bytes = request.batchBytes
            defer {
                remainingBytes -= bytes
                remainingRequests -= 1
            }
            if case .flush = request.kind {
                if batches.isEmpty { batches.append(PendingBatch(buffer: PendingBatchBuffer(), baseOffset: nextOffset)) }
                batches[batches.count - 1].flushWaiters.append(AppendWaiter(continuation: request.continuation, value: nextOffset))
                continue
            }
            if batches.isEmpty || (batches[batches.count - 1].recordCount > 0
                                   && batches[batches.count - 1].buffer.payloadCount + bytes > configuration.maxBatchBytes) {
                batches.append(PendingBatch(buffer: PendingBatchBuffer(reservingCapacity: min(configuration.maxBatchBytes, remainingBytes)),
                                            baseOffset: nextOffset))
                batches[batches.count - 1].waiters.reserveCapacity(remainingRequests)
            }
            let i = batches.count - 1
            switch request.kind {
            case .record(let record):
                record.withUnsafeBytes { batches[i].buffer.append($0) }
                batches[i].recordCount += 1
                nextOffset += 1
            case .records(let records):
                for record in records { record.withUnsafeBytes { batches[i].buffer.append($0) } }
                batches[i].recordCount += records.count
                nextOffset += UInt64(records.count)
            case .flush:
                break
            }
            batches[i].waiters.append(AppendWaiter(continuation: request.continuation, value: nextOffset - 1))
        }
        return batches
    }

    // MARK: - The writer thread

    /// Starts the writer and syncer threads. They do not retain the log: dropping the last
    /// reference runs `deinit`, which closes the log and joins them (an append in flight keeps
    /// the log alive, since the call holds a reference until it returns).
    func startThreads() {
        let log = UnownedLog(self)
        intake.routesToSyncers = syncersWrite
        threads.append(startThread(named: "spool-writer") { log.reference._withUnsafeGuaranteedRef { $0.runWriter() } })
        for i in 0..<syncerCount {
            threads.append(startThread(named: "spool-sync\(i)") { log.reference._withUnsafeGuaranteedRef { $0.runSyncer(number: i) } })
        }
    }

    /// The writer thread: takes what the intake holds and writes it (``writeTaken(_:claimingNext:)``)
    /// whenever it is woken. In `sync` mode (``syncersWrite``) no push wakes it: the syncers
    /// take and write what arrives themselves, each just before its own fdatasync, so no write is
    /// handed to another thread and back; the writer then keeps the zero fill and the durable
    /// extent ahead of the data when a write asks (``keepExtentAhead()``), finishes the intake at
    /// close and fails it after a poisoning.
    fileprivate func runWriter() {
        while true {
            if extentRequested.exchange(false, ordering: .acquiringAndReleasing) { keepExtentAhead() }
            writeLock.lock()
            // In `sync` mode the intake is the syncers' to take, until the log closes or fails.
            let (closing, failed) = pipelineLock.withLock { (self.closing, failure != nil) }
            var requests = !syncersWrite || closing || failed ? intake.takeAll() : []
            if requests.isEmpty {
                if closing {
                    // The intake refused pushes before `closing` was set: one more take finds
                    // every request that made it in.
                    requests = intake.takeAll()
                    if requests.isEmpty {
                        writeLock.unlock()
                        pipelineLock.withLock {
                            writerDone = true
                            syncWakeup.broadcast()
                        }
                        return
                    }
                } else {
                    writeLock.unlock()
                    intake.waitForRequests()
                    continue
                }
            }
            writeTaken(requests, claimingNext: false)
            writeLock.unlock()
        }
    }

    /// Encodes and writes `requests` (just taken from the intake, in arrival order) and hands
    /// their waiters on: to the syncers in `sync` mode, straight back to the callers otherwise.
    /// Call with `writeLock` held (and `pipelineLock` not): the take and the write are one step,
    /// so offsets and file positions follow the intake's order whichever thread writes.
    /// `claimingNext`: the caller is a syncer that claims a sync right after, so no syncer is woken.
    func writeTaken(_ taken: [AppendRequest], claimingNext: Bool) {
        var requests = taken
        let syncMode = configuration.durability == .sync
        let poisoned = pipelineLock.withLock {
            writerBusy = true
            return failure != nil
        }
        if poisoned {
            pipelineLock.withLock { writerBusy = false }
            fail(requests.map { AppendWaiter(continuation: $0.continuation, value: 0) })
            return
        }
        var batches = makeBatches(requests)
        requests = []
        var segment = currentSegment
        var immediate: [AppendWaiter] = []
        var toSync: [AppendWaiter] = []
        do {
            for i in batches.indices where batches[i].recordCount > 0 {
                let batch = batches[i]
                let tryCompression = writerScratch.compression.shouldTry(rawBytes: batch.buffer.payloadCount)
                let bytes = batches[i].buffer.finish(
                    baseOffset: batch.baseOffset, recordCount: batch.recordCount,
                    timestampMilliseconds: wallClockMilliseconds(),
                    compressionThreshold: tryCompression ? configuration.compressionThresholdBytes : Int.max,
                    compressor: writerScratch.compressor)
                if tryCompression { writerScratch.compression.record(compressed: bytes[5] & RecordBatchHeader.compressedFlag != 0) }
                batches[i].buffer = PendingBatchBuffer()
                segment = try write(bytes, baseOffset: batch.baseOffset, recordCount: batch.recordCount,
                                    zeros: writerScratch.zeros)
            }
        } catch {
            pipelineLock.withLock { writerBusy = false }
            poison(error)
            fail(batches.flatMap { $0.waiters + $0.flushWaiters })
            return
        }
        for batch in batches {
            if syncMode { toSync += batch.waiters } else { immediate += batch.waiters }
            toSync += batch.flushWaiters
        }
        let endOffset = batches.last!.baseOffset + UInt64(batches.last!.recordCount)
        let writtenAt = monotonicNanoseconds()
        pipelineLock.lock()
        writerBusy = false
        writtenSequence += 1
        segment.publishedDataEnd = segment.writePosition
        segment.publishedExtent = max(segment.zeroedUpTo, segment.writePosition)
        if !syncMode {
            segment.readableSize.store(segment.writePosition, ordering: .releasing)
            acknowledgedEnd.store(endOffset, ordering: .releasing)
        }
        if !toSync.isEmpty || syncMode {
            syncGroups.append(SyncGroup(sequence: writtenSequence, segment: segment, endPosition: segment.writePosition,
                                        endOffset: endOffset, waiters: toSync, writtenAt: writtenAt))
            if firstUnclaimedGroupWrittenAt == nil { firstUnclaimedGroupWrittenAt = writtenAt }
            if !claimingNext { syncWakeup.signal() }
        } else if writtenSequence == claimedSequence + 1 {
            // The first unsynced write since the last sync: start the interval syncer's clock.
            syncWakeup.signal()
        }
        pipelineLock.unlock()
        if resumesFromPool(immediate.count) { Self.resumeFromPool([immediate]) } else { Self.resume(immediate) }
    }

    /// Acknowledgements of more callers than this may be resumed from the cooperative pool
    /// (``resumesFromPool(_:)``).
    static let callersResumedFromPool = 128

    /// Whether the thread that acknowledged `count` callers (a syncer, or the writer thread
    /// outside `sync` mode) hands them to a task on the pool to resume (``resumeFromPool(_:)``)
    /// rather than resuming them itself (``resume(_:)``).
    ///
    /// Resuming a caller enqueues its task on the cooperative pool. From the log's own threads,
    /// which are outside the pool, each enqueue allocates libdispatch's queue item on the heap (a
    /// pool thread takes one from a per-thread cache) and often wakes a pool thread with a system
    /// call. When the pool is saturated, that is CPU the producers need: at 512 producers in
    /// `spool bench log`, about a third of the syncer's. So a group of more than
    /// ``callersResumedFromPool`` callers, acknowledged while more appends already wait in the
    /// intake, is handed to one task on the pool, which resumes them there (one enqueue from this
    /// thread instead of one per caller), and this thread goes straight on to write and sync what
    /// waits: at 512 producers about 1.08× the records/s, with 0.91× the CPU per record
    /// (Docs/measurements/2026-12-07-resuming-callers-from-the-pool.md).
    ///
    /// Otherwise the callers are resumed here. Resuming them takes this thread a while, and what
    /// they append meanwhile is what its next write and sync gather: a thread that went straight
    /// on would write and sync before they are back, in more, smaller groups. With groups of a
    /// few dozen callers (a task store's log in `spool bench queue`, 40–50 records per sync) that
    /// cost up to a sixth of the tasks/s; with an empty intake the next group is the callers
    /// themselves.
    func resumesFromPool(_ count: Int) -> Bool {
        count > Self.callersResumedFromPool && !intake.isEmpty
    }

    /// Resumes acknowledged callers with their offsets (the records were acknowledged first).
    static func resume(_ waiters: [AppendWaiter]) {
        for waiter in waiters { waiter.continuation.resume(returning: .success(waiter.value)) }
    }

    /// Resumes acknowledged callers from one task on the cooperative pool; returns at once.
    static func resumeFromPool(_ lists: [[AppendWaiter]]) {
        Task.detached {
            for waiters in lists { resume(waiters) }
        }
    }

    /// Writes one encoded batch to the active segment, rolling first when it is full or old.
    /// Returns the segment written to.
    private func write(_ bytes: [UInt8], baseOffset: UInt64, recordCount: Int, zeros: UnsafeRawBufferPointer) throws(LogError) -> Segment {
        var segment = currentSegment
        if segment.writePosition > 0 && needsRoll(segment, adding: bytes.count) {
            segment = try roll(to: baseOffset)
        }
        let position = segment.writePosition
        let end = position + bytes.count
        try keepZerosAhead(of: segment, writingUpTo: end, zeros: zeros)
        do {
            try syscalls.pwriteAll(segment.fd, bytes, at: Int64(position))
        } catch {
            throw .io(error, "cannot append a batch at byte \(position)", path: segment.logPath)
        }
        if position >= segment.nextIndexPosition {
            segment.index.append(relativeOffset: UInt32(baseOffset - segment.baseOffset), position: UInt32(position))
            segment.nextIndexPosition = position + configuration.indexIntervalBytes
        }
        if segment.firstTimestamp == nil { segment.firstTimestamp = wallClockMilliseconds() }
        segment.writePosition = end
        counters.batches.add(1, ordering: .relaxed)
        counters.records.add(recordCount, ordering: .relaxed)
        counters.bytes.add(bytes.count, ordering: .relaxed)
        return segment
    }

    func needsRoll(_ segment: Segment, adding count: Int) -> Bool {
        if rollRequested.load(ordering: .relaxed) { return true }
        if segment.writePosition + count > configuration.segmentBytes { return true }
        if let age = configuration.segmentMaxAgeMilliseconds, let first = segment.firstTimestamp,
           wallClockMilliseconds() - first >= age {
            return true
        }
        return false
    }

    var indexCapacity: Int { configuration.segmentBytes / configuration.indexIntervalBytes + 2 }

    /// Syncer threads: ``LogConfiguration/concurrentSyncs`` in `sync` mode, one otherwise.
    var syncerCount: Int { configuration.durability == .sync ? configuration.concurrentSyncs : 1 }

    /// Whether the syncers take and write appends themselves, each just before its own fdatasync:
    /// in `sync` mode. (In the other modes the writer thread writes and acknowledges at once.)
    var syncersWrite: Bool { configuration.durability == .sync }

    /// Fails `waiters` with the error the log now refuses calls with.
    func fail(_ waiters: [AppendWaiter]) {
        let error = pipelineLock.withLock { refusal() } ?? LogError(.poisoned, "the log is poisoned")
        for waiter in waiters { waiter.continuation.resume(returning: .failure(error)) }
    }
}

/// What the thread holding `writeLock` writes with: a megabyte of zeros for the zero fill, the
/// compression governor and the LZ4 state. Guarded by `writeLock`.
final class WriterScratch {
    private var zeroBuffer: UnsafeMutableRawBufferPointer?
    var compression: CompressionGovernor
    let compressor = LZ4.Compressor()

    init(compressionThreshold: Int) {
        compression = CompressionGovernor(threshold: compressionThreshold)
    }

    /// Allocated at the first write, so that a log that never writes (a reader, an offline tool) never holds it.
    var zeros: UnsafeRawBufferPointer {
        if let zeroBuffer { return UnsafeRawBufferPointer(zeroBuffer) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        zeroBuffer = buffer
        return UnsafeRawBufferPointer(buffer)
    }

    deinit { zeroBuffer?.deallocate() }
}

/// Decides whether the writer tries LZ4 on the next batch. Data that did not compress is
/// unlikely to start compressing on the next batch, and a failed attempt costs as much CPU
/// as a successful one, so after each miss the writer skips twice as many batches (up to 64)
/// before trying again; a hit resets it.
struct CompressionGovernor {
    let threshold: Int
    private var skip = 0
    private var backoff = 0

    init(threshold: Int) { self.threshold = threshold }

    mutating func shouldTry(rawBytes: Int) -> Bool {
        guard rawBytes >= threshold else { return false }
        if skip > 0 { skip -= 1; return false }
        return true
    }

    mutating func record(compressed: Bool) {
        if compressed {
            backoff = 0
        } else {
            backoff = min(max(1, backoff * 2), 64)
            skip = backoff
        }
    }
}

/// An unretained reference to a log, for its own threads; see ``Log/startThreads()``.
/// Safe because `deinit` joins the threads before the log's memory is freed.
private struct UnownedLog: @unchecked Sendable {
    let reference: Unmanaged<Log>
    init(_ log: Log) { reference = .passUnretained(log) }
}
