import SpoolTestSupport
import Testing
@testable import SpoolLog

@Suite struct LogRoundTripTests {
    @Test(arguments: [Durability.sync, .interval(milliseconds: 5), .none])
    func bytesReadBackEqualBytesWritten(durability: Durability) async throws {
        let dir = TemporaryDirectory()
        var configuration = LogConfiguration(durability: durability)
        configuration.compressionThresholdBytes = 512
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [(UInt64, [UInt8])] = []
        for i in 0..<200 {
            let bytes = i % 3 == 0 ? [UInt8](repeating: UInt8(i % 256), count: 2000) : payload(i, size: i)
            written.append((try await log.append(bytes), bytes))
        }
        let batch = try await log.append(contentsOf: [payload(1000), payload(1001)])
        #expect(batch == 200..<202)
        #expect(written.map(\.0) == Array(0..<200))
        for (offset, bytes) in written { #expect(try log.read(at: offset) == bytes) }
        try log.close()

        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(reopened.recovery.cleanShutdown)
        let records = try readAll(reopened)
        #expect(records.map(\.payload) == written.map(\.1) + [payload(1000), payload(1001)])
        #expect(try await reopened.append([1, 2, 3]) == 202)
        try reopened.close()
    }
}
