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
/// name), CRC32C u32 of everything before it. Written to `checkpoint.tmp`, fsynced, renamed
/// over `checkpoint`, and the directory fsynced: a reader sees the old or the new file, whole.
struct StoreCheckpoint: Equatable {
    static let fileName = DataDirectory.checkpointName
    static let magic: UInt32 = 0x5043_5153  // "SQCP"

    var ackLevel: UInt64
    var controls: [QueueKey: QueueControlState]

    func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + controls.count * 40)
        writer.u32(Self.magic)
        writer.u8(1); writer.u8(0); writer.u8(0); writer.u8(0)
        writer.u64(ackLevel)
        writer.u32(UInt32(controls.count))
        for (key, state) in controls.sorted(by: { ($0.key.name, $0.key.kind.rawValue) < ($1.key.name, $1.key.kind.rawValue) }) {
            writer.u8(key.kind.rawValue)
            writer.u8(state.paused ? 1 : 0)
            writer.u8(state.rateLimit == nil ? 0 : 1)
            writer.u8(0)
            writer.u64(state.rateLimit?.perSecond.bitPattern ?? 0)
            writer.u64(UInt64(state.rateLimit?.burst ?? 0))
            writer.string32(key.name)
        }
        writer.u32(CRC32C.checksum(writer.buffer))
        return writer.buffer
    }

    static func decode(_ bytes: [UInt8]) -> StoreCheckpoint? {
        guard bytes.count >= 24 else { return nil }
        let body = Array(bytes[0..<bytes.count - 4])
        var tail = ByteReader(Array(bytes[(bytes.count - 4)...]))
        guard tail.u32() == CRC32C.checksum(body) else { return nil }
        var reader = ByteReader(body)
        guard reader.u32() == magic, reader.u8() == 1, reader.skip(3), let ackLevel = reader.u64(), let count = reader.u32() else { return nil }
        var controls: [QueueKey: QueueControlState] = [:]
        for _ in 0..<count {
            guard let kindByte = reader.u8(), let kind = TaskQueueKind(rawValue: kindByte), let paused = reader.u8(),
                  let hasRate = reader.u8(), reader.skip(1), let rate = reader.u64(), let burst = reader.u64(),
                  let name = reader.string32() else { return nil }
            var state = QueueControlState(paused: paused == 1)
            if hasRate == 1 { state.rateLimit = RateLimit(perSecond: Double(bitPattern: rate), burst: Int(clamping: burst)) }
            controls[QueueKey(name: name, kind: kind)] = state
        }
        guard reader.position == body.count else { return nil }
        return StoreCheckpoint(ackLevel: ackLevel, controls: controls)
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

    /// Atomically replaces `directory/checkpoint` (temporary file, fsync, rename, directory fsync).
    func write(directory: String, syscalls: any Syscalls) throws(QueueError) {
        let path = directory + "/" + Self.fileName
        let temporary = path + ".tmp"
        let bytes = encoded()
        do throws(SystemError) {
            let fd = try syscalls.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
            defer { syscalls.close(fd) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
            defer { buffer.deallocate() }
            buffer.copyBytes(from: bytes)
            var done = 0
            while done < bytes.count {
                let n = try syscalls.pwrite(fd, UnsafeRawBufferPointer(rebasing: buffer[done...]), at: Int64(done))
                if n <= 0 { throw SystemError(call: "pwrite", errno: EIO, path: temporary) }
                done += n
            }
            try syscalls.fsync(fd)
            try syscalls.rename(temporary, to: path)
            try syncDirectory(directory, syscalls: syscalls)
        } catch {
            throw QueueError(.log, "cannot write the checkpoint", path: path, underlying: error)
        }
    }
}

/// fsyncs a directory so that the names created, renamed or removed in it are durable.
func syncDirectory(_ path: String, syscalls: any Syscalls) throws(SystemError) {
    let fd = try syscalls.open(path, flags: O_RDONLY | O_DIRECTORY, mode: 0)
    defer { syscalls.close(fd) }
    try syscalls.fsync(fd)
}
