#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing

/// `spool recover` reads the task store's checkpoint (issue 25, points 2 and 3): check reports a
/// damaged one as a warning with what the next open does (rebuild from the log, losing nothing:
/// exit 0, and the next open returns every task), and salvage rewrites it, saying so.
@Suite("spool recover: the task store's checkpoint")
struct RecoverCheckpointTests {
    /// A data directory with 6 pending tasks (ids printed by task add) and a closed task store.
    private func makeData(_ scratch: ScratchDirectory) throws -> (data: String, ids: [String]) {
        let data = scratch.path + "/data"
        let add = try SpoolProcess.run(["task", "add", "--data", data, "--queue", "q"], input: "a\nb\nc\nd\ne\nf\n")
        try #require(add.status == 0, "\(add.stderr)")
        return (data, add.stdout.split(separator: "\n").map(String.init).sorted())
    }

    /// The ids `task poll` returns for every pending task.
    private func pollAll(_ data: String) throws -> [String] {
        let poll = try SpoolProcess.run(["task", "poll", "--data", data, "--queue", "q", "--max", "100"])
        #expect(poll.status == 0, "\(poll.stderr)")
        return poll.stdout.split(separator: "\n").compactMap { $0.split(separator: "\t").first.map(String.init) }.sorted()
    }

    /// A task store checkpoint as `StoreCheckpoint` writes it, with `ackLevel` and no queue state.
    private func checkpoint(ackLevel: UInt64) -> [UInt8] {
        var bytes = Array("SQCP".utf8) + [1, 0, 0, 0]
        withUnsafeBytes(of: ackLevel.littleEndian) { bytes += $0 }
        bytes += [0, 0, 0, 0]
        withUnsafeBytes(of: CRC32C.checksum(bytes).littleEndian) { bytes += $0 }
        return bytes
    }

    @Test("damaged checkpoints (garbage, truncated, a directory, ack level 10^9): check warns with exit 0, open returns every task",
          arguments: ["garbage", "truncated", "directory", "ack level"])
    func damagedCheckpoint(_ damage: String) throws {
        let scratch = ScratchDirectory()
        let (data, ids) = try makeData(scratch)
        let path = data + "/tasks/checkpoint"
        switch damage {
        case "garbage": try writeFile(path, Array(repeating: 0x5A, count: 64))
        case "truncated": try writeFile(path, Array(readBytes(path).prefix(10)))
        case "directory": unlink(path); mkdir(path, 0o700)
        default: try writeFile(path, checkpoint(ackLevel: 1_000_000_000))
        }
        let check = try SpoolProcess.run(["recover", "--data", data, "--log", "tasks"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("task store checkpoint: warning: \(path)"), "\(check.stdout)")
        #expect(check.stdout.contains("the next open ignores it") && check.stdout.contains("rebuilds the queues from the whole log (no task lost"),
                "\(check.stdout)")
        if damage == "directory" { #expect(check.stdout.contains("moving the directory to checkpoint.damaged"), "\(check.stdout)") }
        #expect(check.stdout.contains("--mode salvage"), "\(check.stdout)")
        let json = try SpoolProcess.run(["recover", "--data", data, "--log", "tasks", "--json"])
        #expect(json.stdout.contains("\"checkpoint\":{\"path\":\"\(path)\",\"present\":true,\"damaged\":true"), "\(json.stdout)")
        #expect(try pollAll(data) == ids)
    }

    @Test("salvage rewrites a damaged checkpoint from the log and says so; check is clean after")
    func salvageRewritesTheCheckpoint() throws {
        let scratch = ScratchDirectory()
        let (data, ids) = try makeData(scratch)
        let path = data + "/tasks/checkpoint"
        try writeFile(path, checkpoint(ackLevel: 1_000_000_000))
        let salvage = try SpoolProcess.run(["recover", "--data", data, "--log", "tasks", "--mode", "salvage", "--no-backup"])
        #expect(salvage.status == 0, "\(salvage.stdout)\(salvage.stderr)")
        #expect(salvage.stdout.contains("checkpoint: \(path) has ack level 1000000000, beyond the log's end")
                && salvage.stdout.contains("rebuilt from the log") && salvage.stdout.contains("kept as \(path).damaged"), "\(salvage.stdout)")
        // The log itself needed nothing; the report says what was done instead of "nothing to repair".
        #expect(!salvage.stdout.contains("nothing to repair"), "\(salvage.stdout)")
        #expect(salvage.stdout.contains("the log needs no repair; the task store's checkpoint has ack level 1000000000, beyond the log's end")
                && salvage.stdout.contains(": rebuilding it from the log"), "\(salvage.stdout)")
        let check = try SpoolProcess.run(["recover", "--data", data, "--log", "tasks"])
        #expect(check.status == 0 && check.stdout.contains("task store checkpoint: the checkpoint is consistent with the log"), "\(check.stdout)")
        #expect(try pollAll(data) == ids)
    }

    @Test("compact works on a store whose checkpoint is damaged, and keeps every task")
    func compactWithADamagedCheckpoint() throws {
        let scratch = ScratchDirectory()
        let (data, ids) = try makeData(scratch)
        try writeFile(data + "/tasks/checkpoint", Array(repeating: 0x33, count: 50))
        let compact = try SpoolProcess.run(["compact", "--data", data, "--log", "tasks"])
        #expect(compact.status == 0, "\(compact.stdout)\(compact.stderr)")
        #expect(try pollAll(data) == ids)
    }

    @Test("a healthy task store's checkpoint is reported consistent")
    func healthyCheckpoint() throws {
        let scratch = ScratchDirectory()
        let (data, _) = try makeData(scratch)
        let check = try SpoolProcess.run(["recover", "--data", data])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("task store checkpoint: the checkpoint is consistent with the log (ack level 0)"), "\(check.stdout)")
    }
}

