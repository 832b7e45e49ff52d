import ArgumentParser

@main
struct SpoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "Spool: an embedded, durable task-queue engine. Benchmarks and maintains a data directory.",
        subcommands: [BenchCommand.self, RecoverCommand.self, InspectCommand.self, CompactCommand.self, TortureCommand.self, TaskCommand.self, QueueCommand.self]
    )
}

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Spool against a baseline in the same run (release builds only give meaningful figures).",
        subcommands: [BenchLog.self, BenchOpen.self, BenchDispatch.self, BenchCompact.self]
    )
}
