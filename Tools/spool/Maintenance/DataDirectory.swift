#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolLog

/// The data directory an operator names with `--data`, and where its log lives in it.
///
/// Today a data directory *is* a log directory (segments at its top level). The engine will keep its
/// log in `DIR/log` beside its own files; both layouts are accepted: `DIR` itself when it holds
/// segment files, otherwise `DIR/log` when that is a directory.
struct DataDirectory {
    /// The path given with `--data`.
    let path: String
    /// The log directory inside it (possibly `path` itself).
    let logDirectory: String

    static let logSubdirectory = "log"

    init(_ path: String) {
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed
        let nested = trimmed + "/" + Self.logSubdirectory
        if !Self.holdsSegments(trimmed) && Self.isDirectory(nested) {
            logDirectory = nested
        } else {
            logDirectory = trimmed
        }
    }

    /// Opens the log for offline work, or prints why it cannot and exits with status 2.
    func open(writable: Bool, command: String) throws -> OfflineLog {
        do {
            return try OfflineLog.open(directory: logDirectory, writable: writable)
        } catch {
            printError("spool \(command): \(Self.explain(error, data: path))")
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
