#if canImport(Glibc)
import Glibc
#endif

/// Copies files into a backup directory before a repair changes them. The directory is created on
/// the first copy (mode 0700, never reused); each copy is written as `<name>.tmp`, fsynced and renamed,
/// then the directory and its parent are fsynced, all before the repair changes anything.
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
            let target = directory + "/" + name
            try copyFile(path, to: target + ".tmp") { bytes in
                done += bytes
                progress?(.backingUp, done, total)
            }
            do { try syscalls.rename(target + ".tmp", to: target) } catch { throw .io(error, "cannot install the backup copy", path: target) }
            copied.append(path)
        }
        do {
            try syscalls.fsyncDirectory(directory)
            try syscalls.fsyncDirectory(DataDirectory.parent(of: directory))
        } catch {
            throw .io(error, "cannot sync the backup directory", path: directory)
        }
    }

    private func copyFile(_ source: String, to destination: String, copied: (Int) -> Void) throws(LogError) {
        do {
            let input = try syscalls.open(source, flags: O_RDONLY, mode: 0)
            defer { syscalls.close(input) }
            let output = try syscalls.open(destination, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
            defer { syscalls.close(output) }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var position: Int64 = 0
            while true {
                let n = try syscalls.preadFully(input, into: &buffer, count: buffer.count, at: position)
                if n == 0 { break }
                try syscalls.pwriteAll(output, n == buffer.count ? buffer : Array(buffer[0..<n]), at: position)
                position += Int64(n)
                copied(n)
            }
            try syscalls.fsync(output)
        } catch {
            throw .io(error, "cannot back up \(source)", path: destination)
        }
    }
}
