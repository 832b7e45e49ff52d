#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing
@testable import Spool

/// An engine opened with `log.access = .readOnly` writes nothing at all (no marker, no
/// checkpoint, no repair, no timer), shows every run, and refuses writes with the log's
/// `readOnly` error (issue 25, point 7).
@Suite struct SpoolEngineReadOnlyTests {
    private func readOnly() -> SpoolEngineConfiguration {
        var configuration = SpoolEngineConfiguration()
        configuration.log.access = .readOnly
        configuration.closedRunRetention = nil
        return configuration
    }

    /// A data directory left by a killed engine (a writing open would repair it and write a
    /// checkpoint at close): one open run and one terminated run.
    private func makeUncleanDirectory(_ path: String) async throws {
        var configuration = SpoolEngineConfiguration()
        configuration.firesTimersAutomatically = false
        let engine = try SpoolEngine.open(directory: path, configuration: configuration)
        _ = try await engine.startWorkflowExecution(.init(workflowID: "open", workflowType: "t", taskQueue: "q"))
        let closed = try await engine.startWorkflowExecution(.init(workflowID: "closed", workflowType: "t", taskQueue: "q"))
        try await engine.terminateWorkflowExecution(execution: WorkflowExecution(workflowID: "closed", runID: closed.runID))
        await engine.abandon()
    }

    @Test("a read-only open of a killed engine's directory changes no file and lists every run")
    func readOnlyOpenWritesNothing() async throws {
        let dir = TemporaryDirectory()
        try await makeUncleanDirectory(dir.path)
        let before = fileStamps(dir.path)

        let reader = try SpoolEngine.open(directory: dir.path, configuration: readOnly())
        let runs = reader.listWorkflowExecutions()
        #expect(Set(runs.map(\.execution.workflowID)) == ["open", "closed"])
        #expect(runs.first { $0.execution.workflowID == "closed" }?.status == .terminated)
        try await reader.close()
        #expect(fileStamps(dir.path) == before)
    }

    @Test("a start on a read-only engine fails with the log's readOnly error and writes nothing")
    func startIsRefused() async throws {
        let dir = TemporaryDirectory()
        try await makeUncleanDirectory(dir.path)
        let before = fileStamps(dir.path)
        let reader = try SpoolEngine.open(directory: dir.path, configuration: readOnly())
        do {
            _ = try await reader.startWorkflowExecution(.init(workflowID: "new", workflowType: "t", taskQueue: "q"))
            Issue.record("a start succeeded on a read-only engine")
        } catch {
            #expect(error.code == .storage, "\(error)")
            #expect((error.underlying as? LogError)?.code == .readOnly, "\(error)")
        }
        #expect(reader.listWorkflowExecutions().count == 2)
        try await reader.close()
        #expect(fileStamps(dir.path) == before)
    }

    @Test("a read-only open of a missing directory fails and creates nothing")
    func missingDirectory() throws {
        let dir = TemporaryDirectory()
        let missing = dir.path + "/data"
        do {
            _ = try SpoolEngine.open(directory: missing, configuration: readOnly())
            Issue.record("a read-only open of a missing directory succeeded")
        } catch {
            #expect(error.code == .io, "\(error)")
            #expect((error.underlying as? LogError)?.code == .directoryMissing, "\(error)")
        }
        #expect(!DataDirectory.isDirectory(missing))
    }
}
