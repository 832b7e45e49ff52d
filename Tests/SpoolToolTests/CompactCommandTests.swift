#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing

/// `spool compact` run as operators run it: bad input is refused with a message and the right
/// exit status and changes nothing; a dry run writes nothing; a second compaction drops nothing.
@Suite("spool compact")
struct CompactCommandTests {
    static let usage: Int32 = 64

    /// A small data directory with both logs, built by `spool bench compact --keep`.
    private func makeData(_ scratch: ScratchDirectory) throws -> String {
        let result = try SpoolProcess.run(["bench", "compact", "--data", scratch.path, "--tasks-mb", "2", "--history-mb", "1",
                                           "--payload-bytes", "256", "--runs", "1", "--keep", "--json"])
        try #require(result.status == 0, "\(result.stderr)")
        return scratch.path + "/bench-compact"
    }

    @Test("missing, empty and foreign directories exit 2 and are left alone")
    func unusableDirectories() throws {
        let scratch = ScratchDirectory()
        let missing = scratch.path + "/absent"
        let absent = try SpoolProcess.run(["compact", "--data", missing])
        #expect(absent.status == 2)
        #expect(absent.stderr.contains("\(missing): no such directory"), "\(absent.stderr)")
        #expect(!fileExists(missing))

        let empty = scratch.path + "/empty"
        mkdir(empty, 0o700)
        let onEmpty = try SpoolProcess.run(["compact", "--data", empty])
        #expect(onEmpty.status == 2)
        #expect(onEmpty.stderr.contains("is empty"), "\(onEmpty.stderr)")

        let foreign = scratch.path + "/foreign"
        mkdir(foreign, 0o700)
        try writeFile(foreign + "/notes.txt", Array("not a log".utf8))
        let before = snapshot(foreign)
        let onForeign = try SpoolProcess.run(["compact", "--data", foreign])
        #expect(onForeign.status == 2)
        #expect(onForeign.stderr.contains("not a Spool data directory") && onForeign.stderr.contains("notes.txt"), "\(onForeign.stderr)")
        #expect(snapshot(foreign) == before)

        // A history directory holding no segments is refused the same way.
        mkdir(foreign + "/history", 0o700)
        let noSegments = try SpoolProcess.run(["compact", "--data", foreign, "--log", "history"])
        #expect(noSegments.status == 2)
        #expect(noSegments.stderr.contains("is empty") || noSegments.stderr.contains("no log segments"), "\(noSegments.stderr)")
    }

    @Test("usage errors exit 64")
    func usageErrors() throws {
        let scratch = ScratchDirectory()
        let cases: [([String], String)] = [
            (["compact"], "--data"),
            (["compact", "--data", scratch.path, "--log", "bogus"], "bogus"),
            (["compact", "--data", scratch.path, "--retention", "3x"], "--retention"),
            (["compact", "--data", scratch.path, "--retention", "-5d"], "--retention"),
            (["compact", "--data", scratch.path, "--log", "tasks", "--retention", "1d"], "history log only"),
            (["compact", "--data", scratch.path, "--no-such-option"], "--no-such-option"),
        ]
        for (arguments, message) in cases {
            let result = try SpoolProcess.run(arguments)
            #expect(result.status == Self.usage, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
    }

    @Test("a log held by a running store is refused with exit 2 and left untouched")
    func lockedLog() throws {
        let scratch = ScratchDirectory()
        let data = try makeData(scratch)
        let log = try Log.open(directory: data + "/tasks/log", configuration: LogConfiguration(durability: .none))
        defer { try? log.close() }
        let before = snapshot(data + "/tasks/log")
        let result = try SpoolProcess.run(["compact", "--data", data, "--log", "tasks"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("in use by a running engine or task store"), "\(result.stderr)")
        #expect(snapshot(data + "/tasks/log") == before)
    }

    @Test("a dry run writes nothing; a compacted directory compacts to itself")
    func dryRunThenCompactTwice() throws {
        let scratch = ScratchDirectory()
        let data = try makeData(scratch)
        // The bench left the directory compacted (retention 0 s): another compaction finds nothing to drop.
        let files = snapshot(data + "/tasks").merging(snapshot(data + "/history")) { a, _ in a }
        let dry = try SpoolProcess.run(["compact", "--data", data, "--dry-run", "--retention", "0s", "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect((snapshot(data + "/tasks").merging(snapshot(data + "/history")) { a, _ in a }) == files)
        let lines = dry.stdout.split(separator: "\n")
        #expect(lines.count == 2, "\(dry.stdout)")
        #expect(lines.allSatisfy { $0.contains("\"dryRun\":true") && $0.contains("\"recordsDropped\":0") }, "\(dry.stdout)")

        let again = try SpoolProcess.run(["compact", "--data", data, "--retention", "0s"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("0 dropped"), "\(again.stdout)")
        #expect(again.stderr.isEmpty, "no progress bar without a terminal: \(again.stderr)")
    }
}
