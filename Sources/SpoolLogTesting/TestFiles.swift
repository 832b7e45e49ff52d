#if canImport(Glibc)
import Glibc
#endif
import SpoolLog

/// Whole-file and directory-tree helpers of the damage lab and the tests: plain system calls,
/// no Foundation, no forking (a forked child would hold copies of the `flock`ed lock files of
/// logs that tests are reopening).
package enum TestFiles {
    /// Deletes `path` and everything under it (symbolic links are removed, not followed).
    package static func remove(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            for name in entries(of: path) { remove(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// The names in a directory, sorted, without `.` and `..` (empty when it cannot be read).
    package static func entries(of directory: String) -> [String] {
        ((try? SystemCalls().listDirectory(directory)) ?? []).sorted()
    }

    /// The bytes of the file at `path`; empty when it cannot be opened.
    package static func read(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[..<n]
        }
        return bytes
    }

    /// Writes `bytes` to `path` (created 0600 or truncated); stops at the first failed write.
    package static func write(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            done += n
        }
    }
}
