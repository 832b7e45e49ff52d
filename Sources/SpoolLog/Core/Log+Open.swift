#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives

extension Log {
    /// The lock file every ``Log`` holds with `flock` while the directory is open (the tests'
    /// name for ``DataDirectory/lockFileName``).
    static var lockFileName: String { DataDirectory.lockFileName }

    /// Opens the log in `directory`, creating the directory (mode 0700) and a first segment when
    /// they do not exist. Opening is recovery:
    ///
    /// - After a clean ``close()`` (a valid `clean-shutdown` marker) nothing is scanned but the last
    ///   segment's final batches, from its last index entry: they have to end at the length and next
    ///   offset the marker recorded, or open throws ``LogError/Code/corruptBatch`` naming the offsets
    ///   gone (an older copy of the segment put back). Bytes that are not zeros after that length
    ///   (data the marker does not know) make open ignore the marker and scan.
    /// - Otherwise every batch from the last recovery point (the start of the segment that was
    ///   active at the last roll) to the end is verified; a torn tail — a partial or
    ///   checksum-failing batch with no valid batch after it — is cut from the last segment;
    ///   indexes that are missing or do not match their segment are rebuilt.
    /// - A damaged batch anywhere else is not repaired: open throws ``LogError/Code/corruptBatch``
    ///   naming the file and byte position (`spool recover` decides what to do with it).
    /// - A segment shorter than `log-manifest` records — a sealed one's length, or, after an unclean
    ///   stop, the active one's durable extent (no record beyond it was acknowledged, and a crash
    ///   cannot shorten the file below it) — is refused before anything is changed:
    ///   ``LogError/Code/segmentShortened``, naming the file, the recorded and the actual length.
    /// - An interrupted segment swap (``compact(below:keeping:)``) is rolled forward or back.
    ///
    /// Cost: a clean open reads only the directory listing, the marker, the indexes and at most an
    /// index interval and one batch of the last segment; an
    /// unclean one verifies the checksum of every byte after the recovery point (GB/s with SSE4.2).
    ///
    /// - Throws: ``LogError/Code/invalidConfiguration``, ``LogError/Code/directoryLocked`` when another
    ///   ``Log`` holds the directory (after retrying for 100 ms), ``LogError/Code/notALogDirectory``, ``LogError/Code/corruptBatch``,
    ///   ``LogError/Code/missingSegment``, ``LogError/Code/segmentShortened``, ``LogError/Code/segmentReplaced``,
    ///   ``LogError/Code/io``.
    public static func open(directory: String, configuration: LogConfiguration = LogConfiguration()) throws(LogError) -> Log {
        try configuration.validate()
        let syscalls = configuration.syscalls
        guard !directory.isEmpty else { throw LogError(.invalidArgument, "the log directory path is empty") }
        if configuration.access == .readOnly { return try openReadOnly(directory: directory, configuration: configuration) }
        // A directory created here is durable: its parent is fsynced.
        if !(try DataDirectory.createDirectory(directory, syscalls: syscalls)) {
            try LogOpener.checkIsLogDirectory(directory, syscalls: syscalls)
        }
        let lockPath = DataDirectory.lockFile(ofLog: directory)
        let lockFD: Int32
        do {
            lockFD = try syscalls.open(lockPath, flags: O_RDWR | O_CREAT, mode: 0o600)
        } catch {
            throw .io(error, error.errno == ENOTDIR ? "is not a directory" : "cannot open the lock file", path: lockPath)
        }
        do {
            guard try Self.lockWithGrace(lockFD, syscalls: syscalls) else {
                syscalls.close(lockFD)
                throw LogError(.directoryLocked, "the log is open in another process (or another Log in this one); close it first",
                               path: directory)
            }
        } catch let error as SystemError {
            syscalls.close(lockFD)
            throw .io(error, "cannot lock the directory", path: lockPath)
        } catch let error as LogError {
            throw error
        } catch {
            syscalls.close(lockFD)
            throw LogError(.io, "cannot lock the directory", path: lockPath)
        }
        return try finishOpening(directory: directory, configuration: configuration, lockFD: lockFD)
    }

