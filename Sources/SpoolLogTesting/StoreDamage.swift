#if canImport(Glibc)
import Glibc
#endif
import SpoolLog

/// The damage catalogue: every file a stopped Spool data directory holds, and every way an
/// operator's disk, backup or fingers can damage one. The damage-matrix test
/// (`Tests/SpoolToolTests/DamageMatrixTests.swift`) applies each case to a copy of a store and
/// `spool torture --damage` applies one at random between kills; both then check the same
/// property (issue 25): if `spool recover --mode check` exits 0 the store opens with every
/// acknowledged task and run; if opening would lose or hide one, check exits non-zero and open
/// refuses; salvage restores an openable store naming what it removed, or says why it cannot.
///
/// One catalogue, used by both, so that the test and the lab never disagree on what "damage" is.
package struct StoreDamage: Hashable, Sendable, CustomStringConvertible {
    /// Which file of a data directory (`DIR`) is hit.
    package enum File: String, CaseIterable, Hashable, Sendable {
        // The task store's log, DIR/tasks/log.
        case tasksFirstSegment, tasksMiddleSegment, tasksLastSegment, tasksIndex, tasksRecoveryPoint, tasksCleanShutdown
        case tasksLogManifest, tasksLock
        // The engine's log, DIR/history.
        case historyFirstSegment, historyMiddleSegment, historyLastSegment, historyIndex, historyRecoveryPoint
        case historyCleanShutdown, historyLogManifest, historyLock
        // The stores' own files.
        case taskCheckpoint, engineCheckpoint, engineKind, taskStoreKind

        /// The log directory holding the file, relative to `DIR`; nil for a store's own file.
        package var log: String? {
            if rawValue.hasPrefix("tasks") { return DataDirectory.taskStoreName + "/" + DataDirectory.storeLogName }
            if rawValue.hasPrefix("history") { return DataDirectory.historyName }
            return nil
        }

        /// Whether the file holds records (a segment): its bytes are the acknowledged data itself.
        package var holdsRecords: Bool { rawValue.hasSuffix("Segment") }

        /// The file's path in the data directory `data`, as it is before any damage; nil when the
        /// store has no such file (a log of one segment has no middle one).
        package func path(in data: String) -> String? {
            switch self {
            case .taskCheckpoint: return data + "/" + DataDirectory.taskStoreName + "/" + DataDirectory.checkpointName
            case .engineCheckpoint: return data + "/" + DataDirectory.checkpointName
            case .engineKind: return data + "/" + DataDirectory.kindFileName
            case .taskStoreKind: return data + "/" + DataDirectory.taskStoreName + "/" + DataDirectory.kindFileName
            default: break
            }
            let directory = data + "/" + log!
            let segments = StoreDamage.segmentNames(in: directory)
            func segment(_ name: String?) -> String? { name.map { directory + "/" + $0 } }
            switch self {
            case .tasksFirstSegment, .historyFirstSegment: return segment(segments.first)
            case .tasksMiddleSegment, .historyMiddleSegment: return segments.count >= 3 ? segment(segments[segments.count / 2]) : nil
            case .tasksLastSegment, .historyLastSegment: return segments.count >= 2 ? segment(segments.last) : nil
            // The first segment's index: sealed, so its entries are final and a wrong one matters.
            case .tasksIndex, .historyIndex: return segments.first.map { directory + "/" + $0.dropLast(4) + ".index" }
            case .tasksRecoveryPoint, .historyRecoveryPoint: return directory + "/recovery-point"
            case .tasksCleanShutdown, .historyCleanShutdown: return directory + "/clean-shutdown"
            case .tasksLogManifest, .historyLogManifest: return directory + "/log-manifest"
            default: return directory + "/" + DataDirectory.lockFileName
            }
        }
    }

    /// What is done to the file.
    package enum Kind: String, CaseIterable, Hashable, Sendable {
        /// One byte inverted (at a position chosen by the case's seed; the middle by default).
        case flipByte
        /// Cut to half its length.
        case truncateHalf
        /// Cut to zero bytes.
        case truncateEmpty
        /// Removed.
        case delete
        /// Replaced by an empty directory of the same name.
        case directory
        /// Made unreadable. Not with `chmod 000`: the tests and the lab run as root, for whom
        /// permissions do not stop a read. A symbolic link to itself is unreadable for everyone
        /// (`open` fails with `ELOOP`, not `ENOENT`), and unlike a FIFO it cannot hang a reader.
        case unreadable
        /// Replaced by the file of the same role from another store (a backup mixed up).
        case swapWithOtherStore
    }

    package var file: File
    package var kind: Kind
    /// Chooses the byte a ``Kind/flipByte`` inverts; 0 means the middle of the file.
    package var seed: UInt64

    package init(_ file: File, _ kind: Kind, seed: UInt64 = 0) {
        self.file = file
        self.kind = kind
        self.seed = seed
    }

    /// Every file × every kind: 20 × 7 = 140 cases.
    package static var all: [StoreDamage] {
        File.allCases.flatMap { file in Kind.allCases.map { StoreDamage(file, $0) } }
    }

    package var description: String { "\(file.rawValue).\(kind.rawValue)" }

    /// What ``apply(to:other:)`` did.
    package enum Outcome: Equatable, Sendable {
        /// The file was damaged; its path (as it was before the damage).
        case damaged(path: String)
        /// The store has no such file (or the other store has none to swap in): nothing was done.
        case notApplicable(String)
    }

    /// Damages the data directory `data` (a stopped store's copy). `other` is another store's data
    /// directory, the source of ``Kind/swapWithOtherStore``.
    @discardableResult
    package func apply(to data: String, other: String? = nil) -> Outcome {
        guard let path = file.path(in: data) else { return .notApplicable("\(data) has no \(file.rawValue)") }
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return .notApplicable("\(path) is not a file") }
        let size = Int(info.st_size)
        switch kind {
        case .flipByte:
            guard size > 0 else { return .notApplicable("\(path) is empty") }
            let at = seed == 0 ? size / 2 : Int(seed % UInt64(size))
            var bytes = TestFiles.read(path)
            bytes[at] ^= 0xFF
            TestFiles.write(path, bytes)
        case .truncateHalf:
            guard size > 1 else { return .notApplicable("\(path) has fewer than 2 bytes") }
            truncate(path, off_t(size / 2))
        case .truncateEmpty:
            guard size > 0 else { return .notApplicable("\(path) is empty already") }
            truncate(path, 0)
        case .delete:
            unlink(path)
        case .directory:
            unlink(path)
            mkdir(path, 0o700)
        case .unreadable:
            unlink(path)
            let name = String(path[path.index(after: path.lastIndex(of: "/")!)...])
            symlink(name, path)
        case .swapWithOtherStore:
            guard let other, let source = file.path(in: other) else { return .notApplicable("the other store has no \(file.rawValue)") }
            let bytes = TestFiles.read(source)
            guard bytes != TestFiles.read(path) else { return .notApplicable("the other store's \(file.rawValue) has the same bytes") }
            TestFiles.write(path, bytes)
        }
        return .damaged(path: path)
    }

    // MARK: What a repair reports

    /// The offset ranges a `spool recover --mode truncate|salvage` text report lists under
    /// "removed:" for the log whose directory ends with `log` (`"tasks/log"`, `"history"`): lines
    /// naming "offsets A..<B", "offsets at most A..<B" or "offsets from A on" (to the end). A
    /// task's id is its log offset, so a task the repair removed is in one of these ranges.
    package static func offsetsRemoved(byRepairReport report: String, log: String) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        var inLog = false, inRemoved = false
        for line in report.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("spool recover --mode") {
                inLog = line.hasSuffix("/" + log)
                inRemoved = false
                continue
            }
            guard inLog else { continue }
            if line == "removed:" { inRemoved = true; continue }
            guard inRemoved else { continue }
            guard line.hasPrefix("  ") else { inRemoved = false; continue }
            guard let at = line.firstRange(of: "offsets ") else { continue }
            var rest = line[at.upperBound...]
            if rest.hasPrefix("at most ") { rest = rest.dropFirst(8) }
            if rest.hasPrefix("from ") {
                if let from = UInt64(rest.dropFirst(5).prefix { $0.isNumber }) { ranges.append(from..<UInt64.max) }
                continue
            }
            let lower = rest.prefix { $0.isNumber }
            let upper = rest.dropFirst(lower.count + 3).prefix { $0.isNumber }
            if let from = UInt64(lower), let to = UInt64(upper) { ranges.append(from..<to) }
        }
        return ranges
    }

    // MARK: Files

    /// Segment file names in a log directory, in offset order.
    package static func segmentNames(in directory: String) -> [String] {
        TestFiles.entries(of: directory).filter { $0.count == 24 && $0.hasSuffix(".log") && $0.prefix(20).allSatisfy(\.isNumber) }
    }

    /// Copies the stopped store `source` into `destination` (which must not exist): directories,
    /// regular files (lock files included, so that lock damage has a file to hit) and symbolic links.
    package static func copyStore(_ source: String, to destination: String) {
        mkdir(destination, 0o700)
        for name in TestFiles.entries(of: source) {
            let from = source + "/" + name, to = destination + "/" + name
            var info = stat()
            guard lstat(from, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR: copyStore(from, to: to)
            case S_IFREG: TestFiles.write(to, TestFiles.read(from))
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: 4096)
                let count = readlink(from, &buffer, buffer.count - 1)
                if count >= 0 { buffer[count] = 0; symlink(buffer, to) }
            default: break
            }
        }
    }
}
