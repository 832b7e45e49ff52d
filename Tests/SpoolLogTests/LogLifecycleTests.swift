import SpoolTestSupport
import Testing
@testable import SpoolLog

@Suite struct LogLifecycleTests {
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
