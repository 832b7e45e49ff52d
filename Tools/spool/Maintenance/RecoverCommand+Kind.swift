#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolLog
import SpoolToolSupport

/// `spool recover` and the stores' `kind` markers (`DataDirectory.Identity`).
///
/// A marker this build does not understand (damaged: flipped, cut, a directory, unreadable) makes
/// every open refuse the directory, as it must: it may be another program's, or a newer Spool's.
/// So `check` reports it (exit 1), naming the file and what the directory's layout says it is;
/// `truncate` and `salvage` rewrite it from the layout when the layout is a store's (the damaged
/// one is kept as `kind.damaged`), and otherwise say why they cannot.
extension RecoverCommand {
    /// A store directory whose marker an open would refuse.
    struct DamagedKindMarker {
        var directory: String
        /// What the marker says ('(unreadable)' when it cannot be read).
        var found: String
        /// What the layout says the directory is, when it is a store.
        var layout: DataDirectory.Kind?

        var path: String { directory + "/" + DataDirectory.kindFileName }

        var message: String {
            "\(path): the directory's kind marker reads '\(found)', which this build of Spool does not know; every open refuses "
                + "the directory. " + (layout.map { "Its layout is that of \($0.noun): if it is yours (not written by a newer Spool), "
                    + "run `spool recover --mode salvage` to rewrite the marker (the damaged one is kept as \(path).damaged)" }
                    ?? "Its layout is not a Spool store's either: restore the directory from a backup")
        }
    }

    /// The data directory and, inside it, the task store, when their markers are damaged.
    static func damagedKindMarkers(_ data: DataDirectory) -> [DamagedKindMarker] {
        var directories = [data.path]
        if DataDirectory.isDirectory(data.taskStore.path) { directories.append(data.taskStore.path) }
        return directories.compactMap { directory in
            guard case .unknownMarker(let text) = DataDirectory.identify(directory) else { return nil }
            var layout: DataDirectory.Kind?
            if case .store(let kind, _) = DataDirectory.identify(directory, ignoringMarker: true) { layout = kind }
            return DamagedKindMarker(directory: directory, found: text, layout: layout)
        }
    }

    /// Check: reports each damaged marker. Returns whether there was one.
    func reportKindMarkers(_ data: DataDirectory) -> Bool {
        let damaged = Self.damagedKindMarkers(data)
        for marker in damaged {
            if json {
                print(JSON.object([("mode", .string(mode.rawValue)), ("kindMarker", .object([
                    ("path", .string(marker.path)), ("found", .string(marker.found)),
                    ("layout", .string(marker.layout?.rawValue ?? "")), ("message", .string(marker.message))]))]).text)
            } else {
                print("spool recover: problem: kindMarkerDamaged (damage): \(marker.message)")
            }
        }
        return !damaged.isEmpty
    }

    /// Repair: rewrites each damaged marker whose directory's layout is a store's. Returns whether
    /// one could not be rewritten.
    func rewriteKindMarkers(_ data: DataDirectory) -> Bool {
        var failed = false
        for marker in Self.damagedKindMarkers(data) {
            guard let kind = marker.layout else {
                printError("spool recover: \(marker.message)")
                failed = true
                continue
            }
            // Kept for the operator (a directory or a link in its place is moved as it is).
            let kept = marker.path + ".damaged"
            removeIfEmptyOrFile(kept)
            let moved = rename(marker.path, kept) == 0
            do {
                try AtomicFile.replace(DataDirectory.kindFileName, in: marker.directory, with: DataDirectory.marker(kind), syscalls: SystemCalls())
            } catch {
                printError("spool recover: \(marker.path): cannot rewrite the kind marker: \(error)")
                failed = true
                continue
            }
            let text = "kind: \(marker.path) read '\(marker.found)'; rewritten as '\(kind.rawValue) \(DataDirectory.kindFormatVersion)' "
                + "from the directory's layout" + (moved ? " (the damaged one is kept as \(kept))" : "")
            if json {
                print(JSON.object([("mode", .string(mode.rawValue)), ("kindMarkerRewritten", .object([
                    ("path", .string(marker.path)), ("found", .string(marker.found)), ("kind", .string(kind.rawValue)),
                    ("keptAs", .string(moved ? kept : ""))]))]).text)
            } else {
                print(text)
            }
        }
        return failed
    }

    private func removeIfEmptyOrFile(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR { rmdir(path) } else { unlink(path) }
    }
}
