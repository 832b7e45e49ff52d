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
}
