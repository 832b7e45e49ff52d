import ArgumentParser
import Dispatch

/// The entry point: a synchronous `main` that runs the command in a task and waits for it.
/// Not an `async` main on purpose: valgrind 3.19 (Debian 12's) crashes on any binary whose `main`
/// is `async`, and `Tools/bench/callgrind.py` counts the engine's instructions under it.
@main
enum SpoolLabMain {
    static func main() {
        let done = DispatchSemaphore(value: 0)
        // Detached: this `main` is on the main actor, whose queue this thread, blocked below, never drains.
        Task.detached {
            await SpoolLabCommand.main()
            done.signal()
        }
        done.wait()
    }
}

/// The benchmark and crash lab: `spool bench …` and `spool torture …` run this executable (see
/// Docs/lab.md). It links what the operator's `spool` must not: SQLite (the queue baseline), the
/// simulated power loss of SpoolLogTesting, and the latency histograms.
struct SpoolLabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool-lab",
        abstract: "Spool's benchmark and crash lab (also reached as `spool bench …` and `spool torture …`).",
        subcommands: [BenchCommand.self, TortureCommand.self]
    )
}

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Spool against a baseline in the same run (release builds only give meaningful figures).",
        subcommands: [BenchLog.self, BenchOpen.self, BenchDispatch.self, BenchQueue.self, BenchWorkflows.self, BenchCompact.self, BenchReopen.self, BenchVisibility.self, BenchBacklog.self, BenchServe.self, BenchTaskQueues.self]
    )
}
