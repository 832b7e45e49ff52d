#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing

/// `spool demo` and `spool workflow …` run as a user runs them: exit statuses, what they print,
/// and that a rejected command leaves the data directory byte for byte as it was.
@Suite("spool demo and spool workflow")
struct WorkflowCommandTests {
    static let usage: Int32 = 64

    @Test("demo on a fresh directory runs the order to completion, with the retried payment and the heartbeats")
    func demoOnFreshDirectory() throws {
        let scratch = ScratchDirectory()
        let data = scratch.path + "/spool-data"
        let result = try SpoolProcess.run(["demo", "--data", data])
        #expect(result.status == 0, "\(result.stderr)")
        let out = result.stdout
        for type in ["reserve-inventory", "charge-payment", "ship-order"] { #expect(out.contains("activityType=\(type)"), "\(out)") }
        // The retry: ActivityTaskStarted of charge-payment is attempt 2 and carries the first attempt's failure.
        // The retry carries the first attempt's failure with its cause.
        #expect(out.contains("attempt=2 lastFailure='GatewayTimeout: payment gateway timed out (simulated) "
                             + "(cause: SocketTimeout: no answer within 2 s from gateway.example)'"), "\(out)")
        #expect(out.contains("charge-payment succeeded on attempt 2"), "\(out)")
        // The worker answered a query on the closed run, from its history: all three steps done.
        #expect(out.contains("query 'progress', answered by a worker from the history: 3 of 3 steps done"), "\(out)")
        // The heartbeat details the engine recorded for ship-order.
        #expect(out.contains("packed 3/3 parcels") || out.contains("packed 2/3 parcels") || out.contains("packed 1/3 parcels"), "\(out)")
        #expect(out.contains("WorkflowExecutionCompleted"), "\(out)")
        // The child workflow on the billing queue: started with the order's task, its result the order's.
        for type in ["StartChildWorkflowExecutionInitiated", "ChildWorkflowExecutionStarted", "ChildWorkflowExecutionCompleted"] {
            #expect(out.contains(type), "\(out)")
        }
        #expect(out.contains("child workflow 'invoice-order-") && out.contains("(task queue billing)"), "\(out)")
        #expect(out.contains("result=\"invoice sent for order-"), "\(out)")
        #expect(out.contains("1 child workflow") && out.contains("holds 2 workflow executions"), "\(out)")

