#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import Spool

/// Everything a client can read of a stopped engine: every visible run, its description and
/// its whole history, listed in order.
struct HistoryView: Equatable {
    var runs: [String] = []
    var descriptions: [String: DescribeWorkflowExecutionResponse] = [:]
    var histories: [String: [HistoryEvent]] = [:]
}

enum HistoryFixture {
    static let retention: Duration = .seconds(3600)

    static func configuration(_ clock: ManualMatchingClock, _ syscalls: any Syscalls = SystemCalls(),
                              retention: Duration? = HistoryFixture.retention) -> SpoolEngineConfiguration {
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(clock)
        configuration.log = LogConfiguration(durability: .none)
        configuration.log.segmentBytes = 64 << 10
        configuration.log.maxRecordBytes = 16 << 10
        configuration.log.preallocationBytes = 0
        configuration.log.syscalls = syscalls
        configuration.firesTimersAutomatically = false
        configuration.closedRunRetention = retention
        return configuration
    }

    static func input(_ i: Int) -> Payloads { .binary((0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }) }

    /// A stopped engine over several segments: 60 runs closed two hours ago (past the one-hour
    /// retention), a continue-as-new chain whose first run is past retention and whose second
    /// is open, open runs with activities, runs closed within retention.
    static func build(_ directory: String, clock: ManualMatchingClock) async throws {
        let engine = try SpoolEngine.open(directory: directory, configuration: configuration(clock))
        func start(_ id: String, _ i: Int) async throws -> WorkflowExecution {
            let response = try await engine.startWorkflowExecution(.init(workflowID: id, workflowType: "order", taskQueue: "q", input: input(i)))
            return WorkflowExecution(workflowID: id, runID: response.runID)
        }
        func complete(_ commands: [Command]) async throws {
            let task = try #require(try await engine.pollWorkflowTaskQueue(taskQueue: "q", identity: "w", timeout: .zero))
            try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: commands, identity: "w")
        }
        // First, so that the chain's first run starts in a segment the compaction rewrites.
        _ = try await start("chain", 1000)
        try await complete([.continueAsNewWorkflowExecution(.init(workflowType: "order", taskQueue: "chained", input: input(1001)))])
        for i in 0..<60 {
            _ = try await start("old-\(i)", i)
            try await complete([.completeWorkflowExecution(.init(result: input(i)))])
        }
        clock.advance(by: .seconds(7200))
        for i in 0..<8 {
            _ = try await start("live-\(i)", 2000 + i)
            try await complete([scheduleActivity("a\(i)", queue: "acts", input: input(3000 + i))])
        }
        for i in 0..<4 {
            _ = try await start("recent-\(i)", 4000 + i)
            try await complete([.completeWorkflowExecution(.init(result: .binary([UInt8(i)])))])
        }
        try await engine.close()
    }

    static func view(_ directory: String, clock: ManualMatchingClock) async throws -> HistoryView {
        try await view(directory, configuration: configuration(clock))
    }

    /// Every run an engine opened on `directory` with `configuration` shows, its description and history.
    static func view(_ directory: String, configuration: SpoolEngineConfiguration) async throws -> HistoryView {
        let engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        var view = HistoryView()
        for info in engine.listWorkflowExecutions().sorted(by: { $0.execution.description < $1.execution.description }) {
            let key = info.execution.description
            view.runs.append(key)
            view.descriptions[key] = try engine.describeWorkflowExecution(execution: info.execution)
            view.histories[key] = try await engine.getWorkflowExecutionHistory(execution: info.execution, maximumPageSize: 100_000).history
        }
        try await engine.close()
        return view
    }

    /// The view when the engine must replay the whole log (no checkpoint), on a copy.
    static func viewByFullReplay(_ directory: String, clock: ManualMatchingClock) async throws -> HistoryView {
        let copy = directory + "-replay"
        copyTree(directory, to: copy)
        defer { removeTree(copy) }
        unlink(copy + "/checkpoint")
        return try await view(copy, clock: clock)
    }

}

