#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// `spool recover --mode check` judges a directory as the next open will leave it: after the
/// process stops at any step of a compaction swap, check reports no damage (and no "index without
/// a segment") when the next open finishes the swap with every live record intact.
@Suite struct LogVerifierSwapCrashTests {
    @Test func checkAfterAKillAtEveryStepOfACompactionAgreesWithOpen() async throws {
        let template = TemporaryDirectory()
        let builder = try Log.open(directory: template.log, configuration: CompactionFixture.configuration())
        let written = try await CompactionFixture.fill(builder, count: 500, perCall: 10)
        let activeBase = try #require(builder.segmentBaseOffsets.last)
        try builder.close()
        let isLive = { (offset: UInt64) in (offset / 20) % 3 == 0 }
        let compacted = written.filter { $0.offset >= activeBase || isLive($0.offset) }

        // Count the compaction's mutating steps once.
        let learning = TemporaryDirectory()
        try LogCompactionCrashTests.copyLog(from: template.log, to: learning.log)
        let recorder = FaultInjectingSyscalls()
        let learningLog = try Log.open(directory: learning.log, configuration: CompactionFixture.configuration(recorder))
        let before = recorder.stepCount
        _ = try learningLog.compactByOffset(keeping: isLive)
        let steps = recorder.stepCount - before
        try learningLog.close()
        try #require(steps > 5)

        for k in 1...steps {
            let dir = TemporaryDirectory()
            try LogCompactionCrashTests.copyLog(from: template.log, to: dir.log)
            let faults = FaultInjectingSyscalls()
            let log = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration(faults))
            faults.crash(atStep: faults.stepCount + k)
            _ = try? log.compactByOffset(keeping: isLive)
            log.abandon()

            let offline = try OfflineLog.open(directory: dir.log)
            let check = try offline.verify()
            offline.close()
            #expect(check.opensCleanly, "step \(k): \(check.problems)")
            #expect(!check.problems.contains { $0.kind == "orphanIndex" }, "step \(k): \(check.problems)")

            let reopened = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
            let records = try readAll(reopened)
            #expect(records == written || records == compacted, "step \(k)")
            try reopened.close()
        }
    }
}
