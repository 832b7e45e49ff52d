#if canImport(Glibc)
import Glibc
#endif
import SpoolLog

extension PowerLossSyscalls {
    // Files, read and written directly (bypassing the layers below), for snapshots and power loss.

    /// `path` with its directory resolved (symbolic links, `.`/`..`, relative to the working
    /// directory) and no trailing or doubled slashes, so that one file has one key.
    static func normalize(_ path: String) -> String {
        var parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard let last = parts.popLast() else { return "/" }
        let parentText = (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
        let parent = parentText.isEmpty ? "." : parentText
        guard let resolved = Glibc.realpath(parent, nil) else { return (parent == "/" ? "" : parent) + "/" + last }
        defer { free(resolved) }
        let directory = String(cString: resolved)
        if last == "." { return directory }
        return (directory == "/" ? "" : directory) + "/" + last
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The whole content of the file open as `fd`, read through `/proc/self/fd` (the descriptor
    /// itself may be write-only).
    static func readFile(descriptor fd: Int32) -> [UInt8]? {
        readFile(path: "/proc/self/fd/\(fd)")
    }

    static func readFile(path: String) -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var info = stat()
        guard Glibc.fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { break }
            done += n
        }
        return Array(bytes.prefix(done))
    }

    static func writeFile(path: String, _ bytes: [UInt8]) {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { Glibc.close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { break }
            done += n
        }
    }

    /// Removes a file, or a directory and everything in it.
    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            if let directory = opendir(path) {
                var names: [String] = []
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                    if name != "." && name != ".." { names.append(name) }
                }
                closedir(directory)
                for name in names { removeTree(path + "/" + name) }
            }
            rmdir(path)
        } else {
            Glibc.unlink(path)
        }
    }
}
