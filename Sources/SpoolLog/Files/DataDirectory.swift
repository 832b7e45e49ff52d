#if canImport(Glibc)
import Glibc
#endif

/// The layout of a Spool data directory: where the engine and the task store keep their logs
/// and checkpoints, as path names only.
///
/// ```
/// DATA/
///   history/        the engine's log                       (``history``)
///   checkpoint      the engine's checkpoint                (``checkpoint``)
///   …               the engine's closed-run tables
///   tasks/          the task store                          (``taskStore``)
///     log/          its log                                 (``StoreDirectory/log``)
///     checkpoint    its checkpoint                          (``StoreDirectory/checkpoint``)
/// ```
///
/// Every log directory holds its own lock file (``lockFile(ofLog:)``). The engine, the task
/// store and every `spool` command build their paths here, so the layout is written down once;
/// this type knows the names of the stores, not what they hold.
///
/// A path given by a user is normalised once, by ``init(_:)``: trailing slashes are dropped
/// (`data/` and `data` are the same directory, and messages name it one way).
package struct DataDirectory: Sendable, Hashable, CustomStringConvertible {
    /// The directory, without trailing slashes (`/` stays `/`).
    package let path: String

    /// The data directory at `path`; trailing slashes are dropped. Nothing is read or created.
    package init(_ path: String) {
        self.path = Self.normalised(path)
    }

    /// The engine's log directory's name in a data directory.
    package static let historyName = "history"
    /// The task store's directory's name in a data directory.
    package static let taskStoreName = "tasks"
    /// The name of a store's checkpoint file: the engine's in the data directory, the task
    /// store's in its own directory.
    package static let checkpointName = "checkpoint"
    /// The name of a task store's log directory in the store's directory.
    package static let storeLogName = "log"
    /// The name of the lock file every open log holds with `flock`, in its directory.
    package static let lockFileName = "lock"

    /// The engine's log: `DATA/history`.
    package var history: String { path + "/" + Self.historyName }
    /// The engine's checkpoint: `DATA/checkpoint`.
    package var checkpoint: String { path + "/" + Self.checkpointName }
    /// The task store of this data directory: `DATA/tasks`.
    package var taskStore: StoreDirectory { StoreDirectory(path + "/" + Self.taskStoreName) }

    /// The lock file of the log in `directory`.
    package static func lockFile(ofLog directory: String) -> String { directory + "/" + lockFileName }

    package var description: String { path }

    /// The directory that holds `path` (`/` for `/a`, `.` for a bare name); `path` without
    /// trailing slashes.
    package static func parent(of path: String) -> String {
        path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    }

    /// `path` without trailing slashes; `/` and the empty path stay as they are.
    package static func normalised(_ path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        return String(trimmed)
    }
}

extension DataDirectory {
    /// A task store's directory: `DATA/tasks` in a data directory, or whatever directory an
    /// application gives `SpoolQueue` on its own. It holds the store's log and checkpoint.
    package struct StoreDirectory: Sendable, Hashable, CustomStringConvertible {
        /// The store's directory, without trailing slashes.
        package let path: String

        /// The store directory at `path`; trailing slashes are dropped. Nothing is read or created.
        package init(_ path: String) {
            self.path = DataDirectory.normalised(path)
        }

        /// The store's log: `STORE/log`.
        package var log: String { path + "/" + DataDirectory.storeLogName }
        /// The store's checkpoint: `STORE/checkpoint`.
        package var checkpoint: String { path + "/" + DataDirectory.checkpointName }

        package var description: String { path }
    }
}

extension LogError.Code {
    /// A directory that must exist does not (a data directory a command only reads), or the
    /// parent of one to create does not.
    public static let directoryMissing = LogError.Code("directoryMissing")
    /// A path that must name a directory names something else.
    public static let notADirectory = LogError.Code("notADirectory")
}

extension DataDirectory {
    /// The words every refusal of a missing data directory uses, after its path.
    package static let missingMessage = "no such directory"

    /// Whether `path` is a directory (following symbolic links).
    package static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// Whether the data directory exists as a directory.
    package var exists: Bool { Self.isDirectory(path) }

    /// Checks that the data directory exists, for work that only reads it and so must not
    /// create it.
    /// - Throws: ``LogError/Code/directoryMissing`` (message ``missingMessage``) when nothing is
    ///   at the path; ``LogError/Code/notADirectory`` when something other than a directory is;
    ///   ``LogError/Code/io`` when the path cannot be examined.
    package func requireExisting() throws(LogError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw LogError(.directoryMissing, Self.missingMessage, path: path) }
            throw LogError(.io, "cannot be examined", path: path, underlying: SystemError(call: "stat", errno: code, path: path))
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw LogError(.notADirectory, "is not a directory", path: path) }
    }

    /// Creates the data directory, owner-only (0700), unless it exists; its parent must exist.
    /// - Returns: whether it was created.
    /// - Throws: as ``createDirectory(_:syscalls:)``.
    @discardableResult
    package func create(syscalls: any Syscalls = SystemCalls()) throws(LogError) -> Bool {
        try Self.createDirectory(path, syscalls: syscalls)
    }

    /// Creates `directory` with mode 0700 unless a directory is already there, and fsyncs its
    /// parent when it created it, so that the new entry survives a power loss. The one place
    /// data directories, store directories and log directories are created.
    /// - Returns: whether it was created.
    /// - Throws: ``LogError/Code/directoryMissing`` when its parent does not exist (or passes
    ///   through a file); ``LogError/Code/notADirectory`` when a file is at `directory`;
    ///   ``LogError/Code/io`` when `mkdir` or the parent's `fsync` fails otherwise.
    package static func createDirectory(_ directory: String, syscalls: any Syscalls) throws(LogError) -> Bool {
        do {
            try syscalls.mkdir(directory, mode: 0o700)
        } catch {
            switch error.errno {
            case EEXIST:
                if isDirectory(directory) { return false }
                throw LogError(.notADirectory, "exists and is not a directory", path: directory)
            case ENOENT, ENOTDIR:
                throw LogError(.directoryMissing, "\(missingMessage): its parent directory does not exist", path: directory,
                               underlying: error)
            default:
                throw .io(error, "cannot create the directory", path: directory)
            }
        }
        let parent = parent(of: directory)
        do { try syscalls.fsyncDirectory(parent) } catch { throw .io(error, "cannot sync the parent directory", path: parent) }
        return true
    }
}
