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

    /// One run of the crash test: opens a copy of `template` with system calls that stop at the
    /// `k`th mutating call from the start of the round (nil: never), starts runs beside the round
    /// (`beside`) or before it, then reopens the copy and checks it against `before`. Returns the
    /// mutating calls the round and its starts made, the first call that failed, and the outcome.
    static func crashRun(_ h: EngineHarness, template: String, before: HistoryView, k: Int?, beside: Bool, name: String) async throws
        -> (steps: Int, crashedAt: String?, outcome: OnlineCompactionOutcome?) {
        let data = h.directory + "/" + name
        copyTree(template, to: data)
        defer { removeTree(data) }
        let faults = FaultInjectingSyscalls()
        let engine = try SpoolEngine.open(directory: data, configuration: Self.configuration(h.clock, faults))
        var acknowledged: Set<String> = []
        if !beside { acknowledged = await Self.startRuns(engine, prefix: name, count: 6) }
        let base = faults.stepCount
        if let k { faults.crash(atStep: base + k) }
        async let started = beside ? Self.startRuns(engine, prefix: name, count: 6) : []
        let outcome = try? await engine.compactHistoryOnline(force: true)
        acknowledged.formUnion(await started)
        let steps = faults.stepCount - base
        let crashedAt = faults.trace.first(where: { $0.injected != nil })?.description
        await engine.abandon()

        let after = try await HistoryFixture.view(data, clock: h.clock)
        Self.check(after, against: before, acknowledged: acknowledged, attempted: name, name)
        #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock).runs == after.runs, "\(name): full replay")
        let leftovers = directoryEntries(data + "/history").filter { $0.contains(".cleaned") || $0 == "swap-manifest" }
        #expect(leftovers.isEmpty, "\(name): \(leftovers)")
        return (steps, crashedAt, outcome)
    }

    @Test func aCrashAtEveryStepWhileTransitionsRunLosesNothing() async throws {
        let h = try EngineHarness()
        let template = h.directory + "/template"
        try await HistoryFixture.build(template, clock: h.clock)
        let before = try await HistoryFixture.view(template, clock: h.clock)
        // The first call each crash failed: the crashes fall on the compaction's own steps.
        var crashedAt: [String] = []
        // Starts before the round (its steps are the same in every run: each one is crashed at), then
        // beside it (the k-th step differs from run to run: a little past the count).
        for beside in [false, true] {
            let learning = try await Self.crashRun(h, template: template, before: before, k: nil, beside: beside, name: "learning-\(beside)")
            guard case .compacted? = learning.outcome else {
                Issue.record("the learning run did not compact: \(String(describing: learning.outcome))")
                return
            }
            var finished = false
            // Every step of the learning run's count, a little past it, and on (starts beside the
            // round add steps on a loaded machine) until one run gets past the round's last step.
            let enough = learning.steps + (beside ? 10 : 2), cap = 3 * learning.steps + 50
            var k = 0
            while k < cap && !(finished && k >= enough) {
                k += 1
                let run = try await Self.crashRun(h, template: template, before: before, k: k, beside: beside, name: "k\(k)-\(beside)")
                if let call = run.crashedAt { crashedAt.append(call) }
                if case .compacted? = run.outcome { finished = true }
            }
            #expect(finished, "beside \(beside): no run got past the round's last step")
        }
        #expect(crashedAt.count > 20)
        #expect(crashedAt.contains { $0.contains("/checkpoint") }, "no crash while writing the round's checkpoint")
        #expect(crashedAt.contains { $0.contains(".log.cleaned") }, "no crash while writing a compacted segment")
        #expect(crashedAt.contains { $0.contains("rename(") && $0.contains("/swap-manifest) [injected") }, "no crash at the swap's commit point")
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
