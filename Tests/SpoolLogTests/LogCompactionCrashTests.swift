#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// The process stops at every step of a compaction, in turn: the reopened log holds either the
/// old records or the compacted ones, each live record exactly once, and no leftover files.
@Suite struct LogCompactionCrashTests {
    /// Which records a compaction keeps.
    enum Scenario: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// One run of 20 records in three: fewer segments than before, so old ones are deleted.
        case keepOneRunInThree
        /// Two runs of 20 in three: about as many segments as before, renamed over the old ones.
        case keepTwoRunsInThree
        /// Nothing: the sealed segments are only deleted.
        case keepNothing

        var testDescription: String { rawValue }

        func isLive(_ offset: UInt64) -> Bool {
            switch self {
            case .keepOneRunInThree: (offset / 20) % 3 == 0
            case .keepTwoRunsInThree: (offset / 20) % 3 != 1
            case .keepNothing: false
            }
        }
    }

    /// Copies the files of a closed log (every file but the lock) into a new directory.
    static func copyLog(from source: String, to destination: String) throws {
        #expect(mkdir(destination, 0o700) == 0)
        for name in try SystemCalls().listDirectory(source) where name != Log.lockFileName {
            writeFile(destination + "/" + name, readFile(source + "/" + name))
        }
    }

    static func fileName(_ path: String?) -> String? {
        path.map { String($0.split(separator: "/").last ?? "") }
    }

    @Test(arguments: Scenario.allCases)
    func aCrashAtEveryStepLeavesTheOldOrTheNewLog(scenario: Scenario) async throws {
        // The log every run starts from, byte for byte: built once, closed cleanly, copied per run.
        let template = TemporaryDirectory()
        let builder = try Log.open(directory: template.log, configuration: CompactionFixture.configuration())
        let written = try await CompactionFixture.fill(builder, count: 500, perCall: 10)
        let bases = builder.segmentBaseOffsets
        try #require(bases.count >= 4)
        let activeBase = bases[bases.count - 1]
        try builder.close()
        let compacted = written.filter { $0.offset >= activeBase || scenario.isLive($0.offset) }
        let dropped = written.map(\.offset).filter { $0 < activeBase && !scenario.isLive($0) }

        // A first run records the steps of the compaction.
        let learning = TemporaryDirectory()
        try Self.copyLog(from: template.log, to: learning.log)
        let recorder = FaultInjectingSyscalls()
        let learningLog = try Log.open(directory: learning.log, configuration: CompactionFixture.configuration(recorder))
        let stepsBefore = recorder.stepCount
        _ = try learningLog.compact { scenario.isLive($0.offset) }
        let stepsAfter = recorder.stepCount
        let steps = recorder.trace.filter { ($0.step ?? 0) > stepsBefore && $0.step! <= stepsAfter }
        try learningLog.close()
        try #require(steps.count == stepsAfter - stepsBefore)
        // The commit point: the rename that installs the swap manifest.
        let commit = try #require(steps.firstIndex {
            $0.operation == .rename && Self.fileName($0.destination) == SegmentSwap.manifestName
        }) + 1
        if scenario != .keepTwoRunsInThree {
            #expect(steps.contains { $0.operation == .unlink && $0.path?.hasSuffix(".log") == true }, "no old segment is deleted")
        }

        for k in 1...steps.count {
            let dir = TemporaryDirectory()
            try Self.copyLog(from: template.log, to: dir.log)
            let faults = FaultInjectingSyscalls()
            do {
                let log = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration(faults))
                let start = faults.stepCount
                faults.crash(atStep: start + k)
                #expect(throws: (any Error).self, "step \(k)") { try log.compact { scenario.isLive($0.offset) } }
                // The crash stopped the same call as the one numbered k in the first run.
                let stopped = faults.trace.first { $0.step == start + k }
                #expect(stopped?.operation == steps[k - 1].operation && Self.fileName(stopped?.path) == Self.fileName(steps[k - 1].path),
                        "step \(k): stopped at \(String(describing: stopped)), expected \(steps[k - 1])")
                log.abandon()
            }

            let reopened = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
            let leftovers = try SystemCalls().listDirectory(dir.log).filter {
                $0.contains(".cleaned") || $0.contains(SegmentSwap.manifestName) || $0.hasSuffix(".tmp")
            }
            #expect(leftovers.isEmpty, "step \(k): \(leftovers)")
            let committed = k > commit
            if committed {
                try CompactionFixture.expectReads(reopened, present: compacted, absent: dropped)
            } else {
                try CompactionFixture.expectReads(reopened, present: written, absent: [])
            }
            #expect(reopened.endOffset == UInt64(written.count), "step \(k)")
            #expect(try await reopened.append([UInt8(k & 0xff)]) == UInt64(written.count), "step \(k)")
            try reopened.close()
        }
    }

    /// Only the directory fsync right after the manifest rename fails (the process lives on):
    /// the swap may already be durable, so the compacted files must be kept for the next open,
    /// which finishes the swap. Nothing live may be lost.
    @Test func aFailedSyncAfterTheCommitKeepsTheSwap() async throws {
        let dir = TemporaryDirectory()
        let recorder = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration(recorder))
        let written = try await CompactionFixture.fill(log, count: 300, perCall: 10)
        let activeBase = log.segmentBaseOffsets.last!
        try log.close()
        let isLive = { (offset: UInt64) in offset % 3 == 0 }
        let compacted = written.filter { $0.offset >= activeBase || isLive($0.offset) }
        let dropped = written.map(\.offset).filter { $0 < activeBase && !isLive($0) }

        // Learn which fsync of the directory follows the manifest rename when the log is reopened and compacted.
        let learning = TemporaryDirectory()
        try LogCompactionCrashTests.copyLog(from: dir.log, to: learning.log)
        let probe = FaultInjectingSyscalls()
        let probeLog = try Log.open(directory: learning.log, configuration: CompactionFixture.configuration(probe))
        _ = try probeLog.compact { isLive($0.offset) }
        try probeLog.close()
        let trace = probe.trace
        let rename = try #require(trace.firstIndex { $0.operation == .rename && Self.fileName($0.destination) == SegmentSwap.manifestName })
        let directoryFsyncs = trace.enumerated().filter { $0.element.operation == .fsync && $0.element.path == learning.log }
        let occurrence = try #require(directoryFsyncs.firstIndex { $0.offset > rename }) + 1

        let faults = FaultInjectingSyscalls()
        let target = dir.log
        faults.fail(.fsync, errno: EIO, path: .matching { $0 == target }, occurrence: .only(occurrence))
        let failing = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration(faults))
        let error = #expect(throws: LogError.self) { try failing.compact { isLive($0.offset) } }
        #expect(error?.code == .io || error?.code == .poisoned, "\(String(describing: error))")
        // The log refuses further work rather than running ahead of what is on disk.
        await #expect(throws: LogError.self) { try await failing.append([1]) }
        failing.abandon()

        let reopened = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
        #expect(!reopened.recovery.resolvedCompactionFiles.isEmpty)
        try CompactionFixture.expectReads(reopened, present: compacted, absent: dropped)
        try reopened.close()
    }
}