@Suite struct SpoolEngineCompactionTests {
    @Test func aCompactedHistoryAnswersEveryQueryAsBefore() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        try await HistoryFixture.build(data, clock: h.clock)
        let before = try await HistoryFixture.view(data, clock: h.clock)
        #expect(before.runs.count == 8 + 4 + 1)
        #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock) == before)

        let summary = try SpoolEngine.compactHistory(directory: data, configuration: HistoryFixture.configuration(h.clock))
        // The reopens above already forgot the expired runs (their checkpoint no longer names
        // them): their records are dropped as belonging to no run.
        #expect(summary.runsDropped == 0)
        #expect(summary.runsKept == 13)
        #expect(summary.log.recordsDropped > summary.log.recordsKept)
        #expect(summary.log.bytesAfter < summary.log.bytesBefore / 2)
        #expect(try await HistoryFixture.view(data, clock: h.clock) == before)
        // Without the checkpoint, full replay skips the closing changes of the expired first run
        // of the chain, kept in the record it shares with the open second run.
        #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock) == before)

        // Idempotent.
        let again = try SpoolEngine.compactHistory(directory: data, configuration: HistoryFixture.configuration(h.clock))
        #expect(again.log.recordsDropped == 0)
        #expect(again.runsDropped == 0)
        #expect(try await HistoryFixture.view(data, clock: h.clock) == before)
    }

    @Test func aShorterRetentionDropsRecentRunsToo() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        try await HistoryFixture.build(data, clock: h.clock)
        // Open runs a minute after them, so that the recent runs are in sealed segments and the
        // log's own time (which bounds the retention clock) is past their 30 s retention.
        h.clock.advance(by: .seconds(60))
        let engine = try SpoolEngine.open(directory: data, configuration: HistoryFixture.configuration(h.clock))
        for i in 0..<80 {
            _ = try await engine.startWorkflowExecution(.init(workflowID: "filler-\(i)", workflowType: "order", taskQueue: "f", input: HistoryFixture.input(i)))
        }
        try await engine.close()
        let summary = try SpoolEngine.compactHistory(directory: data, configuration: HistoryFixture.configuration(h.clock, retention: .seconds(30)))
        #expect(summary.runsDropped == 4)
        // The engine reopened with its longer retention no longer has them (the checkpoint says so).
        let after = try await HistoryFixture.view(data, clock: h.clock)
        #expect(after.runs.count == 9 + 80)
        #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock).runs.count == 9 + 80)
        #expect(!after.runs.contains { $0.contains("recent") })
    }

    /// Issue 25, point 6 ("time cannot delete data"), offline: `spool compact` under a clock 30
    /// days ahead (`faketime`) drops no run closed less than a retention before the log's newest
    /// record, as a live engine would not.
    @Test func aClockFarAheadDropsNoRunWithinRetentionOfTheNewestRecord() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        let engine = try SpoolEngine.open(directory: data, configuration: HistoryFixture.configuration(h.clock))
        var closed: [WorkflowExecution] = []
        for id in ["first", "second"] {
            let started = try await engine.startWorkflowExecution(.init(workflowID: id, workflowType: "order", taskQueue: "q"))
            let run = WorkflowExecution(workflowID: id, runID: started.runID)
            try await engine.terminateWorkflowExecution(execution: run)
            closed.append(run)
            h.clock.advance(by: .seconds(600))
        }
        // Open runs after them, so that the closed runs' records are in sealed segments, which
        // compaction rewrites.
        for i in 0..<80 {
            _ = try await engine.startWorkflowExecution(.init(workflowID: "filler-\(i)", workflowType: "order", taskQueue: "f", input: HistoryFixture.input(i)))
        }
        try await engine.close()
        h.clock.advance(by: .seconds(30 * 24 * 3600))
        let summary = try SpoolEngine.compactHistory(directory: data, configuration: HistoryFixture.configuration(h.clock))
        #expect(summary.runsDropped == 0)
        let after = try await HistoryFixture.view(data, configuration: HistoryFixture.configuration(h.clock, retention: nil))
        for run in closed { #expect(after.runs.contains { $0.contains(run.workflowID) }, "\(run) is gone") }
    }

    @Test func aDryRunWritesNothing() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        try await HistoryFixture.build(data, clock: h.clock)
        let files = fileTree(data)
        let planned = try SpoolEngine.compactHistory(directory: data, configuration: HistoryFixture.configuration(h.clock), dryRun: true)
        #expect(fileTree(data) == files)
        let done = try SpoolEngine.compactHistory(directory: data, configuration: HistoryFixture.configuration(h.clock))
        #expect(planned.runsDropped > 40)
        #expect(planned.runsDropped == done.runsDropped)
        #expect(planned.log.recordsKept == done.log.recordsKept)
        #expect(planned.log.recordsDropped == done.log.recordsDropped)
    }

    @Test func compactionRefusesARunningEngine() async throws {
        let h = try EngineHarness()
        let error = #expect(throws: SpoolError.self) {
            try SpoolEngine.compactHistory(directory: h.directory + "/data", configuration: HistoryFixture.configuration(h.clock))
        }
        #expect(error?.code == .storage)
        #expect("\(String(describing: error))".contains("directoryLocked"))
    }
}

