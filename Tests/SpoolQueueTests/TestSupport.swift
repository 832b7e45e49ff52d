#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
@testable import SpoolQueue

/// A fresh directory under the system temp dir, removed when the test is done with it.
final class TemporaryDirectory: @unchecked Sendable {
    let path: String

    init(_ name: String = "spool-queue-test") {
        var template = Array("/tmp/\(name)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }

    /// The store directory inside it.
    var store: String { path + "/tasks" }

    deinit { removeTree(path) }
}

/// Deletes `path` and everything under it, without forking (a forked child would hold the
/// `flock`ed lock files of stores other tests are reopening).
func removeTree(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    if info.st_mode & S_IFMT == S_IFDIR {
        if let dir = opendir(path) {
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { names.append(name) }
            }
            closedir(dir)
            for name in names { removeTree(path + "/" + name) }
        }
        rmdir(path)
    } else {
        unlink(path)
    }
}

func fileNames(_ path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// Deterministic bytes for task `i`.
func payload(_ i: Int, size: Int = 64) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: size)
    var x = UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15 &+ 1
    for j in 0..<size {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        bytes[j] = UInt8(truncatingIfNeeded: x)
    }
    return bytes
}

/// A configuration for tests: no background checkpoint unless the manual clock is advanced past it.
func testConfiguration(_ durability: Durability = .none, segmentBytes: Int = 128 << 20) -> TaskStoreConfiguration {
    var configuration = TaskStoreConfiguration(durability: durability)
    configuration.log.segmentBytes = segmentBytes
    configuration.log.maxRecordBytes = min(configuration.log.maxRecordBytes, segmentBytes / 2)
    configuration.log.preallocationBytes = 0
    configuration.visibilityTimeout = .seconds(30)
    configuration.checkpointInterval = .seconds(3600)
    return configuration
}

extension TaskStore {
    /// Takes every task available now (no waiting), completing each when `complete` is set.
    func drainNow(_ queue: String, kind: TaskQueueKind = .activity, complete: Bool = true) async throws -> [DeliveredTask] {
        var tasks: [DeliveredTask] = []
        while let task = try await poll(queue, kind: kind, timeout: .zero) {
            tasks.append(task)
            if complete { try self.complete(task.id) }
        }
        return tasks
    }

    /// The log's end offset (tests check that bad input writes nothing).
    var logEnd: UInt64 { log.endOffset }
}
