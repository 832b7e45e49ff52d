#if canImport(Glibc)
import Glibc
#endif
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
}
