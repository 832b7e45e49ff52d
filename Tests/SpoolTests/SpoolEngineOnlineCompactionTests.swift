#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import Spool

/// Online compaction of a running engine's history log: runs past retention leave the log while
/// the engine runs, every query answers as before, and a crash or a power cut at any step of it
/// leaves the same runs, histories and pending tasks.
@Suite struct SpoolEngineOnlineCompactionTests {
    static func configuration(_ clock: ManualMatchingClock, _ syscalls: any Syscalls = SystemCalls(),
                              durability: Durability = .none) -> SpoolEngineConfiguration {
        var configuration = HistoryFixture.configuration(clock, syscalls)
        configuration.log.durability = durability
        configuration.onlineCompaction.minimumDeadBytes = 0
        configuration.onlineCompaction.bytesPerSecond = 0
        configuration.onlineCompaction.checkInterval = .seconds(3600)
        return configuration
    }

    /// Starts `count` runs `prefix-i` concurrently; returns the ids of those whose start returned.
    static func startRuns(_ engine: SpoolEngine, prefix: String, count: Int) async -> Set<String> {
        await withTaskGroup(of: String?.self) { group in
            for i in 0..<count {
                group.addTask {
                    let id = "\(prefix)-\(i)"
                    let started = try? await engine.startWorkflowExecution(.init(workflowID: id, workflowType: "order", taskQueue: "new",
                                                                                input: HistoryFixture.input(5000 + i)))
                    return started == nil ? nil : id
                }
            }
            var ids: Set<String> = []
            for await id in group { if let id { ids.insert(id) } }
            return ids
        }
    }

    /// The runs of `before` are in `after` as they were; the other runs of `after` are new runs
    /// among `attempted` and include every one of `acknowledged`.
    static func check(_ after: HistoryView, against before: HistoryView, acknowledged: Set<String>, attempted: String, _ context: String) {
        for run in before.runs {
            #expect(after.descriptions[run] == before.descriptions[run], "\(context): \(run) described differently")
            #expect(after.histories[run] == before.histories[run], "\(context): \(run)'s history differs")
        }
        let added = Set(after.runs).subtracting(before.runs)
        let addedIDs = Set(added.compactMap { after.descriptions[$0]?.executionInfo.execution.workflowID })
        #expect(acknowledged.isSubset(of: addedIDs), "\(context): lost \(acknowledged.subtracting(addedIDs).sorted().prefix(5))")
        #expect(addedIDs.allSatisfy { $0.hasPrefix(attempted + "-") }, "\(context): resurrected \(addedIDs.filter { !$0.hasPrefix(attempted + "-") }.sorted().prefix(5))")
    }

    @Test func runsPastRetentionLeaveTheLogWhileTheEngineRuns() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        try await HistoryFixture.build(data, clock: h.clock)
        let before = try await HistoryFixture.view(data, clock: h.clock)
        #expect(before.runs.count == 13)

        let engine = try SpoolEngine.open(directory: data, configuration: Self.configuration(h.clock))
        let bytesBefore = engine.historySegmentBytes
        // Transitions go on while the log is rewritten.
        async let started = Self.startRuns(engine, prefix: "during", count: 20)
        let outcome = try await engine.compactHistoryOnline(force: true)
        let acknowledged = await started
        #expect(acknowledged.count == 20)
        guard case .compacted(let summary, _) = outcome else {
            Issue.record("expected a compaction, got \(outcome)")
            return
        }
        #expect(summary.recordsDropped > summary.recordsKept)
        #expect(engine.historySegmentBytes < bytesBefore)
        #expect(engine.onlineCompactionStatistics.compactions == 1)
        // Histories of kept runs are read from the rewritten segments while the engine runs.
        for run in before.runs {
            let info = try #require(before.descriptions[run]).executionInfo.execution
            #expect(try await engine.getWorkflowExecutionHistory(execution: info, maximumPageSize: 100_000).history == before.histories[run])
        }
        try await engine.close()

