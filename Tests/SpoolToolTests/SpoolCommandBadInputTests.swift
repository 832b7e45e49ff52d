#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing

/// Bad input to the `spool` command: each case gets a message naming what was wrong, a non-zero
/// exit status, and leaves the data directory exactly as it was (or absent when it was absent).
///
/// The tests run the `spool` executable that `swift test` builds beside the test bundle.
@Suite("spool command: bad input")
struct SpoolCommandBadInputTests {
    /// Exit status of ArgumentParser's validation errors (EX_USAGE).
    static let usage: Int32 = 64

    @Test("an unknown subcommand or option is a usage error")
    func unknownSubcommandAndOption() throws {
        let unknown = try SpoolProcess.run(["frobnicate"])
        #expect(unknown.status == Self.usage)
        #expect(unknown.stderr.contains("frobnicate"))
        let option = try SpoolProcess.run(["inspect", "--data", "/tmp", "--no-such-option"])
        #expect(option.status == Self.usage)
        #expect(option.stderr.contains("--no-such-option"))
    }

    @Test("a missing data directory is named and not created")
    func missingDirectory() throws {
        let scratch = ScratchDirectory()
        let missing = scratch.path + "/absent"
        for command in [["inspect"], ["recover"], ["recover", "--mode", "truncate"], ["recover", "--mode", "salvage"]] {
            let result = try SpoolProcess.run(command + ["--data", missing])
            #expect(result.status == 2, "\(command)")
            #expect(result.stderr.contains("\(missing): no such directory"), "\(command): \(result.stderr)")
            #expect(!fileExists(missing), "\(command) created \(missing)")
        }
    }

