#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching

/// The control state of one queue that differs from the default (paused, or rate limited).
struct QueueControlState: Equatable {
    var paused = false
    var rateLimit: RateLimit?

    var isDefault: Bool { !paused && rateLimit == nil }
}

/// Identifies a queue: its name and kind.
struct QueueKey: Hashable, Sendable {
    var name: String
    var kind: TaskQueueKind
}

/// The small file `checkpoint` beside the queue log: the ack level (every task record below
/// it is acknowledged, so reopen replays from there and the segments below it may be deleted)
/// and the control state of every paused or rate-limited queue as of that point.
///
/// Layout (little-endian): magic `SQCP`, version 1, 3 zero bytes, ack level u64, entry count
/// u32, entries (kind u8, paused u8, has-rate u8, 0 u8, rate f64, burst u64, name length u32,
/// name), CRC32C u32 of everything before it. Replaced through `AtomicFile` (`checkpoint.tmp`,
/// fsync, rename over `checkpoint`, directory fsync): a reader sees the old or the new file, whole.
struct StoreCheckpoint: Equatable {
    static let fileName = DataDirectory.checkpointName
    static let magic: UInt32 = 0x5043_5153  // "SQCP"

    var ackLevel: UInt64
    var controls: [QueueKey: QueueControlState]

    func encoded() -> [UInt8] {
        var writer = BinaryWriter(capacity: 64 + controls.count * 40)
        writer.fixed32(Self.magic)
        writer.byte(1); writer.byte(0); writer.byte(0); writer.byte(0)
        writer.fixed64(ackLevel)
        writer.fixed32(UInt32(controls.count))
        for (key, state) in controls.sorted(by: { ($0.key.name, $0.key.kind.rawValue) < ($1.key.name, $1.key.kind.rawValue) }) {
            writer.byte(key.kind.rawValue)
            writer.byte(state.paused ? 1 : 0)
            writer.byte(state.rateLimit == nil ? 0 : 1)
            writer.byte(0)
            writer.fixed64(state.rateLimit?.perSecond.bitPattern ?? 0)
            writer.fixed64(UInt64(state.rateLimit?.burst ?? 0))
            writer.fixed32PrefixedString(key.name)
        }
        writer.fixed32(writer.withUnsafeBytes { CRC32C.checksum($0) })
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) -> StoreCheckpoint? {
        guard bytes.count >= 24 else { return nil }
        let body = Array(bytes[0..<bytes.count - 4])
        var tail = BinaryReader<QueueError>(Array(bytes[(bytes.count - 4)...]), context: "checkpoint")
        guard (try? tail.fixed32()) == CRC32C.checksum(body) else { return nil }
        var reader = BinaryReader<QueueError>(body, context: "checkpoint")
        do throws(QueueError) {
            guard try reader.fixed32() == magic, try reader.byte() == 1 else { return nil }
            try reader.skip(3)
            let ackLevel = try reader.fixed64()
            let count = try reader.fixed32()
            var controls: [QueueKey: QueueControlState] = [:]
            for _ in 0..<count {
                guard let kind = TaskQueueKind(rawValue: try reader.byte()) else { return nil }
                let paused = try reader.byte()
                let hasRate = try reader.byte()
                try reader.skip(1)
                let rate = try reader.fixed64()
                let burst = try reader.fixed64()
                let name = try reader.fixed32PrefixedString()
                var state = QueueControlState(paused: paused == 1)
                if hasRate == 1 { state.rateLimit = RateLimit(perSecond: Double(bitPattern: rate), burst: Int(clamping: burst)) }
                controls[QueueKey(name: name, kind: kind)] = state
            }
            guard reader.position == body.count else { return nil }
            return StoreCheckpoint(ackLevel: ackLevel, controls: controls)
        } catch {
            return nil
        }
    }

    /// Reads `directory/checkpoint`; nil when there is none (a new store).
    /// - Throws: ``QueueError/Code/corruptRecord`` when the file does not decode.
    static func read(directory: String, syscalls: any Syscalls) throws(QueueError) -> StoreCheckpoint? {
        let path = directory + "/" + fileName
        let fd: Int32
        do {
            fd = try syscalls.open(path, flags: O_RDONLY, mode: 0)
        } catch {
            if error.errno == ENOENT { return nil }
            throw QueueError(.log, "cannot open the checkpoint", path: path, underlying: error)
        }
        defer { syscalls.close(fd) }
        var bytes: [UInt8] = []
        do {
            let size = Int(try syscalls.fileSize(fd))
            guard size <= 256 << 20 else { throw QueueError(.corruptRecord, "the checkpoint file is \(size) bytes; not a Spool checkpoint", path: path) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 8)
            defer { buffer.deallocate() }
            var done = 0
            while done < size {
                let n = try syscalls.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<size]), at: Int64(done))
                if n <= 0 { break }
                done += n
            }
            bytes = Array(buffer[0..<done])
        } catch let error as QueueError {
            throw error
        } catch {
            throw QueueError(.log, "cannot read the checkpoint", path: path, underlying: error as? SystemError)
        }
        guard let checkpoint = decode(bytes) else {
            throw QueueError(.corruptRecord, "the checkpoint file does not decode (bad magic, version or checksum)", path: path)
        }
        return checkpoint
    }

    /// Atomically replaces `directory/checkpoint` (see `AtomicFile`: temporary file, fsync, rename,
    /// directory fsync).
    /// - Throws: ``QueueError/Code/log`` "cannot write the checkpoint", with the system call's error.
    func write(directory: String, syscalls: any Syscalls) throws(QueueError) {
        do {
            try AtomicFile.replace(Self.fileName, in: directory, with: encoded(), syscalls: syscalls)
        } catch {
            throw QueueError(.log, "cannot write the checkpoint", path: directory + "/" + Self.fileName, underlying: error.underlying)
        }
    }
}

