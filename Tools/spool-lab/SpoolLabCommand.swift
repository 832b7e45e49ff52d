import ArgumentParser

/// The benchmark and crash lab: `spool bench …` and `spool torture …` run this executable (see
/// Docs/lab.md). It links what the operator's `spool` must not: SQLite (the queue baseline), the
/// simulated power loss of SpoolLogTesting, and the latency histograms.
@main
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
