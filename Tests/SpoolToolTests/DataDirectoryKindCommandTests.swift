#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing

/// A data directory has an identity (issue 25, point 4): commands refuse a directory that is not
/// a Spool data directory, with exit status 2, one message shape and nothing written — where they
/// read it as an empty store (`--data /etc`) or created a store in it (`task add --data /`).
@Suite("spool commands: what a data directory is")
struct DataDirectoryKindCommandTests {
    /// A non-empty directory Spool did not make, like /etc.
    private func foreignDirectory(_ scratch: ScratchDirectory) throws -> String {
        let foreign = scratch.path + "/etc-like"
        mkdir(foreign, 0o700)
        mkdir(foreign + "/ssl", 0o700)
        try writeFile(foreign + "/passwd", Array("root:x:0:0::/root:/bin/sh\n".utf8))
        return foreign
    }

    @Test("read commands refuse a foreign non-empty directory instead of showing an empty store")
    func readCommandsRefuseAForeignDirectory() throws {
        let scratch = ScratchDirectory()
        let foreign = try foreignDirectory(scratch)
        let before = snapshot(foreign)
        let commands: [[String]] = [
            ["workflow", "list"], ["workflow", "describe", "--id", "w"], ["queue", "list"], ["queue", "describe", "--queue", "q"],
            ["queue", "peek", "--queue", "q"], ["task", "poll", "--queue", "q"],
        ]
        for command in commands {
            let result = try SpoolProcess.run(command + ["--data", foreign])
            #expect(result.status == 2, "\(command): \(result.stdout)\(result.stderr)")
            #expect(result.stderr.contains("\(foreign): is not a Spool data directory: it holds other files (passwd, ssl)"),
                    "\(command): \(result.stderr)")
            #expect(result.stdout.isEmpty, "\(command) printed a store: \(result.stdout)")
        }
        #expect(snapshot(foreign) == before)
    }

    @Test("write commands refuse a foreign non-empty directory and create nothing in it")
    func writeCommandsRefuseAForeignDirectory() throws {
        let scratch = ScratchDirectory()
        let foreign = try foreignDirectory(scratch)
        let before = snapshot(foreign)
        let commands: [([String], String)] = [
            (["task", "add", "--queue", "q"], "one\n"), (["queue", "pause", "--queue", "q"], ""),
            (["workflow", "start", "--id", "w", "--type", "t", "--task-queue", "q"], ""), (["demo"], ""),
        ]
        for (command, input) in commands {
            let result = try SpoolProcess.run(command + ["--data", foreign], input: input)
            #expect(result.status == 2, "\(command): \(result.stdout)\(result.stderr)")
            #expect(result.stderr.contains("\(foreign): is not a Spool data directory"), "\(command): \(result.stderr)")
        }
        #expect(snapshot(foreign) == before)
        #expect(!fileExists(foreign + "/tasks") && !fileExists(foreign + "/history"))
    }

    @Test("workflow commands pointed at DIR/tasks refuse it, naming what it is; its checkpoint is untouched")
    func engineCommandsRefuseATaskStore() throws {
        let scratch = ScratchDirectory()
        let data = scratch.path + "/data"
        let add = try SpoolProcess.run(["task", "add", "--data", data, "--queue", "q"], input: "one\ntwo\n")
        try #require(add.status == 0, "\(add.stderr)")
        let pause = try SpoolProcess.run(["queue", "pause", "--data", data, "--queue", "other"])
        try #require(pause.status == 0, "\(pause.stderr)")
        let tasks = data + "/tasks"
        let before = snapshot(tasks)
        for command in [["workflow", "start", "--id", "w", "--type", "t", "--task-queue", "q"], ["demo"], ["workflow", "list"]] {
            let result = try SpoolProcess.run(command + ["--data", tasks])
            #expect(result.status == 2, "\(command): \(result.stdout)\(result.stderr)")
            #expect(result.stderr.contains("\(tasks): is a Spool task store"), "\(command): \(result.stderr)")
            #expect(result.stderr.contains("--data \(data)"), "\(command): \(result.stderr)")
        }
        #expect(snapshot(tasks) == before)
        // The pause the task store's checkpoint holds is still there.
        let list = try SpoolProcess.run(["queue", "list", "--data", data])
        #expect(list.status == 0 && list.stdout.contains("other"), "\(list.stdout)\(list.stderr)")
        // And the task commands pointed at the task store itself refuse it too, creating nothing.
        let nested = try SpoolProcess.run(["task", "add", "--data", tasks, "--queue", "q"], input: "three\n")
        #expect(nested.status == 2 && nested.stderr.contains("is a Spool task store"), "\(nested.stderr)")
        #expect(snapshot(tasks) == before)
    }

    @Test("task add on a directory holding only other stores' logs refuses (a history log given as --data)")
    func taskAddRefusesALogDirectory() throws {
        let scratch = ScratchDirectory()
        let data = scratch.path + "/data"
        let start = try SpoolProcess.run(["workflow", "start", "--data", data, "--id", "w", "--type", "t", "--task-queue", "q"])
        try #require(start.status == 0, "\(start.stderr)")
        let before = snapshot(data + "/history")
        let add = try SpoolProcess.run(["task", "add", "--data", data + "/history", "--queue", "q"], input: "one\n")
        #expect(add.status == 2 && add.stderr.contains("\(data)/history: is a Spool log directory"), "\(add.stderr)")
        #expect(snapshot(data + "/history") == before)
    }

    @Test("an empty directory is a new store, for reads and writes")
    func emptyDirectoryIsANewStore() throws {
        let scratch = ScratchDirectory()
        let empty = scratch.path + "/empty"
        mkdir(empty, 0o700)
        let list = try SpoolProcess.run(["queue", "list", "--data", empty])
        #expect(list.status == 0, "\(list.stderr)")
        let add = try SpoolProcess.run(["task", "add", "--data", empty, "--queue", "q"], input: "one\n")
        #expect(add.status == 0, "\(add.stderr)")
    }
}
