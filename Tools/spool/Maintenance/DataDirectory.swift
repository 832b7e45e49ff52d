#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolLog

/// The data directory an operator names with `--data`, and the logs in it.
///
/// A data directory holds one log per store: the engine's in `DIR/history`, the durable task
/// queues' in `DIR/tasks/log` (beside the task store's checkpoint), and `DIR/log` from earlier
/// layouts. A directory that holds segment files at its top level is itself one log (what
/// `spool bench log --data` and `spool torture` leave). `--log NAME` picks one of the logs.
struct DataDirectory {
    /// The path given with `--data`, without trailing slashes.
    let path: String
    /// The logs to work on, each with its name (`history`, `tasks`, …; empty when `path` is the log).
    let logs: [(name: String, directory: String)]

    static let logSubdirectories = ["history", "tasks", "log"]

    /// Finds the logs of `path`, or prints why `--log` names none and exits with status 2.
    init(_ path: String, log: String? = nil, command: String) throws {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed
        let present = Self.logSubdirectories.filter { Self.isDirectory(trimmed + "/" + $0) }
        if let log {
            guard !log.isEmpty, !log.contains("/"), Self.isDirectory(trimmed + "/" + log) else {
                printError("spool \(command): \(trimmed): no log named '\(log)'"
                           + (present.isEmpty ? "" : " (logs here: \(present.joined(separator: ", ")))"))
                throw ExitCode(2)
            }
            logs = [(log, Self.logDirectory(of: trimmed + "/" + log))]
        } else if Self.holdsSegments(trimmed) || present.isEmpty {
            // Either the directory is a log, or it is not a data directory at all: opening it
            // as a log gives the precise reason (missing, empty, foreign).
            logs = [("", trimmed)]
        } else {
            logs = present.map { ($0, Self.logDirectory(of: trimmed + "/" + $0)) }
        }
    }

    /// A store keeps its log either in its own directory or in a `log` subdirectory of it
    /// (the task store: `tasks/log` beside `tasks/checkpoint`).
    static func logDirectory(of store: String) -> String {
        let nested = store + "/log"
        return !holdsSegments(store) && isDirectory(nested) ? nested : store
    }

    /// The one log to work on, or a message asking for `--log` and exit status 2.
    func single(command: String) throws -> String {
        if logs.count == 1 { return logs[0].directory }
        printError("spool \(command): \(path) holds \(logs.count) logs (\(logs.map(\.name).joined(separator: ", "))); choose one with --log")
        throw ExitCode(2)
    }

    /// Opens the log for offline work, or prints why it cannot and exits with status 2.
    func open(_ directory: String, writable: Bool, command: String) throws -> OfflineLog {
        do {
            return try OfflineLog.open(directory: directory, writable: writable)
        } catch {
            printError("spool \(command): \(Self.explain(error, data: directory))")
            throw ExitCode(2)
        }
    }

    /// A one-line explanation of why a directory cannot be used, for operators.
    static func explain(_ error: LogError, data: String) -> String {
        let path = error.path ?? data
        switch error.code {
        case .logDirectoryMissing: return "\(path): no such directory"
        case .emptyLogDirectory: return "\(path): \(error.message); is this a Spool data directory?"
        case .notALogDirectory: return "\(path): \(error.message)"
        case .directoryLocked: return "\(path): the log is open by another process (pid unknown); stop it first"
        default: return error.description
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    static func holdsSegments(_ path: String) -> Bool {
        guard let dir = opendir(path) else { return false }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.utf8.count == 24 && name.hasSuffix(".log") && name.prefix(20).utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
                return true
            }
        }
        return false
    }
}
