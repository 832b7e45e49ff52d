#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolLog
import SpoolMatching
import SpoolQueue
import SpoolToolSupport

/// The options every `spool task` and `spool queue` command takes: the data directory, and
/// the durability of what the command writes. The task store lives in `DIR/tasks` (see
/// `DataDirectory`; the engine keeps its history in `DIR/history`).
struct TaskStoreOptions: ParsableArguments {
    @OptionGroup var location: DataDirectoryOptions

    @Option(name: .long, help: "Log durability when writing: sync (fdatasync before acknowledging), interval, or none.")
    var durability: DurabilityOption = .sync

    /// The data directory `--data` names.
    var directory: DataDirectory { location.directory }

    /// The task store's directory, `DIR/tasks`.
    var storeDirectory: String { directory.taskStore.path }

    /// Opens the store, or prints why it cannot and exits with status 2.
    ///
    /// A command that may create tasks or queue state (`create`) creates a missing data
    /// directory (mode 0700) and the store in it. One that only reads or changes what is already
    /// there refuses a missing data directory with the common message (exit status 2), and
    /// returns nil, creating nothing, when the directory holds no task store yet.
    func open(command: String, create: Bool) throws -> TaskStore? {
        try directory.requireDataDirectory(command: command, create: create)
        if !create && !DataDirectory.isDirectory(storeDirectory) { return nil }
        var configuration = TaskStoreConfiguration(durability: durability.durability)
        // A command-line session is short: no background checkpoints, one at close.
        configuration.checkpointInterval = .seconds(3600)
        do {
            return try TaskStore.open(directory: storeDirectory, configuration: configuration)
        } catch {
            printError("spool \(command): \(explain(error))")
            throw ExitCode.unusableDataDirectory
        }
    }

    func explain(_ error: QueueError) -> String {
        if let log = error.underlying as? LogError, log.code == .wrongDirectoryKind || log.code == .foreignDirectory {
            return DataDirectory.explain(log, path: storeDirectory)
        }
        switch error.code {
        case .directoryLocked:
            return "\(storeDirectory): the task store is open in another process; stop it first (or wait for it to exit)"
        case .directoryMissing:
            return "\(error.path ?? storeDirectory): \(error.message)"
        default:
            return error.description
        }
    }
}

/// `--kind workflow|activity`.
enum KindOption: String, ExpressibleByArgument, CaseIterable {
    case workflow
    case activity

    var kind: TaskQueueKind { self == .workflow ? .workflow : .activity }
}

/// The queue a command works on: `--queue Q [--kind workflow|activity]`, checked before anything is opened.
struct QueueOptions: ParsableArguments {
    @Option(name: .long, help: "The task queue's name (1…1000 UTF-8 bytes).")
    var queue: String

    @Option(name: .long, help: "Which of the name's two queues: workflow or activity.")
    var kind: KindOption = .activity

    /// Checks the name before anything is opened, so that a bad name writes nothing.
    func check(command: String) throws {
        do {
            try TaskQueueName.validate(queue)
        } catch {
            let shown = queue.utf8.count > 40 ? String(queue.prefix(40)) + "…" : queue
            printError("spool \(command): bad --queue '\(shown)': \(error.message)")
            throw ExitCode(2)
        }
    }
}

/// A payload for a terminal or JSON: its UTF-8 text (invalid bytes replaced).
func payloadText(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self)
}

/// Closes the store, reporting (not throwing) a failure to stderr with exit status 1.
func closeStore(_ store: TaskStore, command: String) async throws {
    do {
        try await store.close()
    } catch {
        printError("spool \(command): closing the task store: \(error)")
        throw ExitCode(1)
    }
}
