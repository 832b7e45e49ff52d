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

// MARK: Identity

extension LogError.Code {
    /// The directory is a Spool directory of another kind than the one asked for (a task store
    /// where a data directory was expected, a log directory, …). The message says what it is.
    public static let wrongDirectoryKind = LogError.Code("wrongDirectoryKind")
    /// The directory is not empty and holds nothing Spool made: it is not a Spool directory.
    public static let foreignDirectory = LogError.Code("foreignDirectory")
}

extension DataDirectory {
    /// The two kinds of store directory, as their `kind` marker names them.
    package enum Kind: String, Sendable, CaseIterable {
        /// A data directory: the engine's history (`history/`, `checkpoint`, closed-run tables)
        /// and the task store of the `spool` commands (`tasks/`).
        case engine = "spool-engine"
        /// A task store's directory: `log/` and `checkpoint`.
        case taskStore = "spool-task-store"

        /// What an operator calls it, for messages.
        package var noun: String {
            switch self {
            case .engine: "a Spool data directory (engine history in history/, task store in tasks/)"
            case .taskStore: "a Spool task store (log/ and checkpoint)"
            }
        }
    }

    /// The name of the marker file that says what a directory is (``Kind``).
    package static let kindFileName = "kind"
    /// The version of the marker's format (and of the layout it names) this build writes and reads.
    package static let kindFormatVersion = 1

    /// What a directory is, judged by its `kind` marker or, for directories made before markers
    /// existed, by its layout.
    package enum Identity: Equatable, Sendable {
        /// Nothing is at the path.
        case missing
        /// Something other than a directory is at the path.
        case notADirectory
        /// An empty directory (`lost+found` aside): any store may be created in it.
        case empty
        /// A store of `kind`; `marked` when its `kind` file says so (else recognised by layout).
        case store(Kind, marked: Bool)
        /// A log directory (segments, `recovery-point`): a store's log, not a store.
        case log
        /// A directory holding files Spool did not make (up to four of their names, sorted).
        case foreign([String])
        /// A `kind` file this build does not understand (another program's, or a newer Spool's).
        case unknownMarker(String)
        /// The directory cannot be listed (the reason).
        case unreadable(String)
    }

    /// The marker's bytes: `"<kind> <version>\n"`.
    package static func marker(_ kind: Kind) -> [UInt8] { Array("\(kind.rawValue) \(kindFormatVersion)\n".utf8) }

