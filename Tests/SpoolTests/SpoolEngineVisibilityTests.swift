import SpoolMatching
import Testing
@testable import Spool

/// List and Count with the visibility query language, through the engine's public API. Expected
/// answers come from what each test did to which run, not from the engine.
@Suite struct SpoolEngineVisibilityTests {
    /// Starts `count` runs `w0`, `w1`, … one second apart (so start order is known), of type
    /// `type`, each on its own task queue.
    func startRuns(_ h: EngineHarness, _ count: Int, prefix: String = "w", type: String = "order") async throws -> [WorkflowExecution] {
        var runs: [WorkflowExecution] = []
        for index in 0..<count {
            h.clock.advance(by: .seconds(1))
            runs.append(try await h.start("\(prefix)\(index)", type: type, queue: "q-\(prefix)\(index)"))
        }
        return runs
    }

    func complete(_ h: EngineHarness, _ run: WorkflowExecution) async throws {
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init())], queue: "q-\(run.workflowID)")
    }

    func ids(_ page: WorkflowExecutionPage) -> [String] { page.executions.map(\.execution.workflowID) }

    @Test func filtersByTypeStatusAndTime() async throws {
        let h = try EngineHarness()
        let orders = try await startRuns(h, 4, prefix: "o", type: "order")
        let refunds = try await startRuns(h, 2, prefix: "r", type: "refund")
        try await complete(h, orders[0])
        try await h.engine.terminateWorkflowExecution(execution: orders[1], reason: "test")
        try await complete(h, refunds[0])

        func list(_ query: String) throws -> Set<String> {
            Set(try h.engine.listWorkflowExecutions(query: query).executions.map(\.execution.workflowID))
        }
        #expect(try list("") == ["o0", "o1", "o2", "o3", "r0", "r1"])
        #expect(try list("WorkflowType = 'order' AND ExecutionStatus = 'Running'") == ["o2", "o3"])
        #expect(try list("ExecutionStatus = 'Terminated' OR (WorkflowType = 'refund' AND ExecutionStatus != 'Running')") == ["o1", "r0"])
        #expect(try list("ExecutionStatus IN ('Completed', 'Terminated')") == ["o0", "o1", "r0"])
        #expect(try list("ExecutionStatus = 2") == ["o0", "r0"])
        #expect(try list("WorkflowId STARTS_WITH 'r'") == ["r0", "r1"])
        #expect(try list("WorkflowId NOT STARTS_WITH 'r' AND WorkflowId NOT IN ('o0', 'o3')") == ["o1", "o2"])
        #expect(try list("TaskQueue = 'q-o2'") == ["o2"])
        // Runs started one second apart from the harness's epoch: o0 at +1 s … r1 at +6 s.
        let third = Timestamp(nanosecondsSinceEpoch: Int64(EngineHarness.epoch.nanoseconds) + 3_000_000_000)
        #expect(try list("StartTime > '\(RFC3339.format(third))'") == ["o3", "r0", "r1"])
        #expect(try list("StartTime >= \(third.nanosecondsSinceEpoch)") == ["o2", "o3", "r0", "r1"])
        #expect(try list("StartTime BETWEEN '\(RFC3339.format(third))' AND '\(RFC3339.format(third.advanced(by: .seconds(1))))'") == ["o2", "o3"])
        #expect(try list("CloseTime IS NOT NULL") == ["o0", "o1", "r0"])
        #expect(try list("ParentWorkflowId IS NULL AND RootWorkflowId = 'o2'") == ["o2"])
        #expect(try list("HistoryLength > 2") == ["o0", "o1", "r0"])
    }

    @Test func aComparisonWithAMissingValueIsNeitherTrueNorFalse() async throws {
        let h = try EngineHarness()
        let runs = try await startRuns(h, 2)
        try await complete(h, runs[0])
        let epoch = RFC3339.format(Timestamp(nanosecondsSinceEpoch: 0))
        func list(_ query: String) throws -> [String] {
            try h.engine.listWorkflowExecutions(query: query).executions.map(\.execution.workflowID)
        }
        // w1 is open: it has no CloseTime, so neither the comparison nor its negation matches it.
        #expect(try list("CloseTime > '\(epoch)'") == ["w0"])
        #expect(try list("NOT CloseTime > '\(epoch)'") == [])
        #expect(try list("CloseTime != '\(epoch)'") == ["w0"])
        #expect(try list("CloseTime > '\(epoch)' OR WorkflowId = 'w1'") == ["w1", "w0"])
        #expect(try list("ExecutionDuration >= 0") == ["w0"])
        #expect(try list("CloseTime IS NULL") == ["w1"])
    }

    @Test func pagesCoverEveryRunOnceNewestFirst() async throws {
        let h = try EngineHarness()
        let runs = try await startRuns(h, 25)
        var seen: [String] = []
        var token: [UInt8]?
        var pages = 0
        repeat {
            let page = try h.engine.listWorkflowExecutions(query: "WorkflowType = 'order'", pageSize: 7, nextPageToken: token)
            #expect(page.executions.count == (pages < 3 ? 7 : 4))
            seen += ids(page)
            token = page.nextPageToken
            pages += 1
        } while token != nil
        #expect(pages == 4)
        #expect(seen == runs.reversed().map(\.workflowID))
        // Exactly a page's worth left: the last full page has no token.
        let exact = try h.engine.listWorkflowExecutions(query: "", pageSize: 25)
        #expect(exact.executions.count == 25 && exact.nextPageToken == nil)
    }

    @Test func pagingSurvivesRunsStartingAndClosingDuringThePass() async throws {
        let h = try EngineHarness()
        let runs = try await startRuns(h, 12)
        var first = try h.engine.listWorkflowExecutions(query: "", pageSize: 5)
        var seen = ids(first)
        // Between pages: new runs start, runs on both sides of the position close.
        _ = try await startRuns(h, 3, prefix: "late")
        try await complete(h, runs[11])   // already returned
        try await complete(h, runs[3])    // not yet returned
        try await h.engine.terminateWorkflowExecution(execution: runs[0], reason: "test")
        while let token = first.nextPageToken {
            first = try h.engine.listWorkflowExecutions(query: "", pageSize: 5, nextPageToken: token)
            seen += ids(first)
        }
        #expect(seen == runs.reversed().map(\.workflowID))
    }

    @Test func orderByCloseTimePutsOpenRunsLast() async throws {
        let h = try EngineHarness()
        let runs = try await startRuns(h, 4)
        try await complete(h, runs[2])
        h.clock.advance(by: .seconds(1))
        try await complete(h, runs[0])
        let page = try h.engine.listWorkflowExecutions(query: "ORDER BY CloseTime DESC")
        // Closed newest close first (w0 closed after w2), then the open runs newest start first.
        #expect(ids(page) == ["w0", "w2", "w3", "w1"])
        let ascending = try h.engine.listWorkflowExecutions(query: "ORDER BY CloseTime ASC", pageSize: 1)
        #expect(ids(ascending) == ["w2"])
        let next = try h.engine.listWorkflowExecutions(query: "ORDER BY CloseTime ASC", pageSize: 3, nextPageToken: ascending.nextPageToken)
        #expect(ids(next) == ["w0", "w3", "w1"])
    }

    @Test func aTokenIsValidOnlyForItsQueryAndNamespace() async throws {
        let h = try EngineHarness()
        _ = try await startRuns(h, 3)
        let page = try h.engine.listWorkflowExecutions(query: "WorkflowType = 'order'", pageSize: 1)
        let token = try #require(page.nextPageToken)
        try h.engine.registerNamespace("other")
        #expect { try h.engine.listWorkflowExecutions(query: "WorkflowType = 'other'", pageSize: 1, nextPageToken: token) }
            throws: { isSpoolError($0, .invalidPageToken) }
        #expect { try h.engine.listWorkflowExecutions(namespace: "other", query: "WorkflowType = 'order'", nextPageToken: token) }
            throws: { isSpoolError($0, .invalidPageToken) }
        for garbage in [[], [1], [2, 0], Array(token.dropLast()), token + [0]] as [[UInt8]] {
            #expect { try h.engine.listWorkflowExecutions(query: "WorkflowType = 'order'", nextPageToken: garbage) }
                throws: { isSpoolError($0, .invalidPageToken) }
        }
        #expect { try h.engine.listWorkflowExecutions(query: "", pageSize: -1) } throws: { isSpoolError($0, .invalidArgument) }
        #expect { try h.engine.listWorkflowExecutions(query: "GROUP BY ExecutionStatus") } throws: { isSpoolError($0, .invalidArgument) }
    }

    @Test func countsAndGroupsByStatus() async throws {
        let h = try EngineHarness()
        let runs = try await startRuns(h, 6)
        try await complete(h, runs[0])
        try await complete(h, runs[1])
        try await h.engine.terminateWorkflowExecution(execution: runs[2], reason: "test")
        #expect(try h.engine.countWorkflowExecutions(query: "") == WorkflowExecutionCount(count: 6, groups: []))
        #expect(try h.engine.countWorkflowExecutions(query: "ExecutionStatus = 'Running'").count == 3)
        let grouped = try h.engine.countWorkflowExecutions(query: "GROUP BY ExecutionStatus")
        #expect(grouped == WorkflowExecutionCount(count: 6, groups: [
            .init(values: [.keyword("Running")], count: 3),
            .init(values: [.keyword("Completed")], count: 2),
            .init(values: [.keyword("Terminated")], count: 1),
        ]))
        #expect { try h.engine.countWorkflowExecutions(namespace: "other", query: "") } throws: { isSpoolError($0, .namespaceNotFound) }
        try h.engine.registerNamespace("other")
        #expect(try h.engine.countWorkflowExecutions(namespace: "other", query: "") == WorkflowExecutionCount(count: 0, groups: []))
        #expect { try h.engine.countWorkflowExecutions(query: "Bogus = 1") } throws: { isSpoolError($0, .invalidArgument) }
    }

    @Test func answersAreTheSameAfterAReopen() async throws {
        let h = try EngineHarness(durability: .sync)
        let runs = try await startRuns(h, 5)
        try await complete(h, runs[1])
        try await h.engine.terminateWorkflowExecution(execution: runs[4], reason: "test")
        let query = "ExecutionStatus != 'Running' OR WorkflowId = 'w0'"
        let before = ids(try h.engine.listWorkflowExecutions(query: query))
        #expect(before == ["w4", "w1", "w0"])
        try await h.crashAndReopen()
        #expect(ids(try h.engine.listWorkflowExecutions(query: query)) == before)
        try await h.closeAndReopen()
        #expect(ids(try h.engine.listWorkflowExecutions(query: query)) == before)
        #expect(try h.engine.countWorkflowExecutions(query: "GROUP BY ExecutionStatus").groups.map(\.count) == [3, 1, 1])
    }
}

