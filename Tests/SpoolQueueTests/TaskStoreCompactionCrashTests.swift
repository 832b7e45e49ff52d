#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolLog
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// The process stops at every step of a task store compaction in turn (every mutating system
/// call, through `FaultInjectingSyscalls`): the reopened store delivers exactly the tasks it
/// delivered before, each once, and no compaction file is left behind.
@Suite struct TaskStoreCompactionCrashTests {
    @Test func aCrashAtEveryStepLosesAndDuplicatesNothing() async throws {
        let template = TemporaryDirectory()
        try await CompactionFixture.build(template.store)
        let expected = try await CompactionFixture.view(template.store)

        // A first run counts the steps.
        let learning = TemporaryDirectory()
        copyTree(template.store, to: learning.store)
        let recorder = FaultInjectingSyscalls()
        let summary = try TaskStore.compact(directory: learning.store, configuration: CompactionFixture.configuration(recorder))
        #expect(summary.recordsDropped > 0)
        let steps = recorder.stepCount
        #expect(recorder.trace.contains { $0.operation == .rename && $0.destination?.hasSuffix("swap-manifest") == true })
        try #require(steps > 3)

        for k in 1...steps {
            let dir = TemporaryDirectory()
            copyTree(template.store, to: dir.store)
            let faults = FaultInjectingSyscalls()
            faults.crash(atStep: k)
            #expect(throws: QueueError.self, "step \(k)") {
                try TaskStore.compact(directory: dir.store, configuration: CompactionFixture.configuration(faults))
            }
            let view = try await CompactionFixture.view(dir.store)
            #expect(view == expected, "step \(k) of \(steps): \(recorder.trace.filter { $0.step == k })")
            let leftovers = fileNames(dir.store + "/log").filter { $0.contains(".cleaned") || $0 == "swap-manifest" || $0.hasSuffix(".tmp") }
            #expect(leftovers.isEmpty, "step \(k): \(leftovers)")
            // The crashed compaction can be run again to completion.
            _ = try TaskStore.compact(directory: dir.store, configuration: CompactionFixture.configuration())
            #expect(try await CompactionFixture.view(dir.store) == expected, "step \(k), compacted again")
        }
    }
}
