#if canImport(Glibc)
import Glibc
#endif
import DequeModule
import Logging
import SpoolLog
import SpoolMatching

/// What replaying the log found for one queue.
private struct RestoredQueue {
    var lanes: [Deque<UInt64>] = Array(repeating: [], count: 5)
    var delayed: [(id: UInt64, due: UInt64, priority: Int)] = []
    var dead: [(id: UInt64, priority: Int)] = []
    var control = QueueControlState()
    var controlled = false

    mutating func purge(below offset: UInt64, keeping inFlight: Set<UInt64>, deadLetters: Bool) {
        for p in 0..<5 { lanes[p].removeAll { $0 < offset && !inFlight.contains($0) } }
        delayed.removeAll { $0.id < offset && !inFlight.contains($0.id) }
        if deadLetters { dead.removeAll { $0.id < offset } }
    }
}

/// One bit per log offset in [start, end): set when the task record there was acknowledged.
private struct AckBitmap {
    let start: UInt64
    let end: UInt64
    var words: [UInt64]

    init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = end
        words = Array(repeating: 0, count: Int((end - start + 63) / 64))
    }

    mutating func set(_ offset: UInt64) {
        guard offset >= start && offset < end else { return }
        let bit = offset - start
        words[Int(bit / 64)] |= 1 << (bit % 64)
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
        var queues: [QueueKey: RestoredQueue] = [:]
        for (key, control) in checkpoint?.controls ?? [:] {
            queues[key, default: RestoredQueue()].control = control
            queues[key, default: RestoredQueue()].controlled = true
        }
        var acked = AckBitmap(start: start, end: end)
        let now = clock.now().nanoseconds
        let maximumDelay = UInt64(configuration.retryMaximumInterval.nanoseconds)
        var reader = log.reader(from: start, releasingPagesBehind: true)
        while true {
            let next: LogRecord?
            do { next = try reader.next() } catch { throw .log(error, "cannot replay the queue log") }
            guard let record = next else { break }
            replayedRecords.add(1, ordering: .relaxed)
            func corrupt(_ what: String) -> QueueError {
                QueueError(.corruptRecord, "the record at offset \(record.offset) \(what); the queue log was written by something else or is damaged",
                           taskID: record.offset, path: log.directory)
            }
            switch record.payload.first.flatMap(RecordType.init(rawValue:)) {
            case .task:
                guard let task = TaskRecord(decoding: record.payload, includingPayload: false) else { throw corrupt("is not a valid task record") }
                if let replaced = task.replaces { acked.set(replaced) }
                let key = QueueKey(name: task.queue, kind: task.kind)
                if task.deadLetterReason != nil {
                    queues[key, default: RestoredQueue()].dead.append((record.offset, task.priority))
                } else if let notBefore = task.notBefore, notBefore > now {
                    // Clock instants do not survive a reboot; never wait longer than one maximum backoff.
                    queues[key, default: RestoredQueue()].delayed.append((record.offset, min(notBefore, now &+ maximumDelay), task.priority))
                } else {
                    queues[key, default: RestoredQueue()].lanes[task.priority - 1].append(record.offset)
                }
            case .acks:
                guard let ids = AcksRecord.decode(record.payload) else { throw corrupt("is not a valid acks record") }
                for id in ids { acked.set(id) }
            case .control:
                guard let control = ControlRecord(decoding: record.payload) else { throw corrupt("is not a valid control record") }
                let key = QueueKey(name: control.queue, kind: control.kind)
                var queue = queues[key, default: RestoredQueue()]
                switch control.operation {
                case .pause: queue.control.paused = true
                case .resume: queue.control.paused = false
                case .setRateLimit(let limit): queue.control.rateLimit = limit
                case .purge(let inFlight, let deadLetters):
                    queue.purge(below: record.offset, keeping: Set(inFlight), deadLetters: deadLetters)
                }
                queue.controlled = true
                queues[key] = queue
            case nil:
                throw corrupt("has an unknown type")
            }
        }

        var controlStates: [QueueKey: QueueControlState] = [:]
        for (key, restored) in queues {
            let state = try queueState(key.name, kind: key.kind, recorded: true)
            if restored.controlled && !restored.control.isDefault {
                controlStates[key] = restored.control
                if restored.control.paused { state.matching.pause() }
                if let limit = restored.control.rateLimit { try? state.matching.setRateLimit(limit) }
            }
            var cold = ColdBacklog()
            for p in 0..<5 {
                for id in restored.lanes[p] where !acked.contains(id) { cold.push(id, priority: p + 1) }
            }
            let delayed = restored.delayed.filter { !acked.contains($0.id) }
            let dead = restored.dead.filter { !acked.contains($0.id) }
            ledger.withLock { ledger in
                for lane in cold.lanes { for id in lane { ledger.retain(id) } }
                for entry in delayed {
                    ledger.retain(entry.id)
                    ledger.insertDelayed(entry.id, DelayedEntry(queue: state, priority: UInt8(entry.priority), due: entry.due))
                }
                for entry in dead {
                    ledger.retain(entry.id)
                    ledger.dead[entry.id] = DeadEntry(queue: state, priority: UInt8(entry.priority))
                }
                nextDue.store(ledger.nextDue, ordering: .relaxed)
            }
            state.state.withLock { backlog in
                backlog.paused = restored.control.paused
                backlog.cold = cold.count > 0 ? cold : nil
                backlog.delayed = delayed.count
                backlog.deadLetters = dead.count
            }
        }
        controls.withLock { $0 = controlStates }
    }
}