/// The process stops at every mutating step of a history compaction in turn — the checkpoint
/// rewrite and the segment swap: the reopened engine, from its checkpoint and by full replay,
/// answers every query as before.
@Suite struct SpoolEngineCompactionCrashTests {
    @Test func aCrashAtEveryStepKeepsEveryLiveRun() async throws {
        let h = try EngineHarness()
        let template = h.directory + "/template"
        try await HistoryFixture.build(template, clock: h.clock)
        let learning = h.directory + "/learning"
        copyTree(template, to: learning)
        let recorder = FaultInjectingSyscalls()
        let summary = try SpoolEngine.compactHistory(directory: learning, configuration: HistoryFixture.configuration(h.clock, recorder))
        #expect(summary.runsDropped > 0)
        let steps = recorder.stepCount
        #expect(recorder.trace.contains { $0.operation == .rename && $0.destination?.hasSuffix("/checkpoint") == true })
        #expect(recorder.trace.contains { $0.operation == .rename && $0.destination?.hasSuffix("swap-manifest") == true })
        let expected = try await HistoryFixture.view(learning, clock: h.clock)
        #expect(expected.runs.count == 13)

        for k in 1...steps {
            let dir = h.directory + "/crash-\(k)"
            copyTree(template, to: dir)
            let faults = FaultInjectingSyscalls()
            faults.crash(atStep: k)
            #expect(throws: SpoolError.self, "step \(k)") {
                try SpoolEngine.compactHistory(directory: dir, configuration: HistoryFixture.configuration(h.clock, faults))
            }
            #expect(try await HistoryFixture.viewByFullReplay(dir, clock: h.clock) == expected, "step \(k) of \(steps), full replay")
            #expect(try await HistoryFixture.view(dir, clock: h.clock) == expected, "step \(k) of \(steps): \(recorder.trace.filter { $0.step == k })")
            let leftovers = Self.fileNames(dir + "/history").filter { $0.contains(".cleaned") || $0 == "swap-manifest" || $0.hasSuffix(".tmp") }
            #expect(leftovers.isEmpty, "step \(k): \(leftovers)")
            _ = try SpoolEngine.compactHistory(directory: dir, configuration: HistoryFixture.configuration(h.clock))
            #expect(try await HistoryFixture.view(dir, clock: h.clock) == expected, "step \(k), compacted again")
            removeTree(dir)
        }
    }

    static func fileNames(_ path: String) -> [String] { fileTree(path).keys.sorted() }
}
