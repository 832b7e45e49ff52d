#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import Spool

/// History compaction of a store whose closed runs are in a closed-run table (checkpoint
/// layout 2): planned from a skim of the table, kept runs copied into a new table as bytes.
@Suite struct SpoolEngineCompactionClosedRunTableTests {
    /// Every closed run goes into the table at the next checkpoint; the engine itself keeps
    /// closed runs for ever (`retention` nil), so the table still holds the expired ones when
    /// compaction runs.
    static func configuration(_ clock: ManualMatchingClock, _ syscalls: any Syscalls = SystemCalls(),
                              retention: Duration?) -> SpoolEngineConfiguration {
        var configuration = HistoryFixture.configuration(clock, syscalls, retention: retention)
        configuration.closedRunTableMergeThreshold = 1
        return configuration
    }

    /// 40 runs closed two hours ago (three of them runs of one workflow id), then open runs with
    /// activities and runs closed within the hour, over several sealed segments.
    static func build(_ directory: String, clock: ManualMatchingClock) async throws {
        let engine = try SpoolEngine.open(directory: directory, configuration: configuration(clock, retention: nil))
        func start(_ id: String, _ i: Int) async throws {
            _ = try await engine.startWorkflowExecution(.init(workflowID: id, workflowType: "order", taskQueue: "q", input: HistoryFixture.input(i)))
        }
        func complete(_ commands: [Command]) async throws {
            let task = try #require(try await engine.pollWorkflowTaskQueue(taskQueue: "q", identity: "w", timeout: .zero))
            try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: commands, identity: "w")
        }
        for i in 0..<40 {
            try await start(i < 3 ? "old-again" : "old-\(i)", i)
            try await complete([.completeWorkflowExecution(.init(result: HistoryFixture.input(i)))])
        }
        clock.advance(by: .seconds(7200))
        for i in 0..<6 {
            try await start("live-\(i)", 2000 + i)
            try await complete([scheduleActivity("a\(i)", queue: "acts", input: HistoryFixture.input(3000 + i))])
        }
        for i in 0..<30 {
            try await start("recent-\(i)", 4000 + i)
            try await complete([.completeWorkflowExecution(.init(result: HistoryFixture.input(i)))])
        }
        try await engine.close()
    }

    /// Every run a stopped engine opened with `retention` shows, its description and history.
    static func view(_ directory: String, clock: ManualMatchingClock, retention: Duration?) async throws -> HistoryView {
        try await HistoryFixture.view(directory, configuration: configuration(clock, retention: retention))
    }

    static func tables(_ directory: String) -> [String] {
        directoryEntries(directory).filter { $0.hasPrefix(ClosedRunTable.filePrefix) }
    }

    @Test func compactionDropsExpiredRunsFromTheTableAndKeepsTheOthersAsTheyWere() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        try await Self.build(data, clock: h.clock)
        let store = CheckpointStore(directory: data, syscalls: SystemCalls())
        // The closed runs are in the table, and compaction can skim it (no run decoded).
        let (checkpoint, table) = try #require(try store.readCheckpoint())
        let oldTable = try #require(table)
        #expect(oldTable.count == 40 + 30)
        #expect(checkpoint.runs.count == 6)
        let skim = try #require(try store.readCheckpointSkim())
        #expect(skim.runs.filter { $0.tableIndex != nil && $0.state == nil }.count == 40 + 30)
        #expect(skim.runs.filter { $0.state != nil }.count == 6)

        // What a client saw before, without retention (every run) and with it, on copies: an
        // open writes a checkpoint at its close that would already drop the expired runs.
        let copy = h.directory + "/before"
        copyTree(data, to: copy)
        let everything = try await Self.view(copy, clock: h.clock, retention: nil)
        #expect(everything.runs.count == 40 + 6 + 30)
        let expected = HistoryView(runs: everything.runs.filter { !$0.contains("old-") },
                                   descriptions: everything.descriptions.filter { !$0.key.contains("old-") },
                                   histories: everything.histories.filter { !$0.key.contains("old-") })

        let summary = try SpoolEngine.compactHistory(directory: data, configuration: Self.configuration(h.clock, retention: HistoryFixture.retention))
        #expect(summary.runsDropped == 40)
        #expect(summary.runsKept == 6 + 30)
        #expect(summary.log.recordsDropped > 0)
        // One table, a new one, of the kept closed runs only.
        #expect(Self.tables(data).count == 1)
        let (after, newTable) = try #require(try store.readCheckpoint())
        let kept = try #require(newTable)
        #expect(kept.name != oldTable.name)
        #expect(after.runs.count == 6 && after.runs.allSatisfy { $0.state.isRunning })
        #expect(kept.count == 30)
        for index in 0..<kept.count { #expect(try kept.run(at: index).state.key.workflowID.hasPrefix("recent-")) }

        // Reopened without retention, the dropped runs are gone and the kept ones answer as before.
        #expect(try await Self.view(data, clock: h.clock, retention: nil) == expected)
        #expect(try await Self.view(data, clock: h.clock, retention: HistoryFixture.retention) == expected)
        // `spool recover --mode check` checks the new table's runs against their histories.
        let verification = try SpoolEngine.verifyHistory(directory: data)
        #expect(verification.findings == [] && verification.checkpointRuns == 6 + 30)
        // Idempotent.
        let again = try SpoolEngine.compactHistory(directory: data, configuration: Self.configuration(h.clock, retention: HistoryFixture.retention))
        #expect(again.runsDropped == 0 && again.log.recordsDropped == 0)
        #expect(try await Self.view(data, clock: h.clock, retention: nil) == expected)
    }

    /// The process stops at every mutating step of the compaction in turn (the table, the
    /// checkpoint, the segment swap): the reopened engine answers as after a whole compaction,
    /// and no table or temporary file is left once it has written its own checkpoint.
    @Test func aCrashAtEveryStepKeepsEveryLiveRun() async throws {
        let h = try EngineHarness()
        let template = h.directory + "/template"
        try await Self.build(template, clock: h.clock)
        let learning = h.directory + "/learning"
        copyTree(template, to: learning)
        let recorder = FaultInjectingSyscalls()
        let retention = HistoryFixture.retention
        let summary = try SpoolEngine.compactHistory(directory: learning, configuration: Self.configuration(h.clock, recorder, retention: retention))
        #expect(summary.runsDropped == 40)
        let steps = recorder.stepCount
        #expect(recorder.trace.contains { $0.operation == .rename && $0.destination?.contains("/closed-runs-") == true })
        let expected = try await Self.view(learning, clock: h.clock, retention: retention)
        #expect(expected.runs.count == 6 + 30)

        for k in 1...steps {
            let dir = h.directory + "/crash-\(k)"
            copyTree(template, to: dir)
            let faults = FaultInjectingSyscalls()
            faults.crash(atStep: k)
            #expect(throws: SpoolError.self, "step \(k)") {
                try SpoolEngine.compactHistory(directory: dir, configuration: Self.configuration(h.clock, faults, retention: retention))
            }
            #expect(try await Self.view(dir, clock: h.clock, retention: retention) == expected, "step \(k) of \(steps): \(recorder.trace.filter { $0.step == k })")
            let leftovers = directoryEntries(dir).filter { $0.hasSuffix(".tmp") }
            #expect(leftovers.isEmpty && Self.tables(dir).count <= 1, "step \(k): \(leftovers) \(Self.tables(dir))")
            _ = try SpoolEngine.compactHistory(directory: dir, configuration: Self.configuration(h.clock, retention: retention))
            #expect(try await Self.view(dir, clock: h.clock, retention: retention) == expected, "step \(k), compacted again")
            #expect(try SpoolEngine.verifyHistory(directory: dir).findings == [], "step \(k)")
            removeTree(dir)
        }
    }

    @Test func theHistoryCheckReadsTheTableAndReportsItDamaged() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        try await Self.build(data, clock: h.clock)
        let clean = try SpoolEngine.verifyHistory(directory: data)
        #expect(clean.findings == [] && clean.checkpointRuns == 40 + 6 + 30)
        // One byte of the table flipped: the open would ignore the checkpoint, and check says so.
        let table = data + "/" + (try #require(Self.tables(data).first))
        let fd = open(table, O_RDWR)
        #expect(fd >= 0)
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, 100) == 1)
        byte ^= 0xFF
        #expect(pwrite(fd, &byte, 1, 100) == 1)
        close(fd)
        let damaged = try SpoolEngine.verifyHistory(directory: data)
        #expect(damaged.findings.map(\.kind) == [.checkpointUnreadable])
        // Compaction then plans from the whole log, as an open would, and writes a sound store.
        let summary = try SpoolEngine.compactHistory(directory: data, configuration: Self.configuration(h.clock, retention: HistoryFixture.retention))
        #expect(summary.runsKept == 6 + 30 && summary.runsDropped == 40)
        #expect(try SpoolEngine.verifyHistory(directory: data).findings == [])
    }

    @Test func aLayout1CheckpointIsDecodedAndCompactedIntoTheCurrentLayout() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        try await HistoryFixture.build(data, clock: h.clock)
        let store = CheckpointStore(directory: data, syscalls: SystemCalls())
        // The fixture's checkpoint as layout 1: no table field, every run in the file.
        let bytes = try #require(try store.read())
        let checkpoint = try EngineCheckpoint.decode(bytes)
        #expect(checkpoint.closedTable == nil)
        let v1 = checkpoint.layout1Bytes()
        try store.write(v1)
        // Its runs are in the flat value layout: decoded in full (never copied as bytes into the
        // new checkpoint), every run with its state.
        let skim = try #require(try store.readCheckpointSkim())
        #expect(skim.runs.count == checkpoint.runs.count && skim.table == nil && skim.runs.allSatisfy { $0.entry == nil && $0.state != nil })

        let copy = h.directory + "/before"
        copyTree(data, to: copy)
        let before = try await HistoryFixture.view(copy, clock: h.clock)
        let summary = try SpoolEngine.compactHistory(directory: data, configuration: HistoryFixture.configuration(h.clock))
        #expect(summary.runsDropped > 40)
        let written = try #require(try store.read())
        #expect(written[EngineCheckpoint.magic.count] == EngineCheckpoint.version)
        #expect(try await HistoryFixture.view(data, clock: h.clock) == before)
    }
}
