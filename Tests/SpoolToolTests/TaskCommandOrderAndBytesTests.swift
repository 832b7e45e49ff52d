#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing

/// Issue 25, points 5 and 8, through the `spool` executable: `task add` keeps input order and
/// bytes, `task poll` and `queue peek` never change a payload, names are validated, and bad
/// option values are usage errors (64).
@Suite("spool task/queue: order, bytes, names, exit codes")
struct TaskCommandOrderAndBytesTests {
    static let usage: Int32 = 64

    @Test("task add prints ids in input order, and tasks are delivered in input order")
    func idsInInputOrder() throws {
        let scratch = ScratchDirectory()
        let three = try SpoolProcess.run(["task", "add", "--data", scratch.path, "--queue", "q"], input: "a\nb\nc\n")
        #expect(three.status == 0, "\(three.stderr)")
        #expect(three.stdout == "0\n1\n2\n")
        let lines = (0..<2000).map { "task \($0)" }
        let add = try SpoolProcess.run(["task", "add", "--data", scratch.path, "--queue", "big"], input: lines.joined(separator: "\n") + "\n")
        #expect(add.status == 0, "\(add.stderr)")
        let ids = add.stdout.split(separator: "\n").compactMap { UInt64($0) }
        #expect(ids.count == 2000 && ids == ids.sorted(), "ids out of input order")
        let poll = try SpoolProcess.run(["task", "poll", "--data", scratch.path, "--queue", "big", "--max", "2000"])
        #expect(poll.status == 0, "\(poll.stderr)")
        let payloads = poll.stdout.split(separator: "\n").map { $0.split(separator: "\t", maxSplits: 3).last.map(String.init) ?? "" }
        #expect(payloads == lines, "tasks were delivered out of input order")
    }

