import SpoolLog
import SpoolMatching
import Testing
@testable import Spool

/// SplitMix64: a seeded generator, so a failing store can be built again.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The visibility index (point 4 of issue 20): its answers are the full scan's, for every
/// operator and attribute type, live, after a checkpoint moved closed runs to the closed-run
/// table, and after a reopen; paging with it; a crash between an upsert and the next
/// checkpoint; retention taking runs out of it.
@Suite struct SpoolEngineVisibilityIndexTests {
    /// Reopens `h`'s directory with a closed-run table merge at every checkpoint with a closed run.
    static func reopenMergingEveryCheckpoint(_ h: EngineHarness) async throws {
        try await h.engine.close()
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(h.clock)
        configuration.log = LogConfiguration(durability: h.durability)
        configuration.firesTimersAutomatically = false
        configuration.closedRunTableMergeThreshold = 1
        h.engine = try SpoolEngine.open(directory: h.directory + "/data", configuration: configuration)
    }

    static let customAttributes: [String: IndexedValueType] = [
        "Customer": .keyword, "Tags": .keywordList, "Amount": .double, "Items": .int,
        "DueAt": .datetime, "Notes": .text, "Rush": .bool,
    ]

    /// Random attributes for a run (each one present or not).
    static func randomAttributes(_ rng: inout SeededGenerator) -> [String: Payload] {
        var attributes: [String: Payload] = [:]
        if Bool.random(using: &rng) { attributes["Customer"] = .json("\"c\(Int.random(in: 0..<8, using: &rng))\"") }
        if Bool.random(using: &rng) {
            let tags = ["red", "blue", "green"].filter { _ in Bool.random(using: &rng) }
            attributes["Tags"] = .json("[" + tags.map { "\"\($0)\"" }.joined(separator: ",") + "]")
        }
        if Bool.random(using: &rng) {
            let n = Int.random(in: 0..<100, using: &rng)
            attributes["Amount"] = .json(Bool.random(using: &rng) ? "\(n)" : "\(Double(n) / 4)")
        }
        if Bool.random(using: &rng) { attributes["Items"] = .json("\(Int.random(in: 0..<6, using: &rng))") }
        if Bool.random(using: &rng) {
            let day = Int.random(in: 1...28, using: &rng)
            attributes["DueAt"] = .json("\"2026-12-\(day < 10 ? "0" : "")\(day)T12:00:00Z\"")
        }
        if Bool.random(using: &rng) { attributes["Notes"] = .json(Bool.random(using: &rng) ? "\"fast lane\"" : "\"slow boat\"") }
        if Bool.random(using: &rng) { attributes["Rush"] = .json(Bool.random(using: &rng) ? "true" : "false") }
        return attributes
    }

    /// Starts 120 runs over 4 types and 3 task queues with random attributes (some at the same
    /// start time), closes and upserts some at random, with a checkpoint half way that moves the
    /// closed runs of then to the closed-run table.
    static func buildRandomStore(_ h: EngineHarness, seed: UInt64) async throws {
        var rng = SeededGenerator(seed: seed)
        try h.engine.addSearchAttributes(customAttributes)
        for index in 0..<120 {
            h.clock.advance(by: .seconds(Int64.random(in: 0...2, using: &rng)))
            _ = try await h.engine.startWorkflowExecution(.init(
                workflowID: "w\(index)", workflowType: "t\(Int.random(in: 0..<4, using: &rng))",
                taskQueue: "q\(Int.random(in: 0..<3, using: &rng))", searchAttributes: randomAttributes(&rng)))
            if index % 3 == 2 { try await closeOrUpsert(h, &rng) }
            if index == 60 { try await h.engine.checkpoint() }
        }
    }