        // Again on the same directory: a new workflow id, and the directory now holds two.
        let again = try SpoolProcess.run(["demo", "--data", data, "--json"])
        #expect(again.status == 0, "\(again.stderr)")
        let lines = again.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("{\"eventId\":1,") == true, "\(again.stdout)")
        #expect(lines.last?.contains("\"eventType\":\"WorkflowExecutionCompleted\"") == true, "\(again.stdout)")
        let list = try SpoolProcess.run(["workflow", "list", "--data", data, "--type", "order-processing", "--status", "completed", "--json"])
        #expect(list.status == 0)
        #expect(list.stdout.split(separator: "\n").count == 2, "\(list.stdout)")
    }

    @Test("start, then describe, show and list find the run; signal, cancel and terminate reach it")
    func startDescribeShowList() throws {
        let scratch = ScratchDirectory()
        let data = scratch.path
        let start = try SpoolProcess.run(["workflow", "start", "--data", data, "--id", "invoice-7", "--type", "invoice",
                                          "--task-queue", "billing", "--input", "amount=12", "--json"])
        #expect(start.status == 0, "\(start.stderr)")
        #expect(start.stdout.contains("\"workflowId\":\"invoice-7\"") && start.stdout.contains("\"started\":true"), "\(start.stdout)")

        let describe = try SpoolProcess.run(["workflow", "describe", "--data", data, "--id", "invoice-7"])
        #expect(describe.status == 0, "\(describe.stderr)")
        #expect(describe.stdout.contains("status         Running") && describe.stdout.contains("type           invoice"), "\(describe.stdout)")
        #expect(describe.stdout.contains("workflow task  scheduled"), "\(describe.stdout)")

        let show = try SpoolProcess.run(["workflow", "show", "--data", data, "--id", "invoice-7"])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("WorkflowExecutionStarted") && show.stdout.contains("input=\"amount=12\""), "\(show.stdout)")

        let list = try SpoolProcess.run(["workflow", "list", "--data", data, "--status", "running"])
        #expect(list.status == 0)
        #expect(list.stdout.contains("invoice-7") && list.stdout.contains("1 run in"), "\(list.stdout)")

        #expect(try SpoolProcess.run(["workflow", "signal", "--data", data, "--id", "invoice-7", "--name", "paid"]).status == 0)
        #expect(try SpoolProcess.run(["workflow", "cancel", "--data", data, "--id", "invoice-7"]).status == 0)
        #expect(try SpoolProcess.run(["workflow", "terminate", "--data", data, "--id", "invoice-7", "--reason", "test"]).status == 0)
        let history = try SpoolProcess.run(["workflow", "show", "--data", data, "--id", "invoice-7", "--json"])
        let types = history.stdout.split(separator: "\n").compactMap { line in
            line.split(separator: "\"eventType\":\"").dropFirst().first?.split(separator: "\"").first.map(String.init)
        }
        #expect(types == ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowExecutionSignaled",
                          "WorkflowExecutionCancelRequested", "WorkflowExecutionTerminated"], "\(history.stdout)")
        let terminated = try SpoolProcess.run(["workflow", "list", "--data", data, "--status", "terminated", "--json"])
        #expect(terminated.stdout.contains("\"workflowId\":\"invoice-7\""), "\(terminated.stdout)")
    }

    @Test("starting an id that is running is rejected with status 1, names the id, and writes nothing")
    func duplicateStart() throws {
        let scratch = ScratchDirectory()
        let arguments = ["workflow", "start", "--data", scratch.path, "--id", "dup-1", "--type", "t", "--task-queue", "q"]
        #expect(try SpoolProcess.run(arguments).status == 0)
        let before = snapshot(scratch.path)
        #expect(before.keys.contains { $0.hasPrefix("history/") && $0.hasSuffix(".log") }, "\(before.keys.sorted())")
        let again = try SpoolProcess.run(arguments)
        #expect(again.status == 1)
        #expect(again.stderr.contains("workflow 'dup-1'") && again.stderr.contains(scratch.path), "\(again.stderr)")
        #expect(snapshot(scratch.path) == before, "a rejected start changed the data directory")
    }

    @Test("an unknown id, or a closed run, is status 1 with the id named, and nothing is written")
    func unknownAndClosed() throws {
        let scratch = ScratchDirectory()
        let data = scratch.path
        // A directory with no history yet: nothing is created.
        let empty = try SpoolProcess.run(["workflow", "describe", "--data", data, "--id", "ghost"])
        #expect(empty.status == 1)
        #expect(empty.stderr.contains("workflow 'ghost'"), "\(empty.stderr)")
        #expect(snapshot(data).isEmpty)

        #expect(try SpoolProcess.run(["workflow", "start", "--data", data, "--id", "w", "--type", "t", "--task-queue", "q"]).status == 0)
        #expect(try SpoolProcess.run(["workflow", "terminate", "--data", data, "--id", "w"]).status == 0)
        let before = snapshot(data)
        for command in [["describe"], ["show"], ["signal", "--name", "s"], ["cancel"], ["terminate"]] {
            let result = try SpoolProcess.run(["workflow"] + command + ["--data", data, "--id", "ghost"])
            #expect(result.status == 1, "\(command)")
            #expect(result.stderr.contains("workflow 'ghost'") && result.stderr.contains("no such workflow execution"), "\(command): \(result.stderr)")
        }
        for command in [["signal", "--name", "s"], ["cancel"], ["terminate"]] {
            let result = try SpoolProcess.run(["workflow"] + command + ["--data", data, "--id", "w"])
            #expect(result.status == 1, "\(command)")
            #expect(result.stderr.contains("workflow 'w'") && result.stderr.contains("already Terminated"), "\(command): \(result.stderr)")
        }
        let wrongRun = try SpoolProcess.run(["workflow", "describe", "--data", data, "--id", "w", "--run-id", "no-such-run"])
        #expect(wrongRun.status == 1)
        #expect(wrongRun.stderr.contains("no-such-run"), "\(wrongRun.stderr)")
        #expect(snapshot(data) == before, "a rejected command changed the data directory")
    }

    @Test("a missing data directory is status 2, named, and not created")
    func missingDirectory() throws {
        let scratch = ScratchDirectory()
        let missing = scratch.path + "/absent"
        // `start` writes, so it creates a missing data directory: DataDirectoryCommandTests.
        for command in [["describe", "--id", "w"], ["show", "--id", "w"],
                        ["list"], ["signal", "--id", "w", "--name", "s"], ["cancel", "--id", "w"], ["terminate", "--id", "w"]] {
            let result = try SpoolProcess.run(["workflow"] + command + ["--data", missing])
            #expect(result.status == 2, "\(command)")
            #expect(result.stderr.contains("\(missing): no such directory"), "\(command): \(result.stderr)")
            #expect(!fileExists(missing), "\(command) created \(missing)")
        }
    }

    @Test("a history held open by another process is status 2 and named")
    func lockedHistory() throws {
        let scratch = ScratchDirectory()
        #expect(try SpoolProcess.run(["workflow", "start", "--data", scratch.path, "--id", "w", "--type", "t", "--task-queue", "q"]).status == 0)
        let holder = try Log.open(directory: scratch.path + "/history")
        defer { try? holder.close() }
        for command in [["describe", "--id", "w"], ["list"], ["start", "--id", "v", "--type", "t", "--task-queue", "q"]] {
            let result = try SpoolProcess.run(["workflow"] + command + ["--data", scratch.path])
            #expect(result.status == 2, "\(command)")
            #expect(result.stderr.contains("\(scratch.path)/history") && result.stderr.contains("open in another process"),
                    "\(command): \(result.stderr)")
        }
        let demo = try SpoolProcess.run(["demo", "--data", scratch.path])
        #expect(demo.status == 2)
        #expect(demo.stderr.contains("open in another process"), "\(demo.stderr)")
    }

    @Test("list --query and count select runs with the visibility query language; a bad query exits 64 naming the column")
    func listAndCountWithAQuery() throws {
        let scratch = ScratchDirectory()
        let data = scratch.path
        for (id, type) in [("inv-1", "invoice"), ("inv-2", "invoice"), ("ref-1", "refund")] {
            let start = try SpoolProcess.run(["workflow", "start", "--data", data, "--id", id, "--type", type, "--task-queue", "billing"])
            #expect(start.status == 0, "\(start.stderr)")
        }
        #expect(try SpoolProcess.run(["workflow", "terminate", "--data", data, "--id", "inv-1", "--reason", "test"]).status == 0)

        let list = try SpoolProcess.run(["workflow", "list", "--data", data, "--json", "--query",
                                         "WorkflowType = 'invoice' AND ExecutionStatus = 'Running' OR WorkflowId STARTS_WITH 'ref'"])
        #expect(list.status == 0, "\(list.stderr)")
        let ids = list.stdout.split(separator: "\n").compactMap { $0.split(separator: "\"workflowId\":\"").dropFirst().first?.split(separator: "\"").first }
        // Newest start first: ref-1 started last.
        #expect(ids == ["ref-1", "inv-2"], "\(list.stdout)")
        let limited = try SpoolProcess.run(["workflow", "list", "--data", data, "--json", "--limit", "2"])
        #expect(limited.stdout.split(separator: "\n").count == 2, "\(limited.stdout)")

        let count = try SpoolProcess.run(["workflow", "count", "--data", data, "--json", "--query", "GROUP BY ExecutionStatus"])
        #expect(count.status == 0, "\(count.stderr)")
        #expect(count.stdout == "{\"count\":3,\"groups\":[{\"values\":[\"Running\"],\"count\":2},{\"values\":[\"Terminated\"],\"count\":1}]}\n", "\(count.stdout)")

        let before = snapshot(data)
        let bad = try SpoolProcess.run(["workflow", "list", "--data", data, "--query", "WorkflowType = invoice"])
        #expect(bad.status == Self.usage)
        #expect(bad.stderr.contains("invalid query: expected a value, found the name invoice (did you forget to quote 'invoice'?) at column 16"), "\(bad.stderr)")
        let badCount = try SpoolProcess.run(["workflow", "count", "--data", data, "--query", "Owner = 'me'"])
        #expect(badCount.status == Self.usage)
        #expect(badCount.stderr.contains("unknown search attribute Owner"), "\(badCount.stderr)")
        #expect(snapshot(data) == before, "a rejected query changed the data directory")
    }

    @Test("bad options are usage errors (64) that name the option")
    func badOptions() throws {
        let scratch = ScratchDirectory()
        let cases: [([String], String)] = [
            (["workflow", "start", "--data", scratch.path, "--type", "t", "--task-queue", "q"], "--id"),
            (["workflow", "start", "--data", scratch.path, "--id", "w", "--type", "t", "--task-queue", "q", "--id-reuse-policy", "sometimes"], "--id-reuse-policy"),
            (["workflow", "start", "--data", scratch.path, "--id", "", "--type", "t", "--task-queue", "q"], "--id"),
            (["workflow", "list", "--data", scratch.path, "--status", "sleeping"], "--status"),
            (["workflow", "list", "--data", scratch.path, "--status", "running", "--query", "WorkflowId = 'w'"], "--query"),
            (["workflow", "list", "--data", scratch.path, "--limit", "0"], "--limit"),
            (["workflow", "signal", "--data", scratch.path, "--id", "w"], "--name"),
            (["workflow", "describe", "--id", "w"], "--data"),
            (["workflow", "frobnicate"], "frobnicate"),
            (["bench", "workflows", "--workflows", "0"], "--workflows"),
            (["bench", "workflows", "--durability", "eventually"], "--durability"),
        ]
        for (arguments, named) in cases {
            let result = try SpoolProcess.run(arguments)
            #expect(result.status == Self.usage, "\(arguments)")
            #expect(result.stderr.contains(named), "\(arguments): \(result.stderr)")
        }
        #expect(snapshot(scratch.path).isEmpty, "a usage error wrote to the directory")
    }
}
