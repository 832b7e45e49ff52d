#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spool
import SpoolLog
import SpoolToolSupport

/// Exit statuses of the workflow commands (ArgumentParser's usage errors are 64).
enum WorkflowExit {
    /// The engine rejected the request: no such execution, already started, already closed.
    static let rejected = ExitCode(1)
    /// The data directory cannot be used: missing, locked by another process, corrupt.
    static let unusableDirectory = ExitCode.unusableDataDirectory
}

extension DataDirectory {
    /// Whether the directory holds a workflow history at all (`DIR/history`).
    var hasHistory: Bool { DataDirectory.isDirectory(history) }

    /// Opens the engine as a client: no timer loop, so a command that only reads or that the
    /// engine rejects appends nothing (timers are fired by the process that runs the workers).
    ///
    /// A command that may start a workflow (`create`) creates a missing data directory (mode
    /// 0700, by the engine's open); any other refuses it with the common message. Exits with
    /// status 2 when the directory is missing or cannot be opened.
    ///
    /// A command that only reads (`readOnly`) opens the engine read-only: it writes nothing (no
    /// marker, no checkpoint, no repair of a torn tail), so a stopped store on a read-only file
    /// system or another user's store can be inspected; and it opens without closed-run
    /// retention: it shows every run the history holds and drops none, so that reading (under
    /// whatever wall clock) never makes a run disappear; the engine that runs the workers
    /// applies retention.
    func openEngine(command: String, create: Bool, readOnly: Bool = false) throws -> SpoolEngine {
        try requireDataDirectory(command: command, create: create)
        var configuration = SpoolEngineConfiguration()
        configuration.firesTimersAutomatically = false
        if readOnly {
            configuration.closedRunRetention = nil
            configuration.log.access = .readOnly
        }
        // A command-line session is short: one checkpoint, at close.
        configuration.checkpointEveryRecords = nil
        do {
            return try SpoolEngine.open(directory: path, configuration: configuration)
        } catch {
            printError("spool \(command): \(explainOpenFailure(error, directory: self))")
            throw WorkflowExit.unusableDirectory
        }
    }
}

/// Closes the engine after a command; a failure is reported with status 2 (the directory is the problem).
func closeEngine(_ engine: SpoolEngine, command: String) async throws {
    do {
        try await engine.close()
    } catch {
        printError("spool \(command): closing \(engine.directory): \(error)")
        throw WorkflowExit.unusableDirectory
    }
}

/// Reports an error of a client call (not found, already started, already closed, bad argument)
/// and exits with status 1 after closing the engine.
func reject(_ error: SpoolError, engine: SpoolEngine, command: String) async throws -> Never {
    printError("spool \(command): \(engine.directory): \(error)")
    try await closeEngine(engine, command: command)
    throw WorkflowExit.rejected
}

/// `--id ID [--run-id RUN]`: the execution a command works on (its current run without --run-id).
struct ExecutionOptions: ParsableArguments {
    @Option(name: .long, help: "The workflow id.")
    var id: String

    @Option(name: .long, help: "The run id (default: the workflow id's latest run).")
    var runID: String = ""

    var execution: WorkflowExecution { WorkflowExecution(workflowID: id, runID: runID) }

    /// "workflow 'ID'" or "workflow 'ID' run RUN", for messages.
    var named: String { runID.isEmpty ? "workflow '\(id)'" : "workflow '\(id)' run \(runID)" }
}

/// `--status running|completed|…`.
enum StatusOption: String, ExpressibleByArgument, CaseIterable {
    case running, completed, failed, canceled, terminated, continuedAsNew = "continued-as-new", timedOut = "timed-out"

    var status: WorkflowExecutionStatus {
        switch self {
        case .running: .running
        case .completed: .completed
        case .failed: .failed
        case .canceled: .canceled
        case .terminated: .terminated
        case .continuedAsNew: .continuedAsNew
        case .timedOut: .timedOut
        }
    }
}

/// `--id-reuse-policy allow-duplicate|allow-duplicate-failed-only|reject-duplicate|terminate-if-running`.
enum ReusePolicyOption: String, ExpressibleByArgument, CaseIterable {
    case allowDuplicate = "allow-duplicate"
    case allowDuplicateFailedOnly = "allow-duplicate-failed-only"
    case rejectDuplicate = "reject-duplicate"
    case terminateIfRunning = "terminate-if-running"

    var policy: WorkflowIDReusePolicy {
        switch self {
        case .allowDuplicate: .allowDuplicate
        case .allowDuplicateFailedOnly: .allowDuplicateFailedOnly
        case .rejectDuplicate: .rejectDuplicate
        case .terminateIfRunning: .terminateIfRunning
        }
    }
}