    /// Terminates a random run, or completes or upserts the search attributes of the run whose
    /// workflow task a random queue hands out.
    static func closeOrUpsert(_ h: EngineHarness, _ rng: inout SeededGenerator) async throws {
        h.clock.advance(by: .milliseconds(Int64.random(in: 1...900, using: &rng)))
        switch Int.random(in: 0..<3, using: &rng) {
        case 0:
            _ = try? await h.engine.terminateWorkflowExecution(execution: WorkflowExecution(workflowID: "w\(Int.random(in: 0..<40, using: &rng))"),
                                                               reason: "random")
        default:
            guard let task = try await h.pollWorkflowTask("q\(Int.random(in: 0..<3, using: &rng))") else { return }
            let command: Command = Bool.random(using: &rng)
                ? .completeWorkflowExecution(.init())
                : .upsertWorkflowSearchAttributes(.init(searchAttributes: randomAttributes(&rng)))
            try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [command], identity: "worker")
        }
    }

    /// Queries over each operator and each attribute type (predefined and custom).
    static func queries(_ h: EngineHarness) -> [String] {
        let base = Int64(EngineHarness.epoch.nanoseconds)
        func time(_ seconds: Int64) -> String { RFC3339.format(Timestamp(nanosecondsSinceEpoch: base + seconds * 1_000_000_000)) }
        return [
            "", "WorkflowType = 't1'", "WorkflowType != 't1'", "WorkflowType IN ('t0', 't2')", "WorkflowType NOT IN ('t0')",
            "WorkflowType BETWEEN 't1' AND 't2'", "WorkflowType > 't2'", "WorkflowId = 'w7'", "WorkflowId IN ('w1', 'w100', 'nope')",
            "WorkflowId STARTS_WITH 'w1'", "WorkflowId NOT STARTS_WITH 'w1'", "TaskQueue = 'q2' AND ExecutionStatus = 'Running'",
            "ExecutionStatus = 'Completed'", "ExecutionStatus IN ('Completed', 'Terminated')", "ExecutionStatus != 'Running'",
            "ExecutionStatus = 'Running' OR ExecutionStatus = 'Terminated'", "RunId IS NOT NULL",
            "StartTime > '\(time(60))'", "StartTime <= \(base + 30_000_000_000)", "StartTime BETWEEN '\(time(40))' AND '\(time(90))'",
            "StartTime NOT BETWEEN '\(time(40))' AND '\(time(90))'", "StartTime = '\(time(50))'",
            "CloseTime IS NULL", "CloseTime IS NOT NULL", "CloseTime >= '\(time(100))'", "CloseTime < '\(time(100))'",
            "ExecutionTime < '\(time(80))'", "ExecutionDuration > 5000000000", "HistoryLength >= 3",
            "Customer = 'c3'", "Customer IN ('c1', 'c2')", "Customer != 'c1'", "Customer STARTS_WITH 'c1'",
            "Customer BETWEEN 'c2' AND 'c5'", "Customer IS NULL", "Customer NOT IN ('c0', 'c7')",
            "Tags = 'red'", "Tags IN ('red', 'blue')", "Tags != 'red'", "Tags NOT IN ('blue')", "Tags IS NOT NULL",
            "Amount > 50", "Amount <= 20.5", "Amount BETWEEN 10 AND 60", "Amount = 42", "Amount != 42", "Amount NOT BETWEEN 10 AND 60",
            "Items >= 3", "Items < 2", "Items = 4", "Items NOT BETWEEN 2 AND 4", "Items IN (1, 5)", "Items > 2.5",
            "DueAt > '2026-12-15T00:00:00Z'", "DueAt BETWEEN '2026-12-05T00:00:00Z' AND '2026-12-20T12:00:00Z'", "DueAt = '2026-12-10T12:00:00Z'",
            "Notes = 'fast'", "Notes != 'lane'", "Rush = true", "Rush != false", "Rush IS NULL",
            "WorkflowType = 't1' AND Amount > 30", "(Customer = 'c1' OR Tags = 'red') AND ExecutionStatus = 'Running'",
            "NOT WorkflowType = 't0'", "WorkflowType = 't3' AND StartTime > '\(time(30))' AND Items < 4",
            "WorkflowType = 't2' ORDER BY CloseTime DESC", "ORDER BY StartTime ASC", "Customer = 'c2' ORDER BY ExecutionTime DESC",
            "Amount > 10 ORDER BY CloseTime ASC, StartTime DESC",
        ]
    }

    /// Every page of `query` with `plan`, in order.
    static func listAll(_ engine: SpoolEngine, _ query: String, pageSize: Int, plan: VisibilityPlan) throws -> [String] {
        var ids: [String] = []
        var token: [UInt8]?
        repeat {
            let page = try engine.listWorkflowExecutions(query: query, pageSize: pageSize, nextPageToken: token, plan: plan)
            ids += page.executions.map { "\($0.execution.workflowID)/\($0.execution.runID)" }
            token = page.nextPageToken
        } while token != nil
        return ids
    }

    static func expectIndexAnswersScanAnswers(_ h: EngineHarness, _ rng: inout SeededGenerator, _ when: String) throws {
        for query in queries(h) {
            let pageSize = Int.random(in: 1...25, using: &rng)
            let scanned = try listAll(h.engine, query, pageSize: pageSize, plan: .scan)
            let indexed = try listAll(h.engine, query, pageSize: pageSize, plan: .index)
            #expect(indexed == scanned, "\(when): \(query) (page size \(pageSize))")
            if !query.contains("ORDER BY") {
                #expect(try h.engine.countWorkflowExecutions(query: query, plan: .index)
                        == h.engine.countWorkflowExecutions(query: query, plan: .scan), "\(when): count \(query)")
            }
        }
        for query in ["GROUP BY ExecutionStatus", "WorkflowType = 't1' GROUP BY ExecutionStatus", "ExecutionStatus = 'Running' GROUP BY ExecutionStatus",
                      "ExecutionStatus IN ('Completed', 'Terminated') GROUP BY ExecutionStatus"] {
            #expect(try h.engine.countWorkflowExecutions(query: query, plan: .index)
                    == h.engine.countWorkflowExecutions(query: query, plan: .scan), "\(when): count \(query)")
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func indexAnswersAreTheScansOverARandomStore(seed: UInt64) async throws {
        let h = try EngineHarness(durability: .sync)
        try await Self.reopenMergingEveryCheckpoint(h)
        try await Self.buildRandomStore(h, seed: seed)
        var rng = SeededGenerator(seed: seed &* 31)
        // The scan is the reference: it must have something to find.
        #expect(try h.engine.countWorkflowExecutions(query: "", plan: .scan).count == 120)
        #expect(try h.engine.countWorkflowExecutions(query: "ExecutionStatus != 'Running'", plan: .scan).count > 10)
        try Self.expectIndexAnswersScanAnswers(h, &rng, "live")
        try await h.engine.checkpoint()
        try Self.expectIndexAnswersScanAnswers(h, &rng, "after a checkpoint")
        // Reopened: the closed runs of the table are the index's base rows, loaded at open from
        // the table's visibility section (nothing is left to index at the first query).
        try await h.closeAndReopen()
        #expect(!h.engine.visibility.pendingTable.withLock { $0 })
        #expect(h.engine.visibility.state.withLock { $0.baseCount } > 0)
        try Self.expectIndexAnswersScanAnswers(h, &rng, "after a reopen")
        // More changes on top of the reopened index.
        for _ in 0..<20 { try await Self.closeOrUpsert(h, &rng) }
        try Self.expectIndexAnswersScanAnswers(h, &rng, "after changes since the reopen")
        try await h.engine.close()
        let check = try await SpoolEngine.verifyVisibility(directory: h.directory + "/data")
        #expect(check.isClean, "\(check.findings)")
        #expect(check.indexedRuns == 120 && check.runsFromHistory == 120)
        h.engine = try EngineHarness.open(h.directory, clock: h.clock, durability: .sync)
    }

    @Test func newestOfOneTypeWalksAboutAPageOfTheIndex() async throws {
        let h = try EngineHarness()
        for index in 0..<300 {
            h.clock.advance(by: .seconds(1))
            try await h.start("w\(index)", type: index % 3 == 0 ? "rare" : "common", queue: "q")
        }
        let page = try h.engine.listWorkflowExecutions(query: "WorkflowType = 'rare'", pageSize: 10)
        // Newest first: w297, w294, … (every third run is "rare").
        #expect(page.executions.map(\.execution.workflowID) == stride(from: 297, to: 267, by: -3).map { "w\($0)" })
        let count = try h.engine.countWorkflowExecutions(query: "WorkflowType = 'rare'")
        #expect(count.count == 100)
        // The walk is bounded by the page, not the store: a posting of 100 runs, 11 looked at
        // (the page and one more to know whether there is a next page).
        let walked = h.engine.visibility.newestFirst(namespace: "default", .keyword(.predefined(.workflowType, "rare")), below: nil, count: 11).0
        #expect(walked.map(\.key.workflowID) == stride(from: 297, to: 264, by: -3).map { "w\($0)" })
    }

    @Test func pagingWithTheIndexSurvivesStartsClosesUpsertsAndACheckpoint() async throws {
        let h = try EngineHarness(durability: .sync)
        try await Self.reopenMergingEveryCheckpoint(h)
        try h.engine.addSearchAttributes(["Customer": .keyword])
        var runs: [WorkflowExecution] = []
        for index in 0..<30 {
            h.clock.advance(by: .seconds(index % 4 == 0 ? 0 : 1))   // some share a start time
            let response = try await h.engine.startWorkflowExecution(.init(
                workflowID: "w\(index)", workflowType: "order", taskQueue: "q\(index)",
                searchAttributes: ["Customer": .json("\"c\(index % 2)\"")]))
            runs.append(WorkflowExecution(workflowID: "w\(index)", runID: response.runID))
        }
        let query = "WorkflowType = 'order'"
        let expected = try Self.listAll(h.engine, query, pageSize: 100, plan: .scan)
        var seen: [String] = []
        var page = try h.engine.listWorkflowExecutions(query: query, pageSize: 4)
        var round = 0
        while true {
            seen += page.executions.map { "\($0.execution.workflowID)/\($0.execution.runID)" }
            guard let token = page.nextPageToken else { break }
            // Between pages: new runs start (newer: not in this pass), runs on both sides of the
            // position close or change their attributes, and a checkpoint moves closed runs to the table.
            round += 1
            h.clock.advance(by: .seconds(1))
            try await h.start("late\(round)", type: "order", queue: "late")
            let victim = runs[(round * 7) % runs.count]
            _ = try? await h.engine.terminateWorkflowExecution(execution: victim, reason: "test")
            if let task = try await h.pollWorkflowTask("q\((round * 5) % runs.count)") {
                try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [
                    .upsertWorkflowSearchAttributes(.init(searchAttributes: ["Customer": .json("\"changed\"")])),
                ])
            }
            if round % 3 == 0 { try await h.engine.checkpoint() }
            page = try h.engine.listWorkflowExecutions(query: query, pageSize: 4, nextPageToken: token)
        }
        #expect(seen == expected)
        #expect(seen.count == 30)
    }

    @Test func aCrashBetweenAnUpsertAndTheNextCheckpointLeavesTheIndexAgreeingWithTheHistory() async throws {
        let h = try EngineHarness(durability: .sync, injectingFaults: true)
        try h.engine.addSearchAttributes(["Customer": .keyword, "Amount": .int])
        for index in 0..<6 {
            h.clock.advance(by: .seconds(1))
            _ = try await h.engine.startWorkflowExecution(.init(
                workflowID: "w\(index)", workflowType: "order", taskQueue: "q\(index)",
                searchAttributes: ["Customer": .json("\"before\""), "Amount": .json("1")]))
        }
        try await h.engine.checkpoint()
        // Each step upserts one run; the process dies after it at a different point each time:
        // after the call returned, or after its append became durable but before the call knew.
        for step in 0..<6 {
            let task = try #require(try await h.pollWorkflowTask("q\(step)"))
            if step % 2 == 1 { h.crashAfterNextAppend() }
            do {
                try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [
                    .upsertWorkflowSearchAttributes(.init(searchAttributes: ["Customer": .json("\"after\""), "Amount": .json("\(10 + step)")])),
                ])
                #expect(step % 2 == 0)
            } catch {
                #expect(step % 2 == 1 && isSpoolError(error, .storage))
            }
            try await h.crashAndReopen()
            // The upsert is in the history (durable) and in the index after the reopen.
            let after = try h.engine.listWorkflowExecutions(query: "Customer = 'after'").executions.map(\.execution.workflowID)
            #expect(Set(after) == Set((0...step).map { "w\($0)" }))
            #expect(try h.engine.countWorkflowExecutions(query: "Customer = 'before'").count == Int64(5 - step))
            #expect(try h.engine.listWorkflowExecutions(query: "Amount = \(10 + step)").executions.map(\.execution.workflowID) == ["w\(step)"])
            #expect(try Self.listAll(h.engine, "Amount >= 10", pageSize: 2, plan: .index) == Self.listAll(h.engine, "Amount >= 10", pageSize: 2, plan: .scan))
            // Rebuilt from the histories, the index is the same.
            await h.engine.abandon()
            let check = try await SpoolEngine.verifyVisibility(directory: h.directory + "/data")
            #expect(check.isClean, "\(check.findings)")
            #expect(check.indexedRuns == 6)
            try await h.crashAndReopen()
        }
    }

    @Test func theCheckFindsAnIndexThatDisagreesWithTheHistories() async throws {
        let h = try EngineHarness()
        try await h.start("w0", type: "order")
        try await h.start("w1", type: "order", queue: "other")
        var states = h.engine.registry.allStates(namespace: "default")
        // A history that says another type than the index holds, and one the index lacks.
        let index = try #require(states.firstIndex { $0.key.workflowID == "w0" })
        states[index].workflowType = "refund"
        h.engine.visibility.remove(try #require(states.first { $0.key.workflowID == "w1" }).key)
        let result = h.engine.compareVisibility(with: states)
        #expect(result.findings.count == 2)
        #expect(result.findings.map(\.execution.workflowID) == ["w0", "w1"])
        #expect(result.findings[0].message.contains("WorkflowType='order'") && result.findings[0].message.contains("WorkflowType='refund'"), "\(result.findings[0].message)")
        #expect(result.findings[1].message == "its history shows it, the index does not hold it")
    }

    @Test func retentionTakesRunsOutOfTheIndex() async throws {
        let h = try EngineHarness(durability: .sync)
        try await Self.reopenMergingEveryCheckpoint(h)
        try h.engine.registerNamespace("short", retention: .seconds(3600))
        func start(_ id: String, _ namespace: String) async throws -> WorkflowExecution {
            let response = try await h.engine.startWorkflowExecution(.init(namespace: namespace, workflowID: id, workflowType: "order", taskQueue: "q"))
            return WorkflowExecution(workflowID: id, runID: response.runID)
        }
        var closed: [(String, WorkflowExecution)] = []
        for index in 0..<4 {
            h.clock.advance(by: .seconds(1))
            for namespace in ["default", "short"] {
                let run = try await start("w\(index)", namespace)
                if index < 3 { closed.append((namespace, run)) }
            }
        }
        for (namespace, run) in closed {
            try await h.engine.terminateWorkflowExecution(namespace: namespace, execution: run, reason: "done")
        }
        // Two of the closed runs go to the closed-run table (and out of memory).
        try await h.engine.checkpoint()
        func counts(_ namespace: String) throws -> (index: WorkflowExecutionCount, scan: WorkflowExecutionCount) {
            (try h.engine.countWorkflowExecutions(namespace: namespace, query: "GROUP BY ExecutionStatus"),
             try h.engine.countWorkflowExecutions(namespace: namespace, query: "GROUP BY ExecutionStatus", plan: .scan))
        }
        #expect(try counts("short").index.count == 4)
        await h.advance(.seconds(3601))
        // "short" keeps only its open run; "default" (7 days) keeps all four.
        for namespace in ["short", "default"] {
            let (index, scan) = try counts(namespace)
            #expect(index == scan)
            #expect(try Self.listAll(h.engine, "", pageSize: 2, plan: .index) == Self.listAll(h.engine, "", pageSize: 2, plan: .scan))
        }
        #expect(try counts("short").index == WorkflowExecutionCount(count: 1, groups: [.init(values: [.keyword("Running")], count: 1)]))
        #expect(try h.engine.listWorkflowExecutions(namespace: "short", query: "ExecutionStatus = 'Terminated'").executions.isEmpty)
        #expect(try counts("default").index.count == 4)
        #expect(!h.engine.visibility.snapshot.keys.contains { $0.namespace == "short" && $0.workflowID != "w3" })
        // After a reopen, runs of the table past their retention are not indexed again.
        try await h.closeAndReopen()
        #expect(try counts("short").index == WorkflowExecutionCount(count: 1, groups: [.init(values: [.keyword("Running")], count: 1)]))
        #expect(try counts("short").index == counts("short").scan)
        #expect(try counts("default").index == counts("default").scan)
    }

    /// Retention empties every posting of some values (a workflow type, a status, a queue) and
    /// their slots go to the next keys indexed (new workflow ids); a value that comes back gets a
    /// posting of its own, and the index still answers as the scan does. (The index keeps the slots
    /// of recent status, type and queue values: a slot handed to another key must leave that memo.)
    @Test func aValueWhoseRunsAllLeftIsIndexedAgainWhenItComesBack() async throws {
        let h = try EngineHarness(durability: .sync)
        try h.engine.registerNamespace("short", retention: .seconds(3600))
        func start(_ id: String, type: String) async throws -> WorkflowExecution {
            let response = try await h.engine.startWorkflowExecution(.init(namespace: "short", workflowID: id, workflowType: type, taskQueue: "gone"))
            return WorkflowExecution(workflowID: id, runID: response.runID)
        }
        func list(_ query: String, _ plan: VisibilityPlan) throws -> [String] {
            try h.engine.listWorkflowExecutions(namespace: "short", query: query, pageSize: 100, plan: plan).executions
                .map(\.execution.workflowID).sorted()
        }
        for index in 0..<3 {
            let run = try await start("old\(index)", type: "once")
            try await h.engine.terminateWorkflowExecution(namespace: "short", execution: run, reason: "done")
        }
        await h.advance(.seconds(3601))
        #expect(try list("", .index).isEmpty)
        var runs: [WorkflowExecution] = []
        for index in 0..<6 { runs.append(try await start("new\(index)", type: index == 0 ? "once" : "other")) }
        try await h.engine.terminateWorkflowExecution(namespace: "short", execution: runs[0], reason: "done")
        #expect(try list("ExecutionStatus = 'Terminated'", .index) == ["new0"])
        #expect(try list("WorkflowType = 'once'", .index) == ["new0"])
        #expect(try list("TaskQueue = 'gone' AND ExecutionStatus = 'Running'", .index) == ["new1", "new2", "new3", "new4", "new5"])
        for query in ["", "ExecutionStatus = 'Terminated'", "ExecutionStatus = 'Running'", "WorkflowType = 'other'",
                      "WorkflowType = 'once'", "TaskQueue = 'gone'", "WorkflowId = 'new5'", "WorkflowId = 'old2'"] {
            #expect(try list(query, .index) == list(query, .scan), "\(query)")
        }
    }
}