    @Test("text mode refuses a carriage return and invalid UTF-8, naming the line, and adds nothing after it")
    func textModeRefusesWhatItCannotCarry() throws {
        let scratch = ScratchDirectory()
        let cr = try SpoolProcess.runBytes(["task", "add", "--data", scratch.path, "--queue", "q"], input: Array("one\ntwo\r\nthree\n".utf8))
        #expect(cr.status == 1)
        #expect(cr.stderr.contains("line 2:") && cr.stderr.contains("carriage return") && cr.stderr.contains("1 task(s) before it were added"),
                "\(cr.stderr)")
        #expect(cr.stderr.contains("--format jsonl"))
        let invalid = try SpoolProcess.runBytes(["task", "add", "--data", scratch.path, "--queue", "q"], input: [0x61, 0x0A, 0xFF, 0xFE, 0x0A, 0x62, 0x0A])
        #expect(invalid.status == 1)
        #expect(invalid.stderr.contains("line 2:") && invalid.stderr.contains("not valid UTF-8"), "\(invalid.stderr)")
        let nul = try SpoolProcess.runBytes(["task", "add", "--data", scratch.path, "--queue", "q"], input: [0x61, 0x00, 0x0A])
        #expect(nul.status == 1 && nul.stderr.contains("line 1:") && nul.stderr.contains("NUL"), "\(nul.stderr)")
        // Only "one" and "a" were added, unchanged.
        let peek = try SpoolProcess.run(["queue", "peek", "--data", scratch.path, "--queue", "q"])
        #expect(peek.stdout.split(separator: "\n").map { $0.split(separator: "\t").last.map(String.init) ?? "" } == ["one", "a"], "\(peek.stdout)")
    }

    @Test("--format jsonl carries every byte value through add, peek and poll")
    func jsonlCarriesAnyBytes() throws {
        let scratch = ScratchDirectory()
        let payloads: [[UInt8]] = [Array(0...255), [0xFF, 0xFE], Array("a\r".utf8), [0x0D, 0x0A], [], Array("plain".utf8)]
        let input = payloads.map { "{\"payload_base64\":\"\(base64($0))\"}\n" }.joined()
        let add = try SpoolProcess.run(["task", "add", "--data", scratch.path, "--queue", "q", "--format", "jsonl"], input: input)
        #expect(add.status == 0, "\(add.stderr)")
        #expect(add.stdout.split(separator: "\n").count == payloads.count)
        #expect(add.stdout.hasPrefix("{\"id\":0,\"line\":1}"), "\(add.stdout)")
        for command in [["queue", "peek", "--max", "10"], ["task", "poll", "--max", "10"]] {
            let result = try SpoolProcess.run(command + ["--data", scratch.path, "--queue", "q", "--format", "jsonl"])
            #expect(result.status == 0, "\(command): \(result.stderr)")
            let shown = result.stdout.split(separator: "\n").map { line -> String in
                let parts = line.split(separator: "\"", omittingEmptySubsequences: false)
                guard let index = parts.firstIndex(of: "payload_base64"), index + 2 < parts.count else { return "?" }
                return String(parts[index + 2])
            }
            #expect(shown == payloads.map(base64), "\(command): \(result.stdout)")
        }
    }

    @Test("task poll and queue peek refuse to print a payload text cannot carry, pointing at --format jsonl")
    func textOutputNeverDecodesLossily() throws {
        let scratch = ScratchDirectory()
        let add = try SpoolProcess.run(["task", "add", "--data", scratch.path, "--queue", "q", "--format", "jsonl"],
                                       input: "{\"payload_base64\":\"/w==\"}\n")
        #expect(add.status == 0, "\(add.stderr)")
        for command in [["queue", "peek"], ["task", "poll"], ["task", "poll", "--json"]] {
            let result = try SpoolProcess.runBytes(command + ["--data", scratch.path, "--queue", "q"], input: [])
            #expect(result.status == 1, "\(command)")
            #expect(!result.stdout.contains(0xEF), "\(command) printed U+FFFD")
            #expect(result.stderr.contains("--format jsonl"), "\(command): \(result.stderr)")
        }
        // Not completed: still there for --format jsonl.
        let poll = try SpoolProcess.run(["task", "poll", "--data", scratch.path, "--queue", "q", "--format", "jsonl"])
        #expect(poll.stdout.contains("\"payload_base64\":\"/w==\""), "\(poll.stdout)\(poll.stderr)")
    }

    @Test("queue names and workflow ids: newlines, invalid UTF-8 and over-long ids are usage errors; distinct bytes never collide")
    func namesAreValidated() throws {
        let scratch = ScratchDirectory()
        let data = scratch.path + "/data"
        let newline = try SpoolProcess.run(["task", "add", "--data", data, "--queue", "a\nb"], input: "x\n")
        #expect(newline.status == Self.usage)
        #expect(newline.stderr.contains("--queue") && newline.stderr.contains("newline"), "\(newline.stderr)")
        for invalid in [[0x71, 0xFF], [0x71, 0xFE]] as [[UInt8]] {
            let result = try SpoolProcess.runBytes([Array("task".utf8), Array("add".utf8), Array("--data".utf8), Array(data.utf8),
                                                    Array("--queue".utf8), invalid], input: Array("x\n".utf8))
            #expect(result.status == Self.usage)
            #expect(result.stderr.contains("not valid UTF-8"), "\(result.stderr)")
        }
        for id in ["a\nb", "tab\tid", String(repeating: "w", count: 1001)] {
            let start = try SpoolProcess.run(["workflow", "start", "--data", data, "--id", id, "--type", "t", "--task-queue", "q"])
            #expect(start.status == Self.usage, "\(id.prefix(10))")
            #expect(start.stderr.contains("--id"), "\(start.stderr)")
        }
        let queue = try SpoolProcess.run(["workflow", "start", "--data", data, "--id", "w", "--type", "t", "--task-queue", "q\nr"])
        #expect(queue.status == Self.usage && queue.stderr.contains("--task-queue"), "\(queue.stderr)")
        #expect(!fileExists(data), "a refused name wrote to the directory")
    }

    @Test("bad option values of task and queue commands exit 64 (usage), not 2")
    func badOptionValuesAreUsageErrors() throws {
        let scratch = ScratchDirectory()
        let data = scratch.path + "/data"
        let cases: [([String], String)] = [
            (["task", "add", "--queue", "q", "--priority", "9"], "--priority"),
            (["task", "add", "--queue", "q", "--key", ""], "--key"),
            (["task", "add", "--queue", "q", "--format", "xml"], "--format"),
            (["task", "poll", "--queue", "q", "--max", "0"], "--max"),
            (["task", "poll", "--queue", "q", "--timeout", "-1"], "--timeout"),
            (["task", "poll", "--queue", "q", "--json", "--format", "jsonl"], "not both"),
            (["queue", "peek", "--queue", "q", "--max", "0"], "--max"),
            (["queue", "pause", "--queue", ""], "--queue"),
        ]
        for (arguments, named) in cases {
            let result = try SpoolProcess.run(arguments + ["--data", data], input: "x\n")
            #expect(result.status == Self.usage, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(named), "\(arguments): \(result.stderr)")
        }
        #expect(!fileExists(data), "a usage error wrote to the directory")
    }
}

/// Base64 for the tests, written independently of the command's.
func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    var out = ""
    var index = 0
    while index < bytes.count {
        let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
        let n = chunk.enumerated().reduce(0) { $0 | Int($1.element) << (16 - 8 * $1.offset) }
        for position in 0..<4 {
            out.append(position <= chunk.count ? alphabet[n >> (18 - 6 * position) & 63] : "=")
        }
        index += 3
    }
    return out
}

/// Issue 25 point 8: an option combination refused because of what the directory holds is a
/// usage error too.
@Suite struct RecoverUsageExitTests {
    @Test("recover --backup-dir on a directory with two logs exits 64")
    func backupDirNeedsOneLog() throws {
        let scratch = ScratchDirectory()
        let add = try SpoolProcess.run(["task", "add", "--data", scratch.path, "--queue", "q"], input: "x\n")
        #expect(add.status == 0, "\(add.stderr)")
        let start = try SpoolProcess.run(["workflow", "start", "--data", scratch.path, "--id", "w", "--type", "t", "--task-queue", "q"])
        #expect(start.status == 0, "\(start.stderr)")
        let result = try SpoolProcess.run(["recover", "--data", scratch.path, "--mode", "truncate", "--backup-dir", scratch.path + "/backup"])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("--backup-dir needs one"), "\(result.stderr)")
    }
}
