#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolToolSupport

@main
struct SpoolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spool",
        abstract: "Spool: an embedded, durable task-queue engine. Runs workflows, benchmarks and maintains a data directory.",
        subcommands: [DemoCommand.self, WorkflowCommand.self, NamespaceCommand.self, SearchAttributeCommand.self, TaskQueueCommand.self, TaskCommand.self, QueueCommand.self, BenchForwarder.self,
                      InspectCommand.self, RecoverCommand.self, CompactCommand.self, TortureForwarder.self,
                      ServeCommand.self]
    )

    /// Refuses arguments that are not valid UTF-8 (exit status 64) before ArgumentParser decodes
    /// them lossily, then runs the command as ArgumentParser's `main()` does.
    static func main() async {
        if let problem = invalidUTF8Argument() {
            printError("spool: \(problem)")
            Glibc.exit(ExitCode.usage.rawValue)
        }
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
