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

    @Test("a checkpoint of another directory's runs is an engine problem: exit 1")
    func foreignCheckpoint() throws {
        let scratch = ScratchDirectory()
        try demo(scratch.path + "/a")
        try demo(scratch.path + "/b")
        // Well-formed (its checksum matches) but about runs the history of `a` does not hold.
        try writeFile(scratch.path + "/a/checkpoint", readBytes(scratch.path + "/b/checkpoint"))
        let check = try SpoolProcess.run(["recover", "--data", scratch.path + "/a", "--log", "history"])
        #expect(check.status == 1, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("clean: the log opens and every record reads back"), "\(check.stdout)")
        #expect(check.stdout.contains("problem: checkpoint"), "\(check.stdout)")
        #expect(check.stdout.contains("engine invariants broken"), "\(check.stdout)")
        let json = try SpoolProcess.run(["recover", "--data", scratch.path + "/a", "--log", "history", "--json"])
        #expect(json.status == 1)
        #expect(json.stdout.contains("\"engine\":{\"clean\":false"), "\(json.stdout)")
    }
}
