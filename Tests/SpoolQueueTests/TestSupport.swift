#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
@testable import SpoolQueue
import SpoolTestSupport

extension TemporaryDirectory {
    /// The store directory inside it.
    var store: String { path + "/tasks" }
}

/// The names in a directory, sorted.
func fileNames(_ path: String) -> [String] { directoryEntries(path) }

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
    configuration.onlineCompaction.checkInterval = .seconds(3600)
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
