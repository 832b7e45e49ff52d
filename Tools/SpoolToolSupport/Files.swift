#if canImport(Glibc)
import Glibc
#endif
import SpoolLog

/// The names in `directory` (without `.` and `..`), sorted; empty when it cannot be read.
package func directoryNames(_ path: String) -> [String] {
    ((try? SystemCalls().listDirectory(path)) ?? []).sorted()
}

/// Bytes of the regular files directly in `directory` (not in its subdirectories), plus those
/// of the `extra` files; what cannot be read counts 0.
package func bytesOnDisk(_ directory: String, plus extra: [String] = []) -> Int {
    (directoryNames(directory).map { directory + "/" + $0 } + extra).reduce(0) { total, file in
        var info = stat()
        return total + (stat(file, &info) == 0 && info.st_mode & S_IFMT == S_IFREG ? Int(info.st_size) : 0)
    }
}

/// The bytes of a small file named on the command line (a key file, say), or nil with `errno`
/// set when it cannot be opened or read, or is over `limit` bytes (`EFBIG`).
package func readWholeFile(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 << 10)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { return nil }
        if n == 0 { return bytes }
        bytes += chunk.prefix(n)
        if bytes.count > limit {
            errno = EFBIG
            return nil
        }
    }
}