/// The engine's checkpoint: check reports one the next open ignores as a warning (exit 0), and
/// the open then restores every run from the log.
@Suite("spool recover: the engine's checkpoint")
struct RecoverEngineCheckpointTests {
    @Test("a damaged engine checkpoint (garbage, a directory) is a warning with exit 0; open lists every run",
          arguments: ["garbage", "directory"])
    func damagedEngineCheckpoint(_ damage: String) throws {
        let scratch = ScratchDirectory()
        let data = scratch.path + "/data"
        let demo = try SpoolProcess.run(["demo", "--data", data, "--json"])
        try #require(demo.status == 0, "\(demo.stderr)")
        let listed = try SpoolProcess.run(["workflow", "list", "--data", data])
        // The demo's order and its child workflow.
        try #require(listed.status == 0 && listed.stdout.contains("2 runs in"), "\(listed.stdout)\(listed.stderr)")
        let path = data + "/checkpoint"
        if damage == "garbage" {
            try writeFile(path, Array(repeating: 0x42, count: 200))
        } else {
            unlink(path)
            mkdir(path, 0o700)
        }
        let check = try SpoolProcess.run(["recover", "--data", data, "--log", "history"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("warning: checkpointUnreadable") && check.stdout.contains("the next open ignores it and replays the whole log"),
                "\(check.stdout)")
        let list = try SpoolProcess.run(["workflow", "list", "--data", data])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout == listed.stdout, "\(list.stdout)")
        // A read opens read-only and leaves the damage where it is: check still warns.
        let afterRead = try SpoolProcess.run(["recover", "--data", data, "--log", "history"])
        #expect(afterRead.status == 0 && afterRead.stdout.contains("warning: checkpointUnreadable"), "\(afterRead.stdout)")
        // A writing open (this start) writes a whole checkpoint again at its close: check is clean.
        let start = try SpoolProcess.run(["workflow", "start", "--data", data, "--id", "after-repair", "--type", "t", "--task-queue", "q"])
        #expect(start.status == 0, "\(start.stderr)")
        let again = try SpoolProcess.run(["recover", "--data", data, "--log", "history"])
        #expect(again.status == 0 && again.stdout.contains("engine invariants hold: histories, outstanding tasks and the checkpoint agree"),
                "\(again.stdout)")
    }
}
