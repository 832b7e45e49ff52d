#if canImport(Glibc)
import Glibc
#endif
import DequeModule
import Logging
import SpoolLog
import SpoolMatching

/// What replaying the log found for one queue.
private struct RestoredQueue {
    var delayed: [(id: UInt64, due: UInt64, priority: Int)] = []
    var dead: [(id: UInt64, priority: Int)] = []
    var control = QueueControlState()
    var controlled = false

    /// Drops what a purge at `offset` drops; `lanes` are the queue's five lanes.
    mutating func purge(below offset: UInt64, keeping inFlight: Set<UInt64>, deadLetters: Bool, lanes: inout ArraySlice<Deque<UInt64>>) {
        for p in lanes.indices { lanes[p].removeAll { $0 < offset && !inFlight.contains($0) } }
        delayed.removeAll { $0.id < offset && !inFlight.contains($0.id) }
        if deadLetters { dead.removeAll { $0.id < offset } }
    }
}

/// The queues a replay met, by small integer ids: a record's queue name is looked up by its
/// bytes where the record lies, and hashed only when it is not the previous record's queue.
private struct RestoredQueues {
    var keys: [QueueKey] = []
    var restored: [RestoredQueue] = []
    /// Queue `id`'s pending tasks of priority `p` are `lanes[5 * id + p - 1]`: one array of
    /// lanes rather than an array per queue, one less indirection for every task appended.
    var lanes: [Deque<UInt64>] = []
    /// Each id's name bytes, back to back in `arena`, and its kind.
    private var spans: [(start: Int, count: Int, kind: TaskQueueKind)] = []
    private var arena: [UInt8] = []
    /// Open addressing over (kind, name bytes): id + 1, or 0 for an empty slot.
    private var table: [Int32] = Array(repeating: 0, count: 64)
    /// Byte spellings met so far (several can name one key: invalid UTF-8 decodes as U+FFFD).
    private var spellings = 0
    private var byKey: [QueueKey: Int] = [:]
    private var last = -1

    /// The id of the queue a record names.
    mutating func id(kind: TaskQueueKind, name: UnsafeRawBufferPointer) -> Int {
        if last >= 0 && matches(last, kind, name) { return spellingIDs[last] }
        let hash = Self.hash(kind, name)
        let mask = table.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while table[slot] != 0 {
            let spelling = Int(table[slot]) - 1
            if matches(spelling, kind, name) {
                last = spelling
                return spellingIDs[spelling]
            }
            slot = (slot + 1) & mask
        }
        // A new spelling: the first record of its queue (or another spelling of a known key).
        let key = QueueKey(name: String(decoding: name, as: UTF8.self), kind: kind)
        let id = self.id(of: key)
        let spelling = spellings
        spellings += 1
        spans.append((arena.count, name.count, kind))
        arena.append(contentsOf: name)
        spellingIDs.append(id)
        table[slot] = Int32(spelling + 1)
        last = spelling
        if spellings * 2 > table.count { grow() }
        return id
    }

    private var spellingIDs: [Int] = []

    /// The id of `key`, a new one when it is new (from the checkpoint or a control record).
    mutating func id(of key: QueueKey) -> Int {
        if let id = byKey[key] { return id }
        let id = keys.count
        keys.append(key)
        restored.append(RestoredQueue())
        lanes.append(contentsOf: repeatElement([], count: 5))
        byKey[key] = id
        return id
    }

    private func matches(_ spelling: Int, _ kind: TaskQueueKind, _ name: UnsafeRawBufferPointer) -> Bool {
        let span = spans[spelling]
        guard span.kind == kind && span.count == name.count else { return false }
        if span.count == 0 { return true }
        return arena.withUnsafeBytes { memcmp($0.baseAddress! + span.start, name.baseAddress!, span.count) == 0 }
    }

