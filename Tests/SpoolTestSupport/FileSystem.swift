#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting

/// A fresh directory under /tmp, removed with everything in it when released.
///
/// Removed without `system("rm -rf")`: a forked child holds copies of every descriptor of the
/// process until it execs, the `flock`ed lock files of logs that other tests are closing and
/// reopening included, and those reopens would then find their directory locked.
public final class TemporaryDirectory: @unchecked Sendable {
    /// The directory.
    public let path: String

    /// Creates `/tmp/<name>-XXXXXX`.
    public init(_ name: String = "spool-test") {
        var template = Array("/tmp/\(name)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }

    deinit { removeTree(path) }
}

/// Deletes `path` and everything under it, without forking.
public func removeTree(_ path: String) { TestFiles.remove(path) }

/// The names in a directory, sorted, without `.` and `..` (empty when it cannot be read).
public func directoryEntries(_ path: String) -> [String] { TestFiles.entries(of: path) }

/// The bytes of the file at `path`; empty when it cannot be opened.
public func readFile(_ path: String) -> [UInt8] { TestFiles.read(path) }

/// Every file below `path` with its bytes, by path relative to it ("log/00….log").
public func fileTree(_ path: String) -> [String: [UInt8]] {
    var result: [String: [UInt8]] = [:]
    for name in directoryEntries(path) {
        let child = path + "/" + name
        var info = stat()
        guard lstat(child, &info) == 0 else { continue }
        if info.st_mode & S_IFMT == S_IFDIR {
            for (relative, bytes) in fileTree(child) { result[name + "/" + relative] = bytes }
        } else {
            result[name] = readFile(child)
        }
    }
    return result
}

/// Every entry below `path` (directories too) with its inode, modification time and, for a
/// file, its bytes: equal stamps mean nothing was created, deleted, changed, or even rewritten
/// with the same bytes (a checkpoint or marker replaced atomically gets a new inode).
public func fileStamps(_ path: String) -> [String: [Int]] {
    var result: [String: [Int]] = [:]
    for name in directoryEntries(path) {
        let child = path + "/" + name
        var info = stat()
        guard lstat(child, &info) == 0 else { continue }
        let stamp = [Int(info.st_ino), info.st_mtim.tv_sec, info.st_mtim.tv_nsec]
        if info.st_mode & S_IFMT == S_IFDIR {
            result[name + "/"] = stamp
            for (relative, value) in fileStamps(child) { result[name + "/" + relative] = value }
        } else {
            result[name] = stamp + readFile(child).map(Int.init)
        }
    }
    return result
}

/// Copies a stopped store's directory into `destination`, every file but its logs' `lock` files
/// (a copy must not look locked, and a lock's content means nothing).
public func copyTree(_ source: String, to destination: String) {
    mkdir(destination, 0o700)
    for (relative, bytes) in fileTree(source) where relative.split(separator: "/").last != "lock" {
        var directory = destination
        for part in relative.split(separator: "/").dropLast() {
            directory += "/" + part
            mkdir(directory, 0o700)
        }
        let fd = open(destination + "/" + relative, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        bytes.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