        let after = try await HistoryFixture.view(data, clock: h.clock)
        Self.check(after, against: before, acknowledged: acknowledged, attempted: "during", "after close")
        #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock) == after)
        // The offline compaction finds nothing more to drop.
        let offline = try SpoolEngine.compactHistory(directory: data, configuration: HistoryFixture.configuration(h.clock))
        #expect(offline.runsDropped == 0)
        #expect(try await HistoryFixture.view(data, clock: h.clock) == after)
    }

    @Test func aHistorySmallerThanOneSegmentIsRolledThenCompacted() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        var configuration = Self.configuration(h.clock)
        configuration.log.segmentBytes = 8 << 20
        let engine = try SpoolEngine.open(directory: data, configuration: configuration)
        for i in 0..<40 {
            _ = try await engine.startWorkflowExecution(.init(workflowID: "old-\(i)", workflowType: "order", taskQueue: "q", input: HistoryFixture.input(i)))
            let task = try #require(try await engine.pollWorkflowTaskQueue(taskQueue: "q", identity: "w", timeout: .zero))
            try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.completeWorkflowExecution(.init(result: nil))], identity: "w")
        }
        h.clock.advance(by: .seconds(7200))
        await engine.fireDueTimers()   // the retention timers drop the closed runs
        _ = try await engine.startWorkflowExecution(.init(workflowID: "kept", workflowType: "order", taskQueue: "q", input: HistoryFixture.input(99)))
        guard case .rolledActiveSegment = try await engine.compactHistoryOnline() else {
            Issue.record("expected a roll")
            return
        }
        _ = try await engine.startWorkflowExecution(.init(workflowID: "after-roll", workflowType: "order", taskQueue: "q", input: HistoryFixture.input(98)))
        guard case .compacted(let summary, _) = try await engine.compactHistoryOnline() else {
            Issue.record("expected a compaction")
            return
        }
        #expect(summary.recordsDropped >= 40 * 3)
        #expect(engine.listWorkflowExecutions().map(\.execution.workflowID).sorted() == ["after-roll", "kept"])
        try await engine.close()
        let view = try await HistoryFixture.view(data, configuration: configuration)
        #expect(view.runs.count == 2)
        #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock).runs.count == 2)
    }

    @Test func aCrashAtEveryStepWhileTransitionsRunLosesNothing() async throws {
        let h = try EngineHarness()
        let template = h.directory + "/template"
        try await HistoryFixture.build(template, clock: h.clock)
        let before = try await HistoryFixture.view(template, clock: h.clock)
        // A first run, without a crash, counts the steps of a round with its starts.
        let steps: Int
        do {
            let data = h.directory + "/learning"
            copyTree(template, to: data)
            defer { removeTree(data) }
            let faults = FaultInjectingSyscalls()
            let engine = try SpoolEngine.open(directory: data, configuration: Self.configuration(h.clock, faults))
            let base = faults.stepCount
            async let started = Self.startRuns(engine, prefix: "learning", count: 6)
            guard case .compacted = try await engine.compactHistoryOnline(force: true) else {
                Issue.record("the learning run did not compact")
                return
            }
            _ = await started
            steps = faults.stepCount - base
            await engine.abandon()
        }
        var finished = false
        var crashes = 0
        // The first call each crash failed: the crashes fall on the compaction's own steps too.
        var crashedAt: [String] = []
        // Starts run beside the round, so the k-th step differs from run to run: go a little past the count.
        for k in 1...steps + 10 {
            let data = h.directory + "/crash-\(k)"
            copyTree(template, to: data)
            defer { removeTree(data) }
            let faults = FaultInjectingSyscalls()
            let engine = try SpoolEngine.open(directory: data, configuration: Self.configuration(h.clock, faults))
            faults.crash(atStep: faults.stepCount + k)
            async let started = Self.startRuns(engine, prefix: "k\(k)", count: 6)
            let outcome = try? await engine.compactHistoryOnline(force: true)
            let acknowledged = await started
            let crashed = faults.trace.contains { $0.injected != nil }
            await engine.abandon()

            let after = try await HistoryFixture.view(data, clock: h.clock)
            Self.check(after, against: before, acknowledged: acknowledged, attempted: "k\(k)", "step \(k)")
            #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock).runs == after.runs, "step \(k): full replay")
            let leftovers = directoryEntries(data + "/history").filter { $0.contains(".cleaned") || $0 == "swap-manifest" }
            #expect(leftovers.isEmpty, "step \(k): \(leftovers)")
            if crashed { crashes += 1 }
            if let call = faults.trace.first(where: { $0.injected != nil }) { crashedAt.append(call.description) }
            if !crashed, case .compacted? = outcome { finished = true }
        }
        #expect(finished, "no run got past the round's last step")
        #expect(crashes > 10)
        #expect(crashedAt.contains { $0.contains(".log.cleaned") }, "no crash while writing a compacted segment")
        #expect(crashedAt.contains { $0.contains("rename(") && $0.contains("/swap-manifest) [injected") }, "no crash at the swap's commit point in \(steps) steps: \(crashedAt.filter { $0.contains("rename") })")
        #expect(crashedAt.contains { $0.contains("unlink(") && $0.contains(".log) [injected") }, "no crash while deleting a replaced segment")
    }

    @Test(arguments: [UInt64(1), 2])
    func powerLossDuringAnOnlineCompactionLosesNothing(seed: UInt64) async throws {
        var random = SplitMix64(seed: seed)
        let h = try EngineHarness()
        let template = h.directory + "/template"
        try await HistoryFixture.build(template, clock: h.clock)
        let before = try await HistoryFixture.view(template, clock: h.clock)
        for round in 0..<5 {
            let data = h.directory + "/power-\(round)"
            copyTree(template, to: data)
            defer { removeTree(data) }
            let power = PowerLossSyscalls()
            let engine = try SpoolEngine.open(directory: data, configuration: Self.configuration(h.clock, power, durability: .sync))
            power.cutPower(atStep: power.stepCount + 1 + random.below(40))
            async let started = Self.startRuns(engine, prefix: "p\(round)", count: 6)
            _ = try? await engine.compactHistoryOnline(force: true)
            let acknowledged = await started
            await engine.abandon()
            power.simulatePowerLoss()
            let after = try await HistoryFixture.view(data, clock: h.clock)
            Self.check(after, against: before, acknowledged: acknowledged, attempted: "p\(round)", "seed \(seed) round \(round)")
        }
    }
}