    private mutating func grow() {
        var bigger = [Int32](repeating: 0, count: table.count * 2)
        let mask = bigger.count - 1
        for spelling in 0..<spellings {
            let span = spans[spelling]
            let hash = arena.withUnsafeBytes { Self.hash(span.kind, UnsafeRawBufferPointer(rebasing: $0[span.start..<span.start + span.count])) }
            var slot = Int(truncatingIfNeeded: hash) & mask
            while bigger[slot] != 0 { slot = (slot + 1) & mask }
            bigger[slot] = Int32(spelling + 1)
        }
        table = bigger
    }

    /// A multiply-xorshift hash of the kind and the bytes, 8 at a time.
    private static func hash(_ kind: TaskQueueKind, _ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ (UInt64(kind.rawValue) << 56) ^ UInt64(bytes.count)
        var i = 0
        let count = bytes.count
        while i + 8 <= count {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 32
            i += 8
        }
        if i < count {
            var tail: UInt64 = 0
            for j in i..<count { tail |= UInt64(bytes[j]) << (8 * UInt64(j - i)) }
            h = (h ^ tail) &* 0xC4CE_B9FE_1A85_EC53
        }
        h ^= h >> 29
        h = h &* 0xFF51_AFD7_ED55_8CCD
        return h ^ (h >> 32)
    }
}

/// Live tasks per ack-ledger bucket over [start, end), tallied by a replay and added to the
/// ledger at once.
private struct LiveBuckets {
    let shift: UInt64
    let base: UInt64
    var counts: [Int32]

    init(start: UInt64, end: UInt64, shift: Int) {
        self.shift = UInt64(shift)
        base = start >> UInt64(shift)
        counts = end > start ? Array(repeating: 0, count: Int(((end - 1) >> UInt64(shift)) - base + 1)) : []
    }

    /// Counts the task at `offset` (a record the replay read, so in [start, end)).
    mutating func add(_ offset: UInt64) {
        counts[Int((offset >> shift) - base)] += 1
    }

    /// Calls `body` with an offset in each bucket that has tasks and their count.
    func forEachBucket(_ body: (UInt64, Int32) -> Void) {
        for (i, count) in counts.enumerated() where count > 0 { body((base + UInt64(i)) << shift, count) }
    }
}

/// One bit per log offset in [start, end): set when the task record there was acknowledged.
private struct AckBitmap {
    let start: UInt64
    let end: UInt64
    var words: [UInt64]
    /// Nothing set yet.
    var isEmpty = true

    init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = end
        words = Array(repeating: 0, count: Int((end - start + 63) / 64))
    }

    mutating func set(_ offset: UInt64) {
        guard offset >= start && offset < end else { return }
        let bit = offset - start
        words[Int(bit / 64)] |= 1 << (bit % 64)
        isEmpty = false
    }

    func contains(_ offset: UInt64) -> Bool {
        guard offset >= start && offset < end else { return false }
        let bit = offset - start
        return words[Int(bit / 64)] & (1 << (bit % 64)) != 0
    }
}

/// What a task store's open found and did, for operators and tests.
public struct TaskStoreRecoveryReport: Hashable, Sendable {
    /// Why the `checkpoint` file was ignored and the queues rebuilt from the whole log
    /// (unreadable, not decoding, or contradicting the log); nil when it was used or absent.
    public var ignoredCheckpoint: String?
    /// Where a damaged checkpoint that was a directory was moved, so that new checkpoints can be
    /// written in its place; nil when nothing was moved.
    public var movedCheckpoint: String?
    /// The log offset the replay started at: the checkpoint's ack level, or the log's start.
    public var replayedFrom: UInt64
    /// Log records the replay read.
    public var recordsReplayed: Int
}

extension TaskStore {
    /// What the open found and did: in particular whether it ignored a damaged checkpoint.
    public var recoveryReport: TaskStoreRecoveryReport {
        recoveryState.withLock { $0 } ?? TaskStoreRecoveryReport(ignoredCheckpoint: nil, movedCheckpoint: nil, replayedFrom: 0, recordsReplayed: 0)
    }

