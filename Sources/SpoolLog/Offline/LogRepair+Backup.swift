#if canImport(Glibc)
import Glibc
#endif

/// Copies files into a backup directory before a repair changes them. The directory is created on
/// the first copy (mode 0700, never reused); each copy is written through ``AtomicFile`` (`<name>.tmp`,
/// fsynced and renamed), then the directory and its parent are fsynced once, all before the repair
/// changes anything.
struct FileBackup {
    let directory: String?
    let syscalls: any Syscalls
    private(set) var created = false
    private(set) var copied: [String] = []

    init(directory: String?, syscalls: any Syscalls) {
        self.directory = directory
        self.syscalls = syscalls
    }

    mutating func copy(_ paths: [String], progress: MaintenanceProgress?) throws(LogError) {
        guard let directory else { return }
        var pending: [String] = []
        for path in paths where !copied.contains(path) && !pending.contains(path) { pending.append(path) }
        guard !pending.isEmpty else { return }
        if !created {
            do { try syscalls.mkdir(directory, mode: 0o700) } catch {
                throw .io(error, error.errno == EEXIST ? "the backup directory already exists; name another one" : "cannot create the backup directory",
                          path: directory)
            }
            created = true
        }
        let total = pending.reduce(0) { $0 + (OfflineLog.size(of: $1) ?? 0) }
        var done = 0
        for path in pending {
            let name = String(path.split(separator: "/").last ?? Substring(path))
            // Under a temporary name until complete, so that an interrupted copy never passes for a backup.
            try copyFile(path, to: name, in: directory) { bytes in
                done += bytes
                progress?(.backingUp, done, total)
            }
            copied.append(path)
        }
        do {
            try syscalls.fsyncDirectory(directory)
            try syscalls.fsyncDirectory(DataDirectory.parent(of: directory))
        } catch {
            throw .io(error, "cannot sync the backup directory", path: directory)
        }
    }

    /// Copies `source` to `directory/name` through ``AtomicFile``, leaving the directory fsync to
    /// ``copy(_:progress:)`` (once, after the last copy).
    /// - Throws: ``LogError/Code/io``: "cannot back up SOURCE" with the temporary copy's path, or
    ///   "cannot install the backup copy" with the copy's path.
    private func copyFile(_ source: String, to name: String, in directory: String, copied: (Int) -> Void) throws(LogError) {
        let input: Int32
        do { input = try syscalls.open(source, flags: O_RDONLY, mode: 0) } catch {
            throw .io(error, "cannot back up \(source)", path: directory + "/" + name + AtomicFile.temporarySuffix)
        }
        defer { syscalls.close(input) }
        do {
            try AtomicFile.replace(name, in: directory, syscalls: syscalls, syncingDirectory: false) { output throws(SystemError) in
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                var position: Int64 = 0
                while true {
                    let n = try syscalls.preadFully(input, into: &buffer, count: buffer.count, at: position)
                    if n == 0 { break }
                    try syscalls.pwriteAll(output, n == buffer.count ? buffer : Array(buffer[0..<n]), at: position)
                    position += Int64(n)
                    copied(n)
                }
            }
        } catch {
            throw .io(error.underlying, error.step == .writing ? "cannot back up \(source)" : "cannot install the backup copy", path: error.path)
        }
    }
}