    @Test("an empty or foreign directory is refused and left untouched")
    func emptyAndForeignDirectories() throws {
        let scratch = ScratchDirectory()
        let empty = scratch.path + "/empty"
        mkdir(empty, 0o700)
        let foreign = scratch.path + "/foreign"
        mkdir(foreign, 0o700)
        try writeFile(foreign + "/notes.txt", Array("not a log".utf8))
        for command in [["inspect"], ["recover"], ["recover", "--mode", "truncate", "--no-backup"]] {
            let before = (snapshot(empty), snapshot(foreign))
            let onEmpty = try SpoolProcess.run(command + ["--data", empty])
            #expect(onEmpty.status == 2, "\(command)")
            #expect(onEmpty.stderr.contains("is empty"), "\(command): \(onEmpty.stderr)")
            let onForeign = try SpoolProcess.run(command + ["--data", foreign])
            #expect(onForeign.status == 2, "\(command)")
            #expect(onForeign.stderr.contains("notes.txt") && onForeign.stderr.contains("not a Spool log directory"),
                    "\(command): \(onForeign.stderr)")
            #expect(snapshot(empty) == before.0 && snapshot(foreign) == before.1, "\(command) changed a directory")
        }
    }

    @Test("a log held open by another process is refused and left untouched")
    func lockedLog() async throws {
        let scratch = ScratchDirectory()
        let directory = scratch.path + "/tasks"
        let log = try Log.open(directory: directory)
        _ = try await log.append(contentsOf: (0..<10).map { [UInt8](repeating: UInt8($0), count: 100) })
        defer { try? log.close() }
        let before = snapshot(directory)
        for command in [["inspect"], ["recover"], ["recover", "--mode", "salvage", "--no-backup"]] {
            let result = try SpoolProcess.run(command + ["--data", scratch.path])
            #expect(result.status == 2, "\(command)")
            #expect(result.stderr.contains("open by another process"), "\(command): \(result.stderr)")
        }
        #expect(snapshot(directory) == before)
    }

    @Test("recover and inspect: invalid option values and combinations")
    func maintenanceOptions() async throws {
        let scratch = ScratchDirectory()
        let data = try await makeLog(in: scratch, named: "history")
        let before = snapshot(data)
        let cases: [([String], String)] = [
            (["recover", "--data", scratch.path, "--mode", "bogus"], "bogus"),
            (["recover", "--data", scratch.path, "--no-backup"], "check changes nothing"),
            (["recover", "--data", scratch.path, "--mode", "truncate", "--no-backup", "--backup-dir", "/tmp/x"], "not both"),
            (["recover", "--data", scratch.path, "--index-interval", "8"], "--index-interval"),
            (["inspect", "--data", scratch.path, "00000000000000000000.log", "--offset", "3"], "not both"),
            (["inspect", "--data", scratch.path, "--preview-bytes=-1"], "--preview-bytes"),
        ]
        for (arguments, message) in cases {
            let result = try SpoolProcess.run(arguments)
            #expect(result.status == Self.usage, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        #expect(snapshot(data) == before)
    }

    @Test("recover and inspect: unknown log, segment and offset are named")
    func unknownNames() async throws {
        let scratch = ScratchDirectory()
        let history = try await makeLog(in: scratch, named: "history")
        let tasks = try await makeLog(in: scratch, named: "tasks")
        let before = (snapshot(history), snapshot(tasks))

        let log = try SpoolProcess.run(["recover", "--data", scratch.path, "--log", "nope"])
        #expect(log.status == 2)
        #expect(log.stderr.contains("no log named 'nope'") && log.stderr.contains("history, tasks"), "\(log.stderr)")

        let ambiguous = try SpoolProcess.run(["inspect", "--data", scratch.path, "--offset", "0"])
        #expect(ambiguous.status == 2)
        #expect(ambiguous.stderr.contains("holds 2 logs") && ambiguous.stderr.contains("--log"), "\(ambiguous.stderr)")

        let segment = try SpoolProcess.run(["inspect", "--data", scratch.path, "--log", "tasks", "00000000000000099999.log"])
        #expect(segment.status == 2)
        #expect(segment.stderr.contains("no segment 00000000000000099999.log"), "\(segment.stderr)")

        let offset = try SpoolProcess.run(["inspect", "--data", scratch.path, "--log", "history", "--offset", "1000000"])
        #expect(offset.status == 1)
        #expect(offset.stderr.contains("offset 1000000"), "\(offset.stderr)")

        #expect(snapshot(history) == before.0 && snapshot(tasks) == before.1)
    }

    @Test("bench and torture: out-of-range counts and unknown modes")
    func benchAndTortureOptions() throws {
        let scratch = ScratchDirectory()
        let cases: [([String], String)] = [
            (["bench", "log", "--producers", "0"], "--producers"),
            (["bench", "log", "--modes", "foo"], "unknown mode 'foo'"),
            (["bench", "log", "--records", "0"], "--records"),
            (["bench", "log", "--runs", "0"], "--runs must be between 1 and 99"),
            (["bench", "open", "--size-mb", "0"], "--size-mb"),
            (["bench", "dispatch", "--tasks", "10"], "--tasks"),
            (["bench", "dispatch", "--implementations", "spool,bogus"], "bogus"),
            (["torture", "--kills", "0"], "--kills"),
            (["torture", "--durability", "bogus"], "--durability"),
            (["torture", "--appenders", "0"], "--appenders"),
        ]
        for (arguments, message) in cases {
            let data = scratch.path + "/data"
            let result = try SpoolProcess.run(arguments + (arguments[0] == "bench" && arguments[1] == "dispatch" ? [] : ["--data", data]))
            #expect(result.status == Self.usage, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(!fileExists(data), "\(arguments) created its data directory")
        }
    }

    /// A closed log with a few records in `scratch/name`; returns its directory.
    private func makeLog(in scratch: ScratchDirectory, named name: String) async throws -> String {
        let directory = scratch.path + "/" + name
        let log = try Log.open(directory: directory)
        _ = try await log.append(contentsOf: (0..<10).map { [UInt8](repeating: UInt8($0), count: 100) })
        try log.close()
        return directory
    }
}