/// What a task store's checkpoint file is worth against its log: the one judgement that
/// ``TaskStore/open(directory:configuration:clock:)`` acts on and `spool recover --mode check`
/// reports, so that check and open agree.
///
/// A checkpoint is *damaged* when it cannot be read (a directory, no permission), does not
/// decode (magic, version, length, CRC32C), or contradicts the log: an ack level beyond the
/// log's end after a clean shutdown, or under `.sync` durability, is impossible (every ack
/// level is at most the end of what was acknowledged, and under `.sync` that is on disk). A
/// damaged checkpoint is never trusted: open replays the whole log instead, which loses no task
/// (it may deliver again tasks whose completion only the checkpoint recorded). Only after an
/// unclean shutdown under `.none` or `.interval` can an ack level beyond the end be a power loss
/// that cut the log's unsynced tail; then open resumes at the log's end.
package struct StoreCheckpointAssessment: Sendable, Equatable {
    /// The checkpoint's path.
    package var path: String
    /// Whether a file (or anything) is at the path.
    package var present: Bool
    /// The ack level of a checkpoint that decodes (used or not).
    package var ackLevel: UInt64?
    /// Why the checkpoint is not used, when it is damaged; nil when it is used or absent.
    package var damage: String?
    /// Whether the queues' pause and rate-limit state was read from it (it decodes): when it
    /// does not, a rebuild knows only the control records the log still holds.
    package var controlsReadable: Bool
    /// Whether a directory is at the path (a rebuilt checkpoint cannot be renamed over it).
    package var isDirectory: Bool
    /// An ack level beyond the log's end after an unclean shutdown, where a power loss may
    /// explain it: open resumes at the log's end.
    package var aheadOfTruncatedLog: Bool

    /// What open does, for operators.
    package var consequence: String {
        if let damage {
            return "the checkpoint \(damage); the next open ignores it"
                + (isDirectory ? " (moving the directory to checkpoint.damaged)" : "")
                + " and rebuilds the queues from the whole log (no task lost; "
                + "tasks whose completion only the checkpoint recorded may be delivered again"
                + (controlsReadable ? "" : "; pauses and rate limits older than the log's first segment are lost") + ")"
        }
        if aheadOfTruncatedLog {
            return "the checkpoint's ack level \(ackLevel ?? 0) is beyond the log's end after an unclean shutdown: a power loss under "
                + "durability none/interval cut the log's unsynced tail, or the checkpoint is damaged; the next open resumes at the "
                + "log's end under none/interval, and rebuilds from the whole log under sync"
        }
        return present ? "the checkpoint is consistent with the log (ack level \(ackLevel ?? 0))" : "no checkpoint (the whole log is replayed)"
    }
}

extension StoreCheckpoint {
    /// Reads and judges the checkpoint in `directory` against a log holding offsets
    /// ending at `logEnd` (see ``StoreCheckpointAssessment``); `aheadMayBePowerLoss` is whether
    /// an ack level beyond the end may be a power loss (an unclean shutdown under `.none` or
    /// `.interval`). Never throws: whatever is wrong with the file is the assessment's `damage`.
    static func assess(directory: String, syscalls: any Syscalls, logEnd: UInt64,
                       aheadMayBePowerLoss: Bool) -> (StoreCheckpoint?, StoreCheckpointAssessment) {
        let path = directory + "/" + fileName
        var assessment = StoreCheckpointAssessment(path: path, present: false, ackLevel: nil, damage: nil, controlsReadable: false,
                                                   isDirectory: false, aheadOfTruncatedLog: false)
        var info = stat()
        if stat(path, &info) == 0 {
            assessment.present = true
            assessment.isDirectory = info.st_mode & S_IFMT == S_IFDIR
        } else if errno != ENOENT {
            assessment.present = true
        }
        guard !assessment.isDirectory else {
            assessment.damage = "is a directory, not a file"
            return (nil, assessment)
        }
        let checkpoint: StoreCheckpoint?
        do {
            checkpoint = try read(directory: directory, syscalls: syscalls)
        } catch {
            assessment.damage = error.code == .corruptRecord ? "does not decode (bad magic, version, length or checksum)"
                : "cannot be read (\(error.underlying.map { "\($0)" } ?? error.message))"
            return (nil, assessment)
        }
        guard let checkpoint else { return (nil, assessment) }
        assessment.ackLevel = checkpoint.ackLevel
        assessment.controlsReadable = true
        if checkpoint.ackLevel > logEnd {
            if aheadMayBePowerLoss {
                assessment.aheadOfTruncatedLog = true
            } else {
                assessment.damage = "has ack level \(checkpoint.ackLevel), beyond the log's end \(logEnd)"
            }
        }
        return (checkpoint, assessment)
    }
}

extension TaskStore {
    /// Judges the checkpoint of the stopped task store in `directory` against its log, as the
    /// next open will (for `spool recover --mode check`). Reads only.
    /// - Parameters:
    ///   - logEnd: the offset after the log's last intact record.
    ///   - logClosedCleanly: whether the log has its clean-shutdown marker.
    package static func assessCheckpoint(directory: String, logEnd: UInt64, logClosedCleanly: Bool) -> StoreCheckpointAssessment {
        StoreCheckpoint.assess(directory: DataDirectory.StoreDirectory(directory).path, syscalls: SystemCalls(), logEnd: logEnd,
                               aheadMayBePowerLoss: !logClosedCleanly).1
    }
}
