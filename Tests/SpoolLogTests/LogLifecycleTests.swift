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
}
