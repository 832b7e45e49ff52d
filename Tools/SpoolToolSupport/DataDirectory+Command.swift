import ArgumentParser
import SpoolLog

extension ExitCode {
    /// The exit status of every command whose data directory cannot be used: missing (for a
    /// command that only reads), not a directory, locked by another process, damaged.
    package static let unusableDataDirectory = ExitCode(2)
}

/// `--data DIR`: the data directory of the workflow, task and queue commands.
package struct DataDirectoryOptions: ParsableArguments {
    package init() {}

    @Option(name: .long, help: "The data directory: the engine's history in DIR/history, the task store in DIR/tasks.")
    package var data: String

    /// The directory `--data` names (trailing slashes dropped).
    package var directory: DataDirectory { DataDirectory(data) }
}

extension DataDirectory {
    /// For a command that only reads (or only changes what is already there): refuses a missing
    /// data directory with the message every command gives, and exit status 2. Creates nothing.
    package func requireExisting(command: String) throws {
        try refusing(command: command) { () throws(LogError) in try requireExisting() }
    }

    /// For a command that writes: creates the data directory (mode 0700) when it is missing, as
    /// the engine and the task store create theirs; its parent must exist. Exit status 2 when it
    /// cannot be created.
    package func createIfMissing(command: String) throws {
        try refusing(command: command) { () throws(LogError) in try create() }
    }

    /// For the workflow, task and queue commands: refuses, with exit status 2 and nothing written,
    /// a directory that is not a data directory — another kind of Spool directory (a task store,
    /// a log), one marked by something this build does not know, or a non-empty one holding other
    /// files (`--data /etc`) — then, like ``createIfMissing(command:)`` (`create`) or
    /// ``requireExisting(command:)``, creates or requires it. An empty directory is a new store.
    package func requireDataDirectory(command: String, create: Bool) throws {
        if let refusal = Self.refusal(of: Self.identify(path), as: .engine, path: path) {
            try refusing(command: command) { () throws(LogError) in throw refusal }
        }
        if create { try createIfMissing(command: command) } else { try requireExisting(command: command) }
    }

    /// Runs `body`; when it throws, prints why the directory cannot be used and exits with status 2.
    private func refusing(command: String, _ body: () throws(LogError) -> Void) throws {
        do {
            try body()
        } catch {
            printError("spool \(command): \(Self.explain(error, path: path))")
            throw ExitCode.unusableDataDirectory
        }
    }

    /// A one-line explanation of why a data directory or one of its logs cannot be used, for
    /// operators; `path` is named when the error names none.
    package static func explain(_ error: LogError, path fallback: String) -> String {
        let path = error.path ?? fallback
        switch error.code {
        case .directoryMissing where error.message == missingMessage, .logDirectoryMissing:
            return "\(path): \(missingMessage) (check --data; commands that write create it)"
        case .directoryMissing, .notADirectory, .notALogDirectory, .wrongDirectoryKind, .foreignDirectory: return "\(path): \(error.message)"
        case .emptyLogDirectory: return "\(path): \(error.message); is this a Spool data directory?"
        case .directoryLocked: return "\(path): the log is open by another process (pid unknown); stop it first"
        default: return error.description
        }
    }
}

extension ExitCode {
    /// The exit status of a usage error: an unknown option, a missing or bad option value
    /// (ArgumentParser's `validationFailure`, EX_USAGE).
    package static let usage = ExitCode.validationFailure
}
