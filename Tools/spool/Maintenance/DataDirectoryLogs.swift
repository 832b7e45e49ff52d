#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolLog
import SpoolToolSupport

/// The logs of the data directory an operator names with `--data`, for the offline commands.
///
/// A data directory holds one log per store: the engine's in `DIR/history`, the durable task
/// queues' in `DIR/tasks/log` (beside the task store's checkpoint), and `DIR/log` from earlier
/// layouts (see `DataDirectory`). A directory that holds segment files at its top level is itself
/// one log (what `spool bench log --data` and `spool torture` leave). `--log NAME` picks one of the logs.
struct DataDirectoryLogs {
    /// The directory given with `--data`.
    let directory: DataDirectory
    /// The logs to work on, each with its name (`history`, `tasks`, …; empty when `path` is the log).
    let logs: [(name: String, directory: String)]

    /// The path given with `--data`, without trailing slashes.
    var path: String { directory.path }

    /// The stores' directories a data directory may hold, by name; `log` is an earlier layout's.
    static let logSubdirectories = [DataDirectory.historyName, DataDirectory.taskStoreName, DataDirectory.storeLogName]

    /// Finds the logs of `path`, or prints why it cannot (missing, or `--log` names none) and
    /// exits with status 2. Creates nothing.
    init(_ path: String, log: String? = nil, command: String) throws {
        directory = DataDirectory(path)
        try directory.requireExisting(command: command)
        let root = directory.path
        let present = Self.logSubdirectories.filter { DataDirectory.isDirectory(root + "/" + $0) }
        if let log {
            guard !log.isEmpty, !log.contains("/"), DataDirectory.isDirectory(root + "/" + log) else {
                printError("spool \(command): \(root): no log named '\(log)'"
                           + (present.isEmpty ? "" : " (logs here: \(present.joined(separator: ", ")))"))
                throw ExitCode.unusableDataDirectory
            }
            logs = [(log, Self.logDirectory(of: root + "/" + log))]
        } else if Self.holdsSegments(root) || present.isEmpty {
            // Either the directory is a log, or it is not a data directory at all: opening it
            // as a log gives the precise reason (empty, foreign).
            logs = [("", root)]
        } else {
            logs = present.map { ($0, Self.logDirectory(of: root + "/" + $0)) }
        }
    }

    /// A store keeps its log either in its own directory or in a `log` subdirectory of it
    /// (the task store: `tasks/log` beside `tasks/checkpoint`).
    static func logDirectory(of store: String) -> String {
        let nested = DataDirectory.StoreDirectory(store).log
        return !holdsSegments(store) && DataDirectory.isDirectory(nested) ? nested : store
    }

    /// The one log to work on, or a message asking for `--log` and exit status 2.
    func single(command: String) throws -> String {
        if logs.count == 1 { return logs[0].directory }
        printError("spool \(command): \(path) holds \(logs.count) logs (\(logs.map(\.name).joined(separator: ", "))); choose one with --log")
        throw ExitCode.unusableDataDirectory
    }

    /// Opens the log for offline work, or prints why it cannot and exits with status 2.
    func open(_ directory: String, writable: Bool, command: String) throws -> OfflineLog {
        do {
            return try OfflineLog.open(directory: directory, writable: writable)
        } catch {
            printError("spool \(command): \(DataDirectory.explain(error, path: directory))")
            throw ExitCode.unusableDataDirectory
        }
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
