#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolLog
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// The process stops at every step of an online compaction in turn (every mutating system call
/// from the moment the compaction starts, through `FaultInjectingSyscalls`) while adds run
/// beside it; and the power fails at a step of it (`PowerLossSyscalls`). After each, the reopened
/// store delivers every task that was pending and every add that was acknowledged, no task that
/// was completed before the compaction (no dropped record comes back), and the log opens with no
/// compaction file left behind.
@Suite struct TaskStoreOnlineCompactionCrashTests {
    /// A closed store over many segments: most tasks completed, the rest pending or in flight.
    static func template() async throws -> (TemporaryDirectory, pending: Set<Int>) {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: TaskStoreOnlineCompactionTests.configuration())
        let added = await TaskStoreCrashTests.addConcurrently(store, tags: 0..<1500, producers: 4)
        #expect(added.count == 1500)
        var pending: Set<Int> = []
        var i = 0
        while let task = try await store.poll("q", kind: .activity, timeout: .zero) {
            i += 1
            let tag = try #require(TaskStoreCrashTests.tag(of: task.payload))
            if i % 6 == 0 { pending.insert(tag) } else { try store.complete(task.id) }   // in flight at close: pending after
        }
        try await store.close()
        return (dir, pending)
    }

    @Test func aCrashAtEveryStepWhileAddsRunLosesAndResurrectsNothing() async throws {
        let (template, pending) = try await Self.template()
        var crashes = 0
        // The first call each crash failed: the crashes fall on the compaction's own steps too.
        var crashedAt: [String] = []
        func covered() -> Bool {
            crashedAt.contains { $0.contains(".log.cleaned") }
                && crashedAt.contains { $0.contains("rename(") && $0.contains("/swap-manifest) [injected") }
                && crashedAt.contains { $0.contains("unlink(") && $0.contains(".log) [injected") }
        }
        // The swap's commit, in steps after the crash point is armed, as a run that finished saw it.
        var commitStep: Int?
        // Adds before the round first (its steps are the same in nearly every run, so each one, the
        // swap's commit included, is crashed at), then adds beside it (the steps interleave). On a
        // loaded machine the sweep before the round can miss the swap's commit (steps shift between
        // runs), so that sweep is repeated, at most twice more and from a few steps before the
        // commit a finished run saw, until it covered the three points checked at the end.
        for beside in [false, false, false, true] where beside || !covered() {
            var finished = false
            var k = beside ? 1 : commitStep.map { max(1, $0 - 3) } ?? 1
            while !finished && k <= 600 {
                let dir = TemporaryDirectory()
                copyTree(template.store, to: dir.store)
                let faults = FaultInjectingSyscalls()
                let store = try TaskStore.open(directory: dir.store, configuration: TaskStoreOnlineCompactionTests.configuration(faults))
                try store.checkpoint()   // a durable ack level, which the judge starts from
                let base = beside ? 200_000 : 100_000
                let tags = base + k * 100..<base + k * 100 + 40
                let before = beside ? [:] : await TaskStoreCrashTests.addConcurrently(store, tags: tags, producers: 2)
                let armed = faults.stepCount
                faults.crash(atStep: armed + k)
                async let adds = beside ? TaskStoreCrashTests.addConcurrently(store, tags: tags, producers: 2) : [:]
                let outcome = try? await store.compactOnline(force: true)
                let acknowledged = (await adds).merging(before) { a, _ in a }
                let crashed = faults.trace.contains { $0.injected != nil }
                store.abandon()

                let found = Set(try await TaskStoreOnlineCompactionTests.pendingTags(dir.store))
                let lost = pending.union(acknowledged.values).subtracting(found)
                let resurrected = found.subtracting(pending).filter { !tags.contains($0) }
                #expect(lost.isEmpty && resurrected.isEmpty,
                        "step \(k): lost \(lost.sorted().prefix(10)), resurrected \(resurrected.sorted().prefix(10)); \(faults.trace.filter { $0.step == faults.stepCount })")
                let leftovers = fileNames(dir.store + "/log").filter { $0.contains(".cleaned") || $0 == "swap-manifest" || $0.hasSuffix(".tmp") }
                #expect(leftovers.isEmpty, "step \(k): \(leftovers)")
                if crashed { crashes += 1 }
                if let call = faults.trace.first(where: { $0.injected != nil }) { crashedAt.append(call.description) }
                if !crashed, case .compacted(let summary, _)? = outcome {
                    #expect(summary.recordsDropped > 0)
                    finished = true
                    if let commit = faults.trace.first(where: { $0.operation == .rename && $0.destination?.hasSuffix("/swap-manifest") == true }),
                       let step = commit.step {
                        commitStep = step - armed
                    }
                }
                k += 1
            }
            #expect(finished, "beside \(beside): the compaction never ran to its end within 600 steps")
        }
        #expect(crashes > 10)
        #expect(crashedAt.contains { $0.contains(".log.cleaned") }, "no crash while writing a compacted segment")
        #expect(crashedAt.contains { $0.contains("rename(") && $0.contains("/swap-manifest) [injected") }, "no crash at the swap's commit point")
        #expect(crashedAt.contains { $0.contains("unlink(") && $0.contains(".log) [injected") }, "no crash while deleting a replaced segment")
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func powerLossDuringAnOnlineCompactionLosesAndResurrectsNothing(seed: UInt64) async throws {
        var random = SplitMix64(seed: seed)
        let (template, pending) = try await Self.template()
        for round in 0..<6 {
            let dir = TemporaryDirectory()
            copyTree(template.store, to: dir.store)
            let power = PowerLossSyscalls()
            let store = try TaskStore.open(directory: dir.store, configuration: TaskStoreOnlineCompactionTests.configuration(power))
            try store.checkpoint()
            power.cutPower(atStep: power.stepCount + 1 + random.below(60))
            let tags = 200_000 + round * 100..<200_000 + round * 100 + 40
            async let adds = TaskStoreCrashTests.addConcurrently(store, tags: tags, producers: 2)
            _ = try? await store.compactOnline(force: true)
            let acknowledged = await adds
            store.abandon()
            power.simulatePowerLoss()

            let found = Set(try await TaskStoreOnlineCompactionTests.pendingTags(dir.store))
            let lost = pending.union(acknowledged.values).subtracting(found)
            let resurrected = found.subtracting(pending).filter { !tags.contains($0) }
            #expect(lost.isEmpty && resurrected.isEmpty,
                    "seed \(seed) round \(round): lost \(lost.sorted().prefix(10)), resurrected \(resurrected.sorted().prefix(10))")
        }
    }
}