    /// Judges what the directory at `path` is, reading only its entries, its `kind` file and the
    /// first bytes of a `checkpoint` file. Creates and changes nothing.
    ///
    /// With `ignoringMarker`, the `kind` file is not read and the layout alone decides (what a
    /// repair rewrites a damaged marker from).
    package static func identify(_ path: String, ignoringMarker: Bool = false) -> Identity {
        var info = stat()
        guard stat(path, &info) == 0 else { return errno == ENOENT ? .missing : .unreadable(String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFDIR else { return .notADirectory }
        guard let dir = opendir(path) else { return .unreadable(String(cString: strerror(errno))) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            // A marker whose first write a crash interrupted does not make a directory foreign.
            if name != "." && name != ".." && name != "lost+found" && name != kindFileName + AtomicFile.temporarySuffix { names.append(name) }
        }
        closedir(dir)
        if names.isEmpty { return .empty }
        if ignoringMarker { names.removeAll { $0 == kindFileName || $0.hasPrefix(kindFileName + ".damaged") } }
        let entries = Set(names)
        if entries.contains(kindFileName) {
            let text = readSmallFile(path + "/" + kindFileName, limit: 256)
            let fields = text.map { String(decoding: $0, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }) } ?? []
            if fields.count == 2, let kind = Kind(rawValue: String(fields[0])), Int(fields[1]) == kindFormatVersion {
                return .store(kind, marked: true)
            }
            let shown = text.map { String(decoding: $0.prefix(60), as: UTF8.self) } ?? "(unreadable)"
            return .unknownMarker(shown.split(separator: "\n").first.map(String.init) ?? shown)
        }
        // Before markers: the layout says what it is.
        let checkpointMagic = entries.contains(checkpointName) ? readSmallFile(path + "/" + checkpointName, limit: 4) : nil
        if entries.contains(historyName) || entries.contains(taskStoreName) || checkpointMagic == Array("SPEC".utf8)
            || names.contains(where: { $0.hasPrefix("closed-runs-") }) {
            return .store(.engine, marked: false)
        }
        if entries.contains(storeLogName) || checkpointMagic == Array("SQCP".utf8) { return .store(.taskStore, marked: false) }
        if entries.contains("recovery-point") || entries.contains("clean-shutdown")
            || names.contains(where: { ($0.hasSuffix(".log") || $0.hasSuffix(".index")) && $0.utf8.prefix(20).allSatisfy { $0 >= 48 && $0 <= 57 } }) {
            return .log
        }
        // Three names to show, and a fourth to say there are more.
        return .foreign(Array(names.sorted().prefix(4)))
    }

    /// Up to `limit` first bytes of a file; nil when it cannot be opened or read.
    private static func readSmallFile(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: limit)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, limit) }
        return n >= 0 ? Array(bytes.prefix(n)) : nil
    }

    /// Why a directory of identity `found` cannot be used as a `wanted` one, or nil when it can.
    /// The one wording of every refusal (after the path): what the directory is, then what to do.
    package static func refusal(of found: Identity, as wanted: Kind, path: String) -> LogError? {
        let parent = parent(of: path)
        switch found {
        case .missing, .empty, .notADirectory, .unreadable:
            return nil
        case .store(let kind, _) where kind == wanted:
            return nil
        case .store(.taskStore, _):
            return LogError(.wrongDirectoryKind, "is \(Kind.taskStore.noun), not an engine data directory; use the data directory that "
                            + "holds it (the spool task/queue commands take --data \(parent)), or open it with TaskStore", path: path)
        case .store:
            return LogError(.wrongDirectoryKind, "is \(Kind.engine.noun), not a task store; its task store is \(path)/\(taskStoreName) "
                            + "(the spool task/queue commands take --data \(path))", path: path)
        case .log:
            return LogError(.wrongDirectoryKind, "is a Spool log directory (segments), not \(wanted == .engine ? "a data directory" : "a task store"); "
                            + "give the directory that holds it (\(parent))", path: path)
        case .foreign(let names):
            return LogError(.foreignDirectory, "is not a Spool data directory: it holds other files (\(names.prefix(3).joined(separator: ", "))\(names.count > 3 ? ", …" : "")); "
                            + "give a new or empty directory, or an existing Spool data directory", path: path)
        case .unknownMarker(let text):
            return LogError(.wrongDirectoryKind, "is marked '\(text)' in its \(kindFileName) file, which this build of Spool does not know "
                            + "(another program's directory, or one written by a newer Spool); give another directory", path: path)
        }
    }

    /// The read-only counterpart of ``claim(_:as:allowingForeign:syscalls:)``: checks that `path`
    /// is an existing directory that may be read as a store of `kind`, writing nothing (no
    /// directory, no marker), so that a store on a read-only file system or another user's store
    /// can be inspected.
    /// - Throws: ``LogError/Code/directoryMissing`` when nothing is at `path`;
    ///   ``LogError/Code/notADirectory``; ``LogError/Code/io`` when it cannot be examined;
    ///   ``LogError/Code/wrongDirectoryKind`` or ``LogError/Code/foreignDirectory`` as
    ///   ``refusal(of:as:path:)`` says.
    package static func examine(_ path: String, as kind: Kind) throws(LogError) {
        let found = identify(path)
        switch found {
        case .missing: throw LogError(.directoryMissing, missingMessage, path: path)
        case .notADirectory: throw LogError(.notADirectory, "exists and is not a directory", path: path)
        case .unreadable(let reason): throw LogError(.io, "cannot be examined (\(reason))", path: path)
        default: if let refusal = refusal(of: found, as: kind, path: path) { throw refusal }
        }
    }

    /// Opens `path` as a store of `kind` for writing: refuses a directory of another kind (and,
    /// unless `allowingForeign`, one holding other files), creates a missing one (mode 0700; its
    /// parent must exist), and writes the `kind` marker when it has none — at creation, or the
    /// first writable open of a store made before markers. The marker is replaced through
    /// ``AtomicFile``, so a crash leaves it whole or absent.
    /// - Returns: whether the directory was created.
    /// - Throws: ``LogError/Code/wrongDirectoryKind``, ``LogError/Code/foreignDirectory`` (see
    ///   ``refusal(of:as:path:)``), before anything is written; as ``createDirectory(_:syscalls:)``;
    ///   ``LogError/Code/io`` when the directory cannot be examined or the marker cannot be written.
    @discardableResult
    package static func claim(_ path: String, as kind: Kind, allowingForeign: Bool, syscalls: any Syscalls) throws(LogError) -> Bool {
        let found = identify(path)
        if case .unreadable(let reason) = found { throw LogError(.io, "cannot be examined (\(reason))", path: path) }
        if case .foreign = found, allowingForeign {
        } else if let refusal = refusal(of: found, as: kind, path: path) {
            throw refusal
        }
        let created = try createDirectory(path, syscalls: syscalls)
        if case .store(_, marked: true) = found { return created }
        do {
            try AtomicFile.replace(kindFileName, in: path, with: marker(kind), syscalls: syscalls)
        } catch {
            throw LogError(.io, "cannot write the directory's \(kindFileName) marker", path: path + "/" + kindFileName, underlying: error.underlying)
        }
        return created
    }
}
