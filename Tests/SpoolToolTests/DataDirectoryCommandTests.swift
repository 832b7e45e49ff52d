#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing

/// One rule for a missing data directory across every `spool` command: a command that writes
/// creates it, owner-only (0700), as `spool demo` always did; a command that only reads (or
/// only changes what is already there) refuses it with the same message and exit status 2,
/// and creates nothing.
@Suite("spool commands: a missing data directory")
struct DataDirectoryCommandTests {
    /// The exit status of every command whose data directory cannot be used.
    static let unusable: Int32 = 2

    /// The words every refusal uses after the directory's path.
    static let refusal = ": no such directory (check --data; commands that write create it)"

    @Test("commands that write create a missing data directory with mode 0700")
    func writeCommandsCreate() throws {
        let scratch = ScratchDirectory()
        let cases: [([String], String)] = [
            (["task", "add", "--queue", "q"], "one\ntwo\n"),
            (["queue", "pause", "--queue", "q"], ""),
            (["queue", "resume", "--queue", "q"], ""),
            (["workflow", "start", "--id", "w", "--type", "t", "--task-queue", "q"], ""),
            (["demo"], ""),
        ]
        for (index, (arguments, input)) in cases.enumerated() {
            let data = scratch.path + "/new-\(index)"
            // A trailing slash names the same directory.
            let result = try SpoolProcess.run(arguments + ["--data", data + "/"], input: input)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            var info = stat()
            #expect(stat(data, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR, "\(arguments) did not create \(data)")
            #expect(info.st_mode & 0o777 == 0o700, "\(arguments) created \(data) with mode \(String(info.st_mode & 0o777, radix: 8))")
        }
        // What was written can be read back through the directory it created.
        let poll = try SpoolProcess.run(["task", "poll", "--data", scratch.path + "/new-0", "--queue", "q", "--max", "2"])
        #expect(poll.status == 0 && poll.stdout.contains("\tone") && poll.stdout.contains("\ttwo"), "\(poll.stdout)\(poll.stderr)")
        let list = try SpoolProcess.run(["workflow", "list", "--data", scratch.path + "/new-3"])
        #expect(list.status == 0 && list.stdout.contains("1 run in"), "\(list.stdout)\(list.stderr)")
    }

    @Test("a write command whose data directory's parent is missing is refused and creates nothing")
    func writeCommandsNeedTheParent() throws {
        let scratch = ScratchDirectory()
        let parent = scratch.path + "/absent"
        let data = parent + "/data"
        for arguments in [["task", "add", "--queue", "q"], ["workflow", "start", "--id", "w", "--type", "t", "--task-queue", "q"]] {
            let result = try SpoolProcess.run(arguments + ["--data", data], input: "one\n")
            #expect(result.status == Self.unusable, "\(arguments)")
            #expect(result.stderr.contains(data) && result.stderr.contains("parent directory does not exist"), "\(arguments): \(result.stderr)")
            #expect(!fileExists(parent), "\(arguments) created \(parent)")
        }
    }

    @Test("commands that only read refuse a missing data directory with one message, status 2, and create nothing")
    func readCommandsRefuse() throws {
        let scratch = ScratchDirectory()
        let missing = scratch.path + "/absent"
        let commands: [[String]] = [
            ["inspect"], ["recover"], ["recover", "--mode", "truncate"], ["compact"], ["compact", "--dry-run"],
            ["workflow", "list"], ["workflow", "describe", "--id", "w"], ["workflow", "show", "--id", "w"],
            ["workflow", "signal", "--id", "w", "--name", "s"], ["workflow", "cancel", "--id", "w"], ["workflow", "terminate", "--id", "w"],
            ["task", "poll", "--queue", "q"],
            ["queue", "list"], ["queue", "describe", "--queue", "q"], ["queue", "peek", "--queue", "q"], ["queue", "purge", "--queue", "q"],
        ]
        for command in commands {
            // The message names the directory without the trailing slash it was given with.
            let result = try SpoolProcess.run(command + ["--data", missing + "/"])
            #expect(result.status == Self.unusable, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("spool \(command.prefix { !$0.hasPrefix("--") }.joined(separator: " ")): \(missing)\(Self.refusal)"),
                    "\(command): \(result.stderr)")
            #expect(!fileExists(missing), "\(command) created \(missing)")
        }
    }
}
