import ArgumentParser

@main
struct SpoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "Spool: an embedded, durable task-queue engine. Benchmark, inspect, recover and compact a data directory.",
        subcommands: []
    )
}
