#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives

extension LogError.Code {
    /// The log directory does not exist (offline tools never create one).
    public static let logDirectoryMissing = LogError.Code("logDirectoryMissing")
    /// The directory exists but holds no segment (`*.log`) to verify, inspect or repair.
    public static let emptyLogDirectory = LogError.Code("emptyLogDirectory")
}

/// A log directory opened for offline maintenance — ``verify(progress:)``, ``walkSegment(_:decodeRecords:_:)``,
/// ``repair(_:backupDirectory:indexIntervalBytes:progress:)`` — while no ``Log`` has it open.
///
/// Opening never creates, changes or deletes anything in a read-only handle. It takes the directory's
/// `flock` without waiting — shared for reading, exclusive for repairing — so a running ``Log`` (which
/// holds it exclusively) makes it fail with ``LogError/Code/directoryLocked``, and a ``Log`` cannot open
/// the directory while the handle is alive. Call ``close()`` (or drop the handle) to release the lock.
public final class OfflineLog {
    /// The log directory.
    public let directory: String
    /// Whether ``repair(_:backupDirectory:indexIntervalBytes:progress:)`` is allowed (the lock is exclusive).
    public let isWritable: Bool
    let syscalls: any Syscalls
    private var lockFD: Int32

    /// Opens `directory` for offline work.
    ///
    /// - Parameter writable: take the lock exclusively (needed to repair). A read-only handle opens
    ///   `lock` only if it exists and never creates it.
    /// - Throws: ``LogError/Code/logDirectoryMissing``; ``LogError/Code/notALogDirectory`` for a file or a
    ///   directory of foreign files; ``LogError/Code/emptyLogDirectory`` when it holds no segment;
    ///   ``LogError/Code/directoryLocked`` when a ``Log`` (or a writable handle) has it open;
    ///   ``LogError/Code/io``.
    public static func open(directory: String, writable: Bool = false) throws(LogError) -> OfflineLog {
        try open(directory: directory, writable: writable, syscalls: SystemCalls())
    }

    package static func open(directory: String, writable: Bool, syscalls: any Syscalls) throws(LogError) -> OfflineLog {
        guard !directory.isEmpty else { throw LogError(.invalidArgument, "the log directory path is empty") }
        var info = stat()
        if stat(directory, &info) != 0 {
            let code = errno
            if code == ENOENT { throw LogError(.logDirectoryMissing, "does not exist", path: directory) }
            throw .io(SystemError(call: "stat", errno: code, path: directory), "cannot read the directory", path: directory)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw LogError(.notALogDirectory, "is not a directory", path: directory)
        }
        let names: [String]
        do { names = try syscalls.listDirectory(directory) } catch { throw .io(error, "cannot list the directory", path: directory) }
        if !names.contains(where: { Segment.baseOffset(ofLogFile: $0) != nil }) {
            try LogOpener.checkIsLogDirectory(directory, syscalls: syscalls)
            throw LogError(.emptyLogDirectory, names.isEmpty ? "is empty: it holds no log segments"
                           : "holds no log segments (only \(names.sorted().prefix(4).joined(separator: ", ")))", path: directory)
        }
        let lockPath = DataDirectory.lockFile(ofLog: directory)
        var fd: Int32 = -1
        do {
            fd = try syscalls.open(lockPath, flags: writable ? O_RDWR | O_CREAT : O_RDONLY, mode: 0o600)
        } catch {
            // A log that was never opened (a copied backup) has no lock file; reading it needs none.
            if writable || error.errno != ENOENT { throw .io(error, "cannot open the lock file", path: lockPath) }
        }
        if fd >= 0 {
            let operation = (writable ? LOCK_EX : LOCK_SH) | LOCK_NB
            let deadline = monotonicNanoseconds() + Log.lockGraceNanoseconds
            while fileLock(fd, operation) != 0 {
                let code = errno
                if code == EINTR { continue }
                // As Log.open: a lock that a spawning child holds for a moment is waited out.
                if code == EWOULDBLOCK && monotonicNanoseconds() < deadline {
                    usleep(2_000)
                    continue
                }
                syscalls.close(fd)
                if code == EWOULDBLOCK {
                    throw LogError(.directoryLocked, "the log is open by another process (pid unknown); stop it first", path: directory)
                }
                throw .io(SystemError(call: "flock", errno: code, path: lockPath), "cannot lock the directory", path: lockPath)
            }
        }
        return OfflineLog(directory: directory, writable: writable, syscalls: syscalls, lockFD: fd)
    }

    private init(directory: String, writable: Bool, syscalls: any Syscalls, lockFD: Int32) {
        self.directory = directory
        self.isWritable = writable
        self.syscalls = syscalls
        self.lockFD = lockFD
    }

    deinit { close() }

    /// Releases the lock; the handle must not be used afterwards.
    public func close() {
        if lockFD >= 0 {
            syscalls.close(lockFD)
            lockFD = -1
        }
    }

