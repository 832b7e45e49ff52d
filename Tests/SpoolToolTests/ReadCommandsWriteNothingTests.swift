#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing

/// The commands that only read (`queue list|describe|peek`, `workflow list|describe|show`) open
/// the stores read-only: they change no file of the data directory, not even by rewriting it
/// with the same bytes (issue 25, point 7: "Commands that only read open a store without
/// writing anything (no marker rewrite, no checkpoint)").
@Suite struct ReadCommandsWriteNothingTests {
    /// A data directory with three tasks on queue `q` and one open run `w`, made by the commands.
    private func makeData(_ scratch: ScratchDirectory) throws -> String {
        let data = scratch.path + "/data"
        let added = try SpoolProcess.run(["task", "add", "--data", data, "--queue", "q"], input: "alpha\nbeta\ngamma\n")
        try #require(added.status == 0, "\(added.stderr)")
        let started = try SpoolProcess.run(["workflow", "start", "--data", data, "--id", "w", "--type", "t", "--task-queue", "q"])
        try #require(started.status == 0, "\(started.stderr)")
        return data
    }

    private func reads(_ data: String) -> [[String]] {
        [["queue", "list", "--data", data],
         ["queue", "describe", "--data", data, "--queue", "q"],
         ["queue", "peek", "--data", data, "--queue", "q"],
         ["workflow", "list", "--data", data],
         ["workflow", "describe", "--data", data, "--id", "w"],
         ["workflow", "show", "--data", data, "--id", "w"]]
    }

    @Test("each read command leaves every file of the data directory as it was, and shows the data")
    func readsChangeNoFile() throws {
        let scratch = ScratchDirectory()
        let data = try makeData(scratch)
        let before = fileStamps(data)
        for arguments in reads(data) {
            let result = try SpoolProcess.run(arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            #expect(fileStamps(data) == before, "\(arguments) changed the data directory")
        }
        let peek = try SpoolProcess.run(["queue", "peek", "--data", data, "--queue", "q"])
        #expect(peek.stdout.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" }
                == ["alpha", "beta", "gamma"], "\(peek.stdout)")
        let list = try SpoolProcess.run(["workflow", "list", "--data", data])
        #expect(list.stdout.contains("w  ") && list.stdout.contains("1 run in"), "\(list.stdout)")
    }

    @Test("with both checkpoints replaced by directories, reads still show everything and move nothing")
    func damagedCheckpointsAreLeftInPlace() throws {
        let scratch = ScratchDirectory()
        let data = try makeData(scratch)
        for checkpoint in [data + "/checkpoint", data + "/tasks/checkpoint"] {
            removeTree(checkpoint)
            try #require(mkdir(checkpoint, 0o700) == 0)
        }
        let before = fileStamps(data)
        let peek = try SpoolProcess.run(["queue", "peek", "--data", data, "--queue", "q"])
        #expect(peek.status == 0, "\(peek.stderr)")
        #expect(peek.stdout.split(separator: "\n").count == 3, "\(peek.stdout)")
        let describe = try SpoolProcess.run(["workflow", "describe", "--data", data, "--id", "w"])
        #expect(describe.status == 0, "\(describe.stderr)")
        #expect(fileStamps(data) == before)
        #expect(!fileExists(data + "/checkpoint.damaged") && !fileExists(data + "/tasks/checkpoint.damaged"))
    }

    @Test("a read of a store whose compaction swap was interrupted refuses, saying how to finish it, and writes nothing")
    func interruptedSwapIsNotFinishedByAReader() throws {
        let scratch = ScratchDirectory()
        let data = try makeData(scratch)
        // What a kill between the two steps of a swap leaves: the manifest naming the swap.
        try writeFile(data + "/tasks/log/swap-manifest", Array("not a real manifest".utf8))
        let before = fileStamps(data)
        let peek = try SpoolProcess.run(["queue", "peek", "--data", data, "--queue", "q"])
        #expect(peek.status == 2, "\(peek.stdout)")
        #expect(peek.stderr.contains("swap-manifest") && peek.stderr.contains("spool recover"), "\(peek.stderr)")
        #expect(fileStamps(data) == before)
    }
}
