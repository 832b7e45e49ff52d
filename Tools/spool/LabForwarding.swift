#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolToolSupport

/// The benchmark and crash lab is a second executable, `spool-lab`, so that the operator binary
/// links neither SQLite, nor the test simulators, nor the benchmark harness (see Docs/lab.md).
/// `spool bench …` and `spool torture …` keep working: they replace this process with the
/// `spool-lab` installed beside `spool`, passing every argument through, so its output, exit
/// status and signals are the lab's own.
enum LabForwarding {
    /// The lab's executable name.
    static let executableName = "spool-lab"

    /// The exit status when the lab cannot be started (a shell's "command not found").
    static let labMissing = ExitCode(127)

    /// Replaces this process with `spool-lab arguments…`; returns only by throwing, after saying
    /// which path it expected, when the lab is missing or cannot be run.
    static func exec(_ arguments: [String], command: String) throws -> Never {
        guard let path = siblingExecutablePath(executableName) else {
            printError("spool \(command): cannot find the running executable (/proc/self/exe), and so the \(executableName) beside it")
            throw labMissing
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        fflush(nil)
        execv(path, argv)
        let reason = String(cString: strerror(errno))
        printError("spool \(command): the benchmark and crash lab is a separate executable, expected at \(path): \(reason); "
                   + "build it with `swift build --product \(executableName)` (or `-c release`) next to spool")
        throw labMissing
    }
}

/// A `spool` command that runs the `spool-lab` command of the same name with its arguments.
protocol LabForwarder: ParsableCommand {
    /// Everything after the command's name, unparsed.
    var arguments: [String] { get }
}

extension LabForwarder {
    func run() throws {
        let name = Self.configuration.commandName ?? ""
        try LabForwarding.exec([name] + arguments, command: name)
    }
}

/// `spool bench …`: runs `spool-lab bench …`.
struct BenchForwarder: LabForwarder {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Spool against a baseline in the same run (runs spool-lab bench; release builds only give meaningful figures).",
        discussion: "Forwards every argument to `spool-lab bench`, the lab executable beside spool; `spool bench --help` lists its benches."
    )

    @Argument(parsing: .captureForPassthrough, help: "The bench and its options (see `spool bench --help`).")
    var arguments: [String] = []
}

/// `spool torture …`: runs `spool-lab torture …`.
struct TortureForwarder: LabForwarder {
    static let configuration = CommandConfiguration(
        commandName: "torture",
        abstract: "Crash a durable workload again and again and verify every acknowledged record (runs spool-lab torture).",
        discussion: "Forwards every argument to `spool-lab torture`, the lab executable beside spool; `spool torture --help` lists its options."
    )

    @Argument(parsing: .captureForPassthrough, help: "The torture run's options (see `spool torture --help`).")
    var arguments: [String] = []
}