    /// ``open(directory:configuration:)`` with ``LogAccess/readOnly``: no write of any kind; a shared
    /// lock when the lock file can be opened.
    private static func openReadOnly(directory: String, configuration: LogConfiguration) throws(LogError) -> Log {
        let syscalls = configuration.syscalls
        var info = stat()
        if stat(directory, &info) != 0 {
            let code = errno
            if code == ENOENT { throw LogError(.logDirectoryMissing, "does not exist (a read-only open creates nothing)", path: directory) }
            throw .io(SystemError(call: "stat", errno: code, path: directory), "cannot read the directory", path: directory)
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw LogError(.notALogDirectory, "is not a directory", path: directory) }
        try LogOpener.checkIsLogDirectory(directory, syscalls: syscalls)
        let lockPath = directory + "/" + lockFileName
        var lockFD: Int32 = -1
        do {
            lockFD = try syscalls.open(lockPath, flags: O_RDONLY | O_CLOEXEC, mode: 0)
        } catch {
            // No lock file (a copied store) or one this user cannot open: a reader goes without the lock.
            if error.errno != ENOENT && error.errno != EACCES && error.errno != EPERM {
                throw .io(error, "cannot open the lock file", path: lockPath)
            }
        }
        if lockFD >= 0 {
            let deadline = monotonicNanoseconds() + lockGraceNanoseconds
            while fileLock(lockFD, LOCK_SH | LOCK_NB) != 0 {
                let code = errno
                if code == EINTR { continue }
                // As for a writer: a lock a spawning child holds for a moment is waited out.
                if code == EWOULDBLOCK && monotonicNanoseconds() < deadline {
                    usleep(2_000)
                    continue
                }
                syscalls.close(lockFD)
                if code == EWOULDBLOCK {
                    throw LogError(.directoryLocked, "the log is open for writing in another process (or another Log in this one); "
                                   + "close it first, or read it through that owner", path: directory)
                }
                throw .io(SystemError(call: "flock", errno: code, path: lockPath), "cannot lock the directory", path: lockPath)
            }
        }
        return try finishOpening(directory: directory, configuration: configuration, lockFD: lockFD)
    }

    /// Recovery and the ``Log`` itself, once the lock is held (`lockFD` is -1 for a reader without one).
    private static func finishOpening(directory: String, configuration: LogConfiguration, lockFD: Int32) throws(LogError) -> Log {
        let syscalls = configuration.syscalls
        let log: Log
        let nextOffset: UInt64
        do {
            var opener = LogOpener(directory: directory, configuration: configuration)
            let segments: [Segment]
            (segments, nextOffset) = try opener.run()
            log = Log(directory: directory, configuration: configuration, lockFD: lockFD, segments: segments,
                      nextOffset: nextOffset, recovery: opener.report, manifestGaps: opener.manifest?.gaps ?? [])
        } catch {
            if lockFD >= 0 { syscalls.close(lockFD) }
            throw error
        }
        guard configuration.access == .readWrite else { return log }
        do {
            try log.currentSegment.openSyncDescriptors(log.syncDescriptorCount)
            // Before the writer exists: the roll is the only thing touching the segments.
            if configuration.sealsActiveSegmentAtOpen && log.currentSegment.writePosition > 0 {
                _ = try log.roll(to: nextOffset)
            }
        } catch {
            // The log owns the lock now: abandoning it releases the lock once, and its deinit
            // then does nothing (a close here would write markers for a log that failed).
            log.abandon()
            throw error
        }
        log.startThreads()
        return log
    }
}

extension Log {
    /// How long an opener retries a lock held by someone else before it reports `directoryLocked`.
    static let lockGraceNanoseconds: UInt64 = 100_000_000

    /// Takes the directory's exclusive `flock`, retrying for ``lockGraceNanoseconds``.
    ///
    /// The grace covers a lock that only looks held: `posix_spawn` (and `fork`) give the child a
    /// copy of every descriptor until it execs, the lock file's included (`O_CLOEXEC` closes it
    /// only at the exec), so a process that closes a log and reopens it while another thread is
    /// spawning a program can find its own lock held for that moment. A log really open
    /// elsewhere still fails, 100 ms later.
    static func lockWithGrace(_ fd: Int32, syscalls: any Syscalls) throws(SystemError) -> Bool {
        let deadline = monotonicNanoseconds() + lockGraceNanoseconds
        while true {
            if try syscalls.tryLock(fd) { return true }
            if monotonicNanoseconds() >= deadline { return false }
            usleep(2_000)
        }
    }
}
