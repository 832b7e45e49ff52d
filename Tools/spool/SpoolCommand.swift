import ArgumentParser

@main
struct SpoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "Spool: an embedded, durable task-queue engine. Runs workflows, benchmarks and maintains a data directory.",
        subcommands: [DemoCommand.self, WorkflowCommand.self, TaskCommand.self, QueueCommand.self, BenchForwarder.self,
                      InspectCommand.self, RecoverCommand.self, CompactCommand.self, TortureForwarder.self,
                      ServeCommand.self]
    )
}