    /// What the directory holds, without reading any segment.
    /// - Throws: ``LogError/Code/io`` when the directory cannot be listed.
    public func listing() throws(LogError) -> LogDirectoryListing {
        let names: [String]
        do { names = try syscalls.listDirectory(directory) } catch { throw .io(error, "cannot list the directory", path: directory) }
        var listing = LogDirectoryListing(directory: directory)
        let nameSet = Set(names)
        for name in names.sorted() {
            let path = directory + "/" + name
            if let base = Segment.baseOffset(ofLogFile: name) {
                let indexName = Segment.fileName(base, ".index")
                listing.segments.append(SegmentFileInfo(baseOffset: base, path: path, size: Self.size(of: path) ?? 0,
                                                        indexPath: directory + "/" + indexName,
                                                        indexSize: nameSet.contains(indexName) ? Self.size(of: directory + "/" + indexName) : nil))
            } else if name.hasSuffix(".index"), name.utf8.count == 26, let base = UInt64(name.prefix(20)) {
                if !nameSet.contains(Segment.fileName(base, ".log")) { listing.orphanIndexes.append(path) }
            } else if name == DataDirectory.lockFileName || name == CheckpointFile.recoveryPointName || name == CheckpointFile.cleanShutdownName
                        || name == SegmentSwap.manifestName || name == LogManifest.fileName {
                listing.checkpointFiles.append(name)
            } else if name.hasSuffix(".tmp") {
                listing.temporaryFiles.append(path)
            } else if name.hasSuffix(".cleaned") {
                listing.compactionFiles.append(path)
            } else {
                listing.foreignFiles.append(path)
            }
        }
        listing.segments.sort { $0.baseOffset < $1.baseOffset }
        return listing
    }

    static func size(of path: String) -> Int? {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : nil
    }

    /// Maps a whole file read-only (an empty file gives an empty buffer).
    func mapFile(_ path: String) throws(LogError) -> MappedFile {
        let fd: Int32
        do { fd = try syscalls.open(path, flags: O_RDONLY, mode: 0) } catch { throw .io(error, "cannot open", path: path) }
        defer { syscalls.close(fd) }
        let size: Int
        do { size = Int(try syscalls.fileSize(fd)) } catch { throw .io(error, "cannot stat", path: path) }
        do { return try MappedFile(fd: fd, size: size, path: path) } catch {
            throw .io(error, "cannot map the file for reading", path: path)
        }
    }

    /// Walks the batches of one segment file from byte 0, calling `visit` for every batch, every
    /// damaged byte range and the zero-filled tail, in file order. Nothing is written.
    ///
    /// - Parameters:
    ///   - segment: a segment from ``listing()``.
    ///   - decodeRecords: decode the records of every intact batch into ``SegmentBatch/records``.
    /// - Returns: totals for the segment.
    /// - Throws: ``LogError/Code/io`` when the file cannot be read.
    @discardableResult
    public func walkSegment(_ segment: SegmentFileInfo, nextSegmentBase: UInt64? = nil, decodeRecords: Bool = false,
                            _ visit: (SegmentItem) -> Void) throws(LogError) -> SegmentWalkSummary {
        let mapping = try mapFile(segment.path)
        return SegmentWalk.run(mapping.bytes, file: segment.path, baseOffset: segment.baseOffset, nextSegmentBase: nextSegmentBase,
                               decodeRecords: decodeRecords, visit)
    }
}


/// The files of a log directory, sorted by kind.
public struct LogDirectoryListing: Sendable {
    /// The directory.
    public var directory: String
    /// Segments, by base offset.
    public var segments: [SegmentFileInfo] = []
    /// `lock`, `recovery-point`, `clean-shutdown`, `swap-manifest`, `log-manifest`: those present.
    public var checkpointFiles: [String] = []
    /// `*.tmp` leftovers of interrupted atomic writes (the next open deletes them).
    public var temporaryFiles: [String] = []
    /// `*.cleaned` files of a compaction (swapped in or deleted by the next open).
    public var compactionFiles: [String] = []
    /// `.index` files whose segment does not exist.
    public var orphanIndexes: [String] = []
    /// Files that do not belong in a log directory.
    public var foreignFiles: [String] = []

    /// Bytes of all segment files.
    public var segmentBytes: Int { segments.reduce(0) { $0 + $1.size } }
}

/// One segment file as listed.
public struct SegmentFileInfo: Sendable, Equatable {
    /// The offset the file is named after.
    public var baseOffset: UInt64
    /// Path of the `.log` file.
    public var path: String
    /// Size of the `.log` file in bytes (the zero-filled tail included).
    public var size: Int
    /// Path of its `.index` file.
    public var indexPath: String
    /// Size of the `.index` file; `nil` when it is missing.
    public var indexSize: Int?
    /// The file name, `<20 digits>.log`.
    public var name: String { String(path.split(separator: "/").last ?? Substring(path)) }
}
