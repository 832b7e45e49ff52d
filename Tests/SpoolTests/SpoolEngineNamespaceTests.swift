#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
import Testing
@testable import Spool

/// Namespaces and custom search attributes through the engine's public API: registration is
/// durable, unknown namespaces are refused as Temporal refuses them, bad input changes nothing.
@Suite struct SpoolEngineNamespaceTests {
    @Test func defaultExistsAndOthersMustBeRegistered() async throws {
        let h = try EngineHarness()
        #expect(h.engine.listNamespaces().map(\.name) == ["default"])
        #expect(try h.engine.describeNamespace("default").state == .registered)
        let request = StartWorkflowExecutionRequest(namespace: "billing", workflowID: "w", workflowType: "t", taskQueue: "q")
        await #expect { try await h.engine.startWorkflowExecution(request) } throws: { isSpoolError($0, .namespaceNotFound) }
        await #expect { try await h.engine.pollWorkflowTaskQueue(namespace: "billing", taskQueue: "q", timeout: .zero) }
            throws: { isSpoolError($0, .namespaceNotFound) }
        await #expect { try await h.engine.signalWorkflowExecution(namespace: "billing", execution: WorkflowExecution(workflowID: "w"),
                                                                   signalName: "s") } throws: { isSpoolError($0, .namespaceNotFound) }
        #expect { try h.engine.describeWorkflowExecution(namespace: "billing", execution: WorkflowExecution(workflowID: "w")) }
            throws: { isSpoolError($0, .namespaceNotFound) }
        #expect { try h.engine.describeNamespace("billing") } throws: { isSpoolError($0, .namespaceNotFound) }

        let registered = try h.engine.registerNamespace("billing", description: "invoices", ownerEmail: "ops@example.com",
                                                        retention: .seconds(3 * 86_400))
        #expect(registered.id.count == 36 && registered.retention == .seconds(3 * 86_400))
        let started = try await h.engine.startWorkflowExecution(request)
        #expect(started.started)
        // Runs of one namespace are invisible from another.
        #expect { try h.engine.describeWorkflowExecution(execution: WorkflowExecution(workflowID: "w")) } throws: { isSpoolError($0, .notFound) }
        #expect(try h.engine.describeWorkflowExecution(namespace: "billing", execution: WorkflowExecution(workflowID: "w")).executionInfo.status == .running)
        #expect(try await h.engine.pollWorkflowTaskQueue(namespace: "billing", taskQueue: "q", timeout: .zero) != nil)
        #expect(h.engine.listNamespaces().map(\.name) == ["billing", "default"])
        #expect { try h.engine.registerNamespace("billing") } throws: { isSpoolError($0, .namespaceAlreadyExists) }
    }

    @Test func badNamesAndRetentionsAreRefusedAndWriteNothing() throws {
        let h = try EngineHarness()
        for name in ["", "-lead", "trail.", "has space", "slash/", String(repeating: "a", count: 256)] {
            #expect { try h.engine.registerNamespace(name) } throws: { isSpoolError($0, .invalidArgument) }
        }
        #expect { try h.engine.registerNamespace("ok", retention: .zero) } throws: { isSpoolError($0, .invalidArgument) }
        #expect(access(h.directory + "/data/namespaces", F_OK) != 0, "a refused registration wrote the namespaces file")
        #expect(h.engine.listNamespaces().map(\.name) == ["default"])
    }

    @Test func registrationUpdatesAndSearchAttributesSurviveReopenAndCrash() async throws {
        let h = try EngineHarness(durability: .sync)
        try h.engine.registerNamespace("billing", data: ["team": "payments"])
        try h.engine.updateNamespace("billing", NamespaceUpdate(description: "invoices", data: ["tier": "gold"], retention: .some(.seconds(60))))
        try h.engine.addSearchAttributes(namespace: "billing", ["CustomerId": .keyword, "Amount": .double])
        try h.engine.addSearchAttributes(["Region": .keyword])
        let expected = NamespaceInfo(name: "billing", id: try h.engine.describeNamespace("billing").id, description: "invoices",
                                     data: ["team": "payments", "tier": "gold"], retention: .seconds(60),
                                     searchAttributes: ["CustomerId": .keyword, "Amount": .double])
        #expect(try h.engine.describeNamespace("billing") == expected)
        try await h.crashAndReopen()
        #expect(try h.engine.describeNamespace("billing") == expected)
        #expect(try h.engine.searchAttributes() == ["Region": .keyword])
        try await h.closeAndReopen()
        #expect(try h.engine.describeNamespace("billing") == expected)
        // Registered attributes can be queried in their namespace only.
        #expect(try h.engine.countWorkflowExecutions(namespace: "billing", query: "CustomerId = 'c-42'").count == 0)
        #expect { try h.engine.countWorkflowExecutions(query: "CustomerId = 'c-42'") } throws: { isSpoolError($0, .invalidArgument) }
        #expect { try h.engine.countWorkflowExecutions(namespace: "billing", query: "Amount STARTS_WITH 'x'") }
            throws: { isSpoolError($0, .invalidArgument) }
    }

    @Test func searchAttributeRegistrationFollowsTemporalsRules() throws {
        let h = try EngineHarness()
        try h.engine.addSearchAttributes(["CustomerId": .keyword])
        // The same type again: nothing to do.
        try h.engine.addSearchAttributes(["CustomerId": .keyword])
        #expect { try h.engine.addSearchAttributes(["CustomerId": .int]) } throws: { isSpoolError($0, .alreadyExists) }
        #expect { try h.engine.addSearchAttributes(["WorkflowType": .keyword]) } throws: { isSpoolError($0, .alreadyExists) }
        #expect { try h.engine.addSearchAttributes(["TemporalThing": .keyword]) } throws: { isSpoolError($0, .invalidArgument) }
        #expect { try h.engine.addSearchAttributes(["9lives": .keyword]) } throws: { isSpoolError($0, .invalidArgument) }
        #expect { try h.engine.addSearchAttributes(namespace: "nowhere", ["X": .keyword]) } throws: { isSpoolError($0, .namespaceNotFound) }
        // One bad name in a batch: none of the batch is added.
        #expect { try h.engine.addSearchAttributes(["Fine": .bool, "bad name": .bool]) } throws: { isSpoolError($0, .invalidArgument) }
        #expect(try h.engine.searchAttributes() == ["CustomerId": .keyword])
        #expect { try h.engine.removeSearchAttributes(["CustomerId", "Missing"]) } throws: { isSpoolError($0, .notFound) }
        #expect(try h.engine.searchAttributes() == ["CustomerId": .keyword])
        try h.engine.removeSearchAttributes(["CustomerId"])
        #expect(try h.engine.searchAttributes() == [:])
        #expect { try h.engine.countWorkflowExecutions(query: "CustomerId = 'c'") } throws: { isSpoolError($0, .invalidArgument) }
    }

    @Test func aDamagedNamespacesFileStopsTheOpenWithItsName() async throws {
        let h = try EngineHarness(durability: .sync)
        try h.engine.registerNamespace("billing", retention: .seconds(60))
        try await h.engine.close()
        let path = h.directory + "/data/namespaces"
        let fd = open(path, O_RDWR)
        #expect(fd >= 0)
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, 8) == 1)
        byte ^= 0x40
        #expect(pwrite(fd, &byte, 1, 8) == 1)
        close(fd)
        #expect { try EngineHarness.open(h.directory, clock: h.clock, durability: .sync) } throws: { error in
            guard let error = error as? SpoolError else { return false }
            return error.code == .corruptRecord && error.message.contains(path) && error.message.contains("checksum")
        }
    }

    @Test func namespacesOfRunsInTheHistoryAreAdoptedAtOpen() async throws {
        let h = try EngineHarness(durability: .sync)
        try h.engine.registerNamespace("legacy")
        _ = try await h.engine.startWorkflowExecution(.init(namespace: "legacy", workflowID: "w", workflowType: "t", taskQueue: "q"))
        try await h.engine.close()
        // A store written before namespaces were registered has runs but no namespaces file.
        #expect(unlink(h.directory + "/data/namespaces") == 0)
        try await h.closeAndReopenWithoutClosing()
        #expect(try h.engine.describeWorkflowExecution(namespace: "legacy", execution: WorkflowExecution(workflowID: "w")).executionInfo.status == .running)
        #expect(h.engine.listNamespaces().map(\.name) == ["default", "legacy"])
    }
}

extension EngineHarness {
    /// Opens the directory again after the engine was closed by the test itself.
    func closeAndReopenWithoutClosing() async throws {
        engine = try Self.open(directory, clock: clock, durability: durability)
    }
}