/// Custom search attributes: registered types, values from start and upserts, JSON as SDKs send it.
@Suite struct SpoolEngineCustomSearchAttributeTests {
    @Test func queriesReadRegisteredAttributesWithTheirTypes() async throws {
        let h = try EngineHarness(durability: .sync)
        try h.engine.addSearchAttributes(["CustomerId": .keyword, "Amount": .double, "Items": .int, "Rush": .bool,
                                          "DueAt": .datetime, "Tags": .keywordList, "Notes": .text])
        func start(_ id: String, _ attributes: [String: String]) async throws {
            _ = try await h.engine.startWorkflowExecution(.init(
                workflowID: id, workflowType: "order", taskQueue: "q-\(id)",
                searchAttributes: attributes.mapValues { Payload.json($0) }))
        }
        try await start("a", ["CustomerId": "\"c-42\"", "Amount": "12.5", "Items": "3", "Rush": "true",
                              "DueAt": "\"2026-12-24T18:00:00Z\"", "Tags": "[\"gift\",\"fragile\"]", "Notes": "\"Leave at the back door\""])
        try await start("b", ["CustomerId": "\"c-7\"", "Amount": "99", "Items": "1", "Rush": "false",
                              "DueAt": "\"2026-12-31T00:00:00Z\"", "Tags": "[\"bulk\"]"])
        // Values of the wrong type, or attributes not registered, are refused at start as
        // Temporal's frontend refuses them, and nothing is written.
        await #expect { try await start("c", ["CustomerId": "42"]) } throws: { error in
            (error as? SpoolError)?.message.contains("invalid value for search attribute CustomerId of type Keyword") == true
        }
        await #expect { try await start("c", ["Owner": "\"me\""]) } throws: { error in
            (error as? SpoolError)?.message.contains("search attribute Owner is not defined in namespace 'default'") == true
        }
        await #expect { try await start("c", ["WorkflowType": "\"x\""]) } throws: { isSpoolError($0, .invalidArgument) }
        #expect(try h.engine.countWorkflowExecutions(query: "").count == 2)
        // A run with none set.
        try await start("c", [:])
        func ids(_ query: String) throws -> Set<String> {
            Set(try h.engine.listWorkflowExecutions(query: query).executions.map(\.execution.workflowID))
        }
        #expect(try ids("CustomerId = 'c-42'") == ["a"])
        #expect(try ids("CustomerId STARTS_WITH 'c-'") == ["a", "b"])
        #expect(try ids("Amount > 12 AND Amount < 100") == ["a", "b"])
        #expect(try ids("Amount >= 50") == ["b"])
        #expect(try ids("Items BETWEEN 2 AND 5") == ["a"])
        #expect(try ids("Rush = true") == ["a"])
        #expect(try ids("DueAt < '2026-12-25T00:00:00Z'") == ["a"])
        #expect(try ids("Tags = 'gift'") == ["a"])
        #expect(try ids("Tags IN ('bulk', 'none')") == ["b"])
        #expect(try ids("Tags != 'gift'") == ["b"])
        #expect(try ids("Notes = 'back DOOR'") == ["a"])
        #expect(try ids("Notes = 'front door'") == [])
        #expect(try ids("Notes IS NULL") == ["b", "c"])
        #expect(try ids("Amount IS NOT NULL") == ["a", "b"])
        #expect(try ids("CustomerId != 'c-42'") == ["b"])
        #expect(try ids("NOT CustomerId = 'c-42'") == ["b"])

        // An upsert of a wrong type fails the workflow task with BadSearchAttributes and changes nothing.
        let bad = try #require(try await h.pollWorkflowTask("q-b"))
        try await h.engine.respondWorkflowTaskCompleted(taskToken: bad.taskToken, commands: [
            .upsertWorkflowSearchAttributes(.init(searchAttributes: ["Items": .json("\"three\"")])),
        ])
        guard case .workflowTaskFailed(let failed)? = try await h.history(WorkflowExecution(workflowID: "b")).last?.attributes else {
            Issue.record("no WorkflowTaskFailed"); return
        }
        #expect(failed.cause == .badSearchAttributes)
        #expect(try ids("Items = 1") == ["b"])
        // An upsert changes what queries see; the answers survive a crash.
        let task = try #require(try await h.pollWorkflowTask("q-b"))
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [
            .upsertWorkflowSearchAttributes(.init(searchAttributes: ["CustomerId": .json("\"c-42\""), "Tags": .json("[]")])),
        ])
        #expect(try ids("CustomerId = 'c-42'") == ["a", "b"])
        #expect(try ids("Tags IS NULL") == ["b", "c"])
        try await h.crashAndReopen()
        #expect(try ids("CustomerId = 'c-42'") == ["a", "b"])
        #expect(try h.engine.countWorkflowExecutions(query: "Rush = false").count == 1)
    }

    @Test func searchAttributePayloadsDecodeAsSDKsEncodeThem() {
        func value(_ json: String, _ type: IndexedValueType) -> SearchAttributeValue? {
            SearchAttributeValue(decoding: .json(json), as: type)
        }
        #expect(value("\"a\\\"b\\u00e9\\ud83d\\ude00\"", .keyword) == .keyword("a\"bé😀"))
        #expect(value(" 42 ", .int) == .int(42))
        #expect(value("4.5", .int) == nil)
        #expect(value("-1e3", .double) == .double(-1000))
        #expect(value("null", .keyword) == nil)
        #expect(value("[\"x\", \"y\"]", .keywordList) == .keywordList(["x", "y"]))
        #expect(value("[\"x\", 1]", .keywordList) == nil)
        #expect(value("[[\"x\"]]", .keywordList) == nil)
        #expect(value("{\"a\": 1}", .keyword) == nil)
        #expect(value("\"a\" \"b\"", .keyword) == nil)
        #expect(value("\"2026-12-24T18:00:00.5+01:00\"", .datetime)
                == .datetime(Timestamp(nanosecondsSinceEpoch: RFC3339.parse("2026-12-24T17:00:00.5Z")!.nanosecondsSinceEpoch)))
    }
}
