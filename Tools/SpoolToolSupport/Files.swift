#if canImport(Glibc)
import Glibc
#endif

/// The names in `directory` (without `.` and `..`), sorted; empty when it cannot be read.
package func directoryNames(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// Bytes of the regular files directly in `directory` (not in its subdirectories), plus those
/// of the `extra` files; what cannot be read counts 0.
package func bytesOnDisk(_ directory: String, plus extra: [String] = []) -> Int {
    (directoryNames(directory).map { directory + "/" + $0 } + extra).reduce(0) { total, file in
        var info = stat()
        return total + (stat(file, &info) == 0 && info.st_mode & S_IFMT == S_IFREG ? Int(info.st_size) : 0)
    }
}