    /// Rebuilds the queues from the checkpoint and the log records after its ack level.
    ///
    /// Every task record from the ack level on that no acks record, retry, purge or dead
    /// letter supersedes is restored: to the queue's on-disk backlog (read back on the first
    /// poll, in record order within each priority), to the retry schedule, or to the dead-letter
    /// queue. Tasks in flight at the crash are pending again (at-least-once).
    ///
    /// A checkpoint whose ack level is not trusted (`trustingAckLevel` false: the assessment
    /// found it damaged) is replaced by a replay of the whole log, keeping only its queues'
    /// control state when it decodes (the control records after it still apply on top, in order);
    /// the warning goes to the configuration's logger and to ``recoveryReport``.
    func recover(from checkpoint: StoreCheckpoint?, trustingAckLevel: Bool = true,
                 assessment: StoreCheckpointAssessment? = nil) throws(QueueError) {
        let end = log.endOffset
        var report = TaskStoreRecoveryReport(ignoredCheckpoint: nil, movedCheckpoint: nil, replayedFrom: 0, recordsReplayed: 0)
        if let assessment, let damage = assessment.damage {
            report.ignoredCheckpoint = "the checkpoint \(damage)"
            if assessment.isDirectory && !configuration.isReadOnly { report.movedCheckpoint = AtomicFile.moveAside(assessment.path, in: directory, syscalls: configuration.log.syscalls) }
            var metadata: Logger.Metadata = ["path": "\(assessment.path)", "reason": "\(damage)"]
            if let moved = report.movedCheckpoint { metadata["movedTo"] = "\(moved)" }
            configuration.logger.warning("ignoring the task store's damaged checkpoint; rebuilding the queues from the whole log", metadata: metadata)
        }
        var start = max(trustingAckLevel ? checkpoint?.ackLevel ?? 0 : 0, log.startOffset)
        defer {
            report.replayedFrom = start
            report.recordsReplayed = replayedRecords.load(ordering: .relaxed)
            recoveryState.withLock { $0 = report }
        }
        if start > end {
            // The checkpoint is ahead of a log that lost its unsynced tail (a power loss under
            // `.interval` or `.none`): new records will reuse those offsets, so the checkpoint
            // must not keep claiming they are acknowledged.
            start = end
            if !configuration.isReadOnly {
                try StoreCheckpoint(ackLevel: end, controls: checkpoint?.controls ?? [:]).write(directory: directory, syscalls: configuration.log.syscalls)
            }
        }
        var queues = RestoredQueues()
        for (key, control) in checkpoint?.controls ?? [:] {
            let id = queues.id(of: key)
            queues.restored[id].control = control
            queues.restored[id].controlled = true
        }
        var acked = AckBitmap(start: start, end: end)
        let now = clock.now().nanoseconds
        let maximumDelay = UInt64(configuration.retryMaximumInterval.nanoseconds)
        let path = log.directory
        func corrupt(_ offset: UInt64, _ what: String) -> QueueError {
            QueueError(.corruptRecord, "the record at offset \(offset) \(what); the queue log was written by something else or is damaged",
                       taskID: offset, path: path)
        }
        var replayed = 0
        defer { replayedRecords.add(replayed, ordering: .relaxed) }
        do {
            // Each record is read where it lies (no copy); a queue's name is hashed only when it
            // differs from the previous record's.
            try log.scan(from: start, releasingPagesBehind: true) { (offset, record) throws(QueueError) in
                replayed += 1
                switch record.first.flatMap(RecordType.init(rawValue:)) {
                case .task:
                    guard let task = TaskRecordHead(record) else { throw corrupt(offset, "is not a valid task record") }
                    if let replaced = task.replaces { acked.set(replaced) }
                    let id = queues.id(kind: task.kind, name: task.name)
                    if task.isDeadLetter {
                        queues.restored[id].dead.append((offset, task.priority))
                    } else if let notBefore = task.notBefore, notBefore > now {
                        // Clock instants do not survive a reboot; never wait longer than one maximum backoff.
                        queues.restored[id].delayed.append((offset, min(notBefore, now &+ maximumDelay), task.priority))
                    } else {
                        queues.lanes[5 * id + task.priority - 1].append(offset)
                    }
                case .acks:
                    guard AcksRecord.forEachID(in: record, { acked.set($0) }) else { throw corrupt(offset, "is not a valid acks record") }
                case .control:
                    guard let control = ControlRecord(decoding: Array(record)) else { throw corrupt(offset, "is not a valid control record") }
                    let id = queues.id(of: QueueKey(name: control.queue, kind: control.kind))
                    switch control.operation {
                    case .pause: queues.restored[id].control.paused = true
                    case .resume: queues.restored[id].control.paused = false
                    case .setRateLimit(let limit): queues.restored[id].control.rateLimit = limit
                    case .purge(let inFlight, let deadLetters):
                        queues.restored[id].purge(below: offset, keeping: Set(inFlight), deadLetters: deadLetters,
                                                  lanes: &queues.lanes[5 * id..<5 * id + 5])
                    }
                    queues.restored[id].controlled = true
                case nil:
                    throw corrupt(offset, "has an unknown type")
                }
            }
        } catch {
            switch error {
            case .log(let failure): throw .log(failure, "cannot replay the queue log")
            case .body(let failure): throw failure
            }
        }

        // Every restored task's id is counted in the ledger's buckets in one pass at the end,
        // not one locked update per task.
        var live = LiveBuckets(start: start, end: end, shift: configuration.ackBucketShift)
        let anyAcked = !acked.isEmpty
        var controlStates: [QueueKey: QueueControlState] = [:]
        for id in queues.restored.indices {
            let key = queues.keys[id]
            let restored = queues.restored[id]
            queues.restored[id] = RestoredQueue()
            let state = try queueState(key.name, kind: key.kind, recorded: true)
            if restored.controlled && !restored.control.isDefault {
                controlStates[key] = restored.control
                if restored.control.paused { state.matching.pause() }
                if let limit = restored.control.rateLimit { try? state.matching.setRateLimit(limit) }
            }
            var cold = ColdBacklog()
            for p in 0..<5 {
                // The lane becomes the queue's cold backlog as it is, filtered in place.
                var lane = queues.lanes[5 * id + p]
                queues.lanes[5 * id + p] = []
                if anyAcked { lane.removeAll { acked.contains($0) } }
                for offset in lane { live.add(offset) }
                cold.count += lane.count
                cold.lanes[p] = lane
            }
            let delayed = restored.delayed.filter { !acked.contains($0.id) }
            let dead = restored.dead.filter { !acked.contains($0.id) }
            if !delayed.isEmpty || !dead.isEmpty {
                ledger.withLock { ledger in
                    for entry in delayed {
                        live.add(entry.id)
                        ledger.insertDelayed(entry.id, DelayedEntry(queue: state, priority: UInt8(entry.priority), due: entry.due))
                    }
                    for entry in dead {
                        live.add(entry.id)
                        ledger.dead[entry.id] = DeadEntry(queue: state, priority: UInt8(entry.priority))
                    }
                    nextDue.store(ledger.nextDue, ordering: .relaxed)
                }
            }
            state.state.withLock { backlog in
                backlog.paused = restored.control.paused
                backlog.cold = cold.count > 0 ? cold : nil
                backlog.delayed = delayed.count
                backlog.deadLetters = dead.count
            }
        }
        ledger.withLock { ledger in live.forEachBucket { offset, count in ledger.retain(offset, count: count) } }
        controls.withLock { $0 = controlStates }
    }
}
