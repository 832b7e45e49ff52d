#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing

/// `spool bench …` and `spool torture …` run the lab executable, `spool-lab`, found beside
/// `spool` (Docs/lab.md). The other tests of bench and torture run through `spool`, so they
/// cover the forwarding of arguments, output and exit status; these cover what is left.
@Suite("spool bench and spool torture: forwarding to spool-lab")
struct LabForwardingTests {
    @Test("the lab is built beside spool, and `spool bench --help` is its help")
    func labBesideSpool() throws {
        let lab = SpoolProcess.executable + "-lab"
        #expect(fileExists(lab), "no spool-lab beside \(SpoolProcess.executable)")
        let help = try SpoolProcess.run(["bench", "--help"])
        #expect(help.status == 0, "\(help.stderr)")
        for bench in ["log", "queue", "workflows", "dispatch"] {
            #expect(help.stdout.contains(bench), "\(help.stdout)")
        }
    }

    @Test("without spool-lab beside it, spool bench and spool torture name the path they expected")
    func labMissing() throws {
        let scratch = ScratchDirectory()
        let copy = scratch.path + "/spool"
        try copyExecutable(SpoolProcess.executable, to: copy)
        for arguments in [["bench", "log", "--records", "10"], ["torture", "--kills", "1"]] {
            let result = try SpoolProcess.run(arguments + ["--data", scratch.path + "/data"], executable: copy)
            #expect(result.status == 127, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("expected at \(scratch.path)/spool-lab"), "\(arguments): \(result.stderr)")
            #expect(!fileExists(scratch.path + "/data"), "\(arguments) created its data directory")
        }
    }

    /// Copies an executable, its descriptor close-on-exec: a child that another test spawns
    /// meanwhile must not inherit it open for writing, or running the copy fails with ETXTBSY.
    private func copyExecutable(_ source: String, to path: String) throws {
        let bytes = readBytes(source)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o700)
        guard fd >= 0 else { throw WriteError() }
        defer { close(fd) }
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw WriteError() }
    }
}
