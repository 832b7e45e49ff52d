#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives

/// Every system call the log makes on its files goes through this layer.
///
/// The real implementation (``SystemCalls``) retries `EINTR` and turns `errno` into a
/// ``SystemError``. Tests substitute a ``FaultInjectingSyscalls`` to fail chosen calls
/// (short writes, `ENOSPC`, `EIO` on write or fsync) or to stop at a chosen step,
/// which is how crash points are simulated in-process.
package protocol Syscalls: Sendable {
    func open(_ path: String, flags: Int32, mode: mode_t) throws(SystemError) -> Int32
    func close(_ fd: Int32)
    /// Writes at most `buffer.count` bytes; may return fewer (a short write).
    func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at position: Int64) throws(SystemError) -> Int
    func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws(SystemError) -> Int
    func fdatasync(_ fd: Int32) throws(SystemError)
    func fsync(_ fd: Int32) throws(SystemError)
    func ftruncate(_ fd: Int32, to size: Int64) throws(SystemError)
    func fileSize(_ fd: Int32) throws(SystemError) -> Int64
    func rename(_ from: String, to: String) throws(SystemError)
    func unlink(_ path: String) throws(SystemError)
    func mkdir(_ path: String, mode: mode_t) throws(SystemError)
    func tryLock(_ fd: Int32) throws(SystemError) -> Bool
    func listDirectory(_ path: String) throws(SystemError) -> [String]
}

extension Syscalls {
    /// Writes all of `buffer`, continuing after short writes.
    func pwriteAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at position: Int64) throws(SystemError) {
        var done = 0
        while done < buffer.count {
            let slice = UnsafeRawBufferPointer(rebasing: buffer[done...])
            let n = try pwrite(fd, slice, at: position + Int64(done))
            if n <= 0 { throw SystemError(call: "pwrite", errno: EIO) }
            done += n
        }
    }

    /// Reads exactly `buffer.count` bytes, or fewer only at end of file; returns the count read.
    func preadFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws(SystemError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = try pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: position + Int64(done))
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes all of `bytes` at `position`.
    func pwriteAll(_ fd: Int32, _ bytes: [UInt8], at position: Int64) throws(SystemError) {
        let result: Result<Void, SystemError> = bytes.withUnsafeBytes { buffer in
            do throws(SystemError) { try pwriteAll(fd, buffer, at: position); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Reads up to `count` bytes at `position` into the start of `bytes` (grown if needed); returns the count read.
    func preadFully(_ fd: Int32, into bytes: inout [UInt8], count: Int, at position: Int64) throws(SystemError) -> Int {
        if bytes.count < count { bytes = [UInt8](repeating: 0, count: count) }
        let result: Result<Int, SystemError> = bytes.withUnsafeMutableBytes { buffer in
            do throws(SystemError) {
                return .success(try preadFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), at: position))
            } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Makes a directory's entries (created, renamed or deleted files) durable: opens it and fsyncs it.
    /// - Throws: the ``SystemError`` of the `open` or the `fsync`.
    package func fsyncDirectory(_ path: String) throws(SystemError) {
        let fd = try open(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC, mode: 0)
        defer { close(fd) }
        try fsync(fd)
    }

    func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}

/// The real system calls.
package struct SystemCalls: Syscalls {
    package init() {}

    @inline(__always)
    private func retrying<T: FixedWidthInteger>(_ call: String, path: String? = nil, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = Glibc.errno
            if code != EINTR { throw SystemError(call: call, errno: code, path: path) }
        }
    }

    package func open(_ path: String, flags: Int32, mode: mode_t) throws(SystemError) -> Int32 {
        try retrying("open", path: path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    package func close(_ fd: Int32) { _ = Glibc.close(fd) }

    package func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at position: Int64) throws(SystemError) -> Int {
        try retrying("pwrite") { Glibc.pwrite(fd, buffer.baseAddress, buffer.count, off_t(position)) }
    }

    package func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws(SystemError) -> Int {
        try retrying("pread") { Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(position)) }
    }

    package func fdatasync(_ fd: Int32) throws(SystemError) {
        // No retry on failure other than EINTR: after a failed fsync the kernel may have
        // dropped the dirty pages, so a second fsync could report success for lost data.
        _ = try retrying("fdatasync") { Glibc.fdatasync(fd) }
    }

    package func fsync(_ fd: Int32) throws(SystemError) {
        _ = try retrying("fsync") { Glibc.fsync(fd) }
    }

    package func ftruncate(_ fd: Int32, to size: Int64) throws(SystemError) {
        _ = try retrying("ftruncate") { Glibc.ftruncate(fd, off_t(size)) }
    }

    package func fileSize(_ fd: Int32) throws(SystemError) -> Int64 {
        var info = stat()
        _ = try retrying("fstat") { Glibc.fstat(fd, &info) }
        return Int64(info.st_size)
    }

    package func rename(_ from: String, to: String) throws(SystemError) {
        _ = try retrying("rename", path: from) { Glibc.rename(from, to) }
    }

    package func unlink(_ path: String) throws(SystemError) {
        _ = try retrying("unlink", path: path) { Glibc.unlink(path) }
    }

    package func mkdir(_ path: String, mode: mode_t) throws(SystemError) {
        _ = try retrying("mkdir", path: path) { Glibc.mkdir(path, mode) }
    }

    package func tryLock(_ fd: Int32) throws(SystemError) -> Bool {
        while true {
            if fileLock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
            let code = Glibc.errno
            if code == EWOULDBLOCK { return false }
            if code != EINTR { throw SystemError(call: "flock", errno: code) }
        }
    }

    package func listDirectory(_ path: String) throws(SystemError) -> [String] {
        guard let dir = opendir(path) else { throw SystemError(call: "opendir", errno: Glibc.errno, path: path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

