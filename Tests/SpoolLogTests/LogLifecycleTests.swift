#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

@Suite struct LogLifecycleTests {
    @Test func theLogsThreadsAreNamedForTopAndPs() async throws {
        let dir = TemporaryDirectory()
        var configuration = LogConfiguration()
        configuration.durability = .sync
        configuration.concurrentSyncs = 1
        let log = try Log.open(directory: dir.log, configuration: configuration)
        // The append went through the writer and was acknowledged by the syncer, so both have
        // started, and a thread names itself before it does anything else.
        _ = try await log.append([1])
        let names = threadNames()
        #expect(names.contains("spool-writer"))
        #expect(names.contains("spool-sync0"))
        try log.close()
    }

    @Test func droppingTheLastReferenceClosesTheLog() async throws {
        let dir = TemporaryDirectory()
        do {
            let log = try Log.open(directory: dir.log)
            _ = try await log.append([1, 2, 3])
        }
        let reopened = try Log.open(directory: dir.log)
        #expect(reopened.recovery.cleanShutdown)
        #expect(try reopened.read(at: 0) == [1, 2, 3])
        try reopened.close()
    }

    @Test func aCleanCloseCutsThePreallocatedTail() async throws {
        let dir = TemporaryDirectory()
        let segment = dir.log + "/00000000000000000000.log"
        var configuration = LogConfiguration()
        configuration.compressionThresholdBytes = Int.max
        let log = try Log.open(directory: dir.log, configuration: configuration)
        _ = try await log.append(contentsOf: (0..<10).map { payload($0) })
        #expect(fileSize(segment) >= configuration.preallocationBytes)
        try log.close()
        // One batch: its 40-byte header, then each record as a 4-byte length and its bytes.
        #expect(fileSize(segment) == 40 + 10 * (4 + 100))

        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(reopened.recovery.cleanShutdown)
        _ = try await reopened.append(payload(10))
        #expect(try readAll(reopened).map(\.payload) == (0...10).map { payload($0) })
        try reopened.close()
    }

    /// The statistics `spool bench log` splits an append's time with: in `sync` mode every caller
    /// is counted once, and each waited at least as long as the fdatasync that covered it, so the
    /// callers' sum from sync start to acknowledgement is at least the syncs' summed duration.
    @Test func syncStatisticsCountEveryCallerAnFdatasyncAcknowledged() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: LogConfiguration(durability: .sync))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 { group.addTask { _ = try await log.append(payload(i)) } }
            try await group.waitForAll()
        }
        let statistics = log.statistics
        #expect(statistics.syncAcknowledged == 200)
        #expect((1...200).contains(statistics.fdatasyncs))
        #expect(statistics.fdatasyncNanoseconds > 0)
        #expect(statistics.syncStartToAcknowledgedNanoseconds >= statistics.fdatasyncNanoseconds)
        try log.close()
    }

    @Test func inNoneModeOnlyAFlushIsAcknowledgedByAnFdatasync() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: LogConfiguration(durability: .none))
        _ = try await log.append(contentsOf: (0..<10).map { payload($0) })
        #expect(log.statistics.syncAcknowledged == 0)
        try await log.flush()
        #expect(log.statistics.syncAcknowledged == 1)
        #expect(log.statistics.fdatasyncs == 1)
        try log.close()
    }
}

/// The names of this process's threads (`/proc/self/task/*/comm`).
private func threadNames() -> Set<String> {
    guard let directory = opendir("/proc/self/task") else { return [] }
    defer { closedir(directory) }
    var names: Set<String> = []
    while let entry = readdir(directory) {
        let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard tid.first?.isNumber == true else { continue }
        // A /proc file reports size 0: read it with read(2) until it ends.
        let fd = open("/proc/self/task/\(tid)/comm", O_RDONLY)
        guard fd >= 0 else { continue }  // the thread ended meanwhile
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        close(fd)
        names.insert(String(decoding: buffer.prefix(max(count, 0)).prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self))
    }
    return names
}
