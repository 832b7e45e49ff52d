#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing

/// `spool recover --mode check` on an engine data directory: the engine's invariants are checked
/// after the log's, and a broken one makes the exit status 1 (the findings themselves are asserted
/// exactly by `HistoryVerifierTests`, through the library).
@Suite("spool recover: engine invariants")
struct RecoverEngineCheckTests {
    private func demo(_ path: String) throws {
        let result = try SpoolProcess.run(["demo", "--data", path, "--json"])
        try #require(result.status == 0, "\(result.stderr)")
    }

    @Test("a healthy engine directory checks clean with exit 0")
    func healthyDirectory() throws {
        let scratch = ScratchDirectory()
        try demo(scratch.path + "/a")
        let check = try SpoolProcess.run(["recover", "--data", scratch.path + "/a"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("engine invariants hold"), "\(check.stdout)")
        let json = try SpoolProcess.run(["recover", "--data", scratch.path + "/a", "--log", "history", "--json"])
        #expect(json.status == 0)
        #expect(json.stdout.contains("\"engine\":{\"clean\":true"), "\(json.stdout)")
    }

    /// The visibility index an open builds is compared with the one the histories give (the
    /// disagreements themselves are asserted through the library, SpoolEngineVisibilityIndexTests).
    @Test("check compares the visibility index with the histories")
    func visibilityIndexChecked() throws {
        let scratch = ScratchDirectory()
        try demo(scratch.path + "/a")
        let check = try SpoolProcess.run(["recover", "--data", scratch.path + "/a", "--log", "history"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("visibility index agrees with the histories"), "\(check.stdout)")
        let json = try SpoolProcess.run(["recover", "--data", scratch.path + "/a", "--log", "history", "--json"])
        #expect(json.status == 0)
        #expect(json.stdout.contains("\"visibility\":{\"clean\":true,\"indexedRuns\":"), "\(json.stdout)")
    }

    /// Another directory's checkpoint (well-formed, its checksum matches, about runs this history
    /// does not hold) is ignored by open, which replays the whole log (found by the damage matrix:
    /// it used to be trusted and hid every run). Check judges it as open does: a warning, exit 0,
    /// and the runs are all there.
    @Test("a checkpoint of another directory's runs: a warning as open ignores it, exit 0, every run listed")
    func foreignCheckpoint() throws {
        let scratch = ScratchDirectory()
        try demo(scratch.path + "/a")
        try demo(scratch.path + "/b")
        let listed = try SpoolProcess.run(["workflow", "list", "--data", scratch.path + "/a", "--json"])
        try #require(listed.status == 0 && listed.stdout.contains("\"workflowId\""), "\(listed.stdout)\(listed.stderr)")
        try writeFile(scratch.path + "/a/checkpoint", readBytes(scratch.path + "/b/checkpoint"))
        let check = try SpoolProcess.run(["recover", "--data", scratch.path + "/a", "--log", "history"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("warning: checkpointUnreadable") && check.stdout.contains("the checkpoint is not this log's"),
                "\(check.stdout)")
        let list = try SpoolProcess.run(["workflow", "list", "--data", scratch.path + "/a", "--json"])
        #expect(list.status == 0 && list.stdout == listed.stdout, "\(list.stdout)\(list.stderr)")
    }
}
