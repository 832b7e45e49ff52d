#if canImport(Glibc)
import Glibc
#endif
@testable import SpoolLog

/// A fresh directory under the system temp dir, removed when the test is done with it.
final class TemporaryDirectory: @unchecked Sendable {
    let path: String

    init(_ name: String = "spool-test") {
        var template = Array("/tmp/\(name)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }

    /// The log directory inside it.
    var log: String { path + "/log" }

    deinit { _ = system("rm -rf '\(path)'") }
}

func payload(_ i: Int, size: Int = 100) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: size)
    var x = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 1
    for j in 0..<size {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        bytes[j] = UInt8(truncatingIfNeeded: x)
    }
    return bytes
}

/// Reads every record of the log from its start.
func readAll(_ log: Log) throws -> [LogRecord] {
    var reader = log.reader(from: log.startOffset)
    var records: [LogRecord] = []
    while let record = try reader.next() { records.append(record) }
    return records
}

func fileSize(_ path: String) -> Int {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_size) : -1
}

func truncateFile(_ path: String, to size: Int) {
    precondition(truncate(path, off_t(size)) == 0)
}

func readFile(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: max(fileSize(path), 0))
    let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    precondition(n == bytes.count)
    return bytes
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    precondition(n == bytes.count)
}

func segmentPath(_ directory: String, _ base: UInt64, _ suffix: String = ".log") -> String {
    directory + "/" + Segment.fileName(base, suffix)
}
