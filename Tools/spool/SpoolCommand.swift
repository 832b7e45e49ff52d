import ArgumentParser

@main
struct SpoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "Spool: an embedded, durable task-queue engine. Runs workflows, benchmarks and maintains a data directory.",
        subcommands: [DemoCommand.self, WorkflowCommand.self, TaskCommand.self, QueueCommand.self, BenchCommand.self,
                      InspectCommand.self, RecoverCommand.self, CompactCommand.self, TortureCommand.self,
                      ServeCommand.self]
    )
}

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Spool against a baseline in the same run (release builds only give meaningful figures).",
        subcommands: [BenchLog.self, BenchOpen.self, BenchDispatch.self, BenchQueue.self, BenchWorkflows.self, BenchCompact.self, BenchReopen.self, BenchBacklog.self]
    )
}
