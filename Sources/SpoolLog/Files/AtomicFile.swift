#if canImport(Glibc)
import Glibc
#endif

/// The one way Spool replaces a file so that a crash leaves either the old content or the new,
/// complete: write `<name>.tmp`, fsync it, rename it over `<name>`, fsync the directory.
///
/// Every step goes through the caller's ``Syscalls``, so fault-injection and power-loss tests see
/// (and can stop at) each one. The order is the crash-safety argument:
/// 1. `open("<name>.tmp", O_CREAT | O_TRUNC)`, mode 0600; write everything; `fsync`. A crash
///    here leaves at most a partial `.tmp` file, which opening a log (or the next replace)
///    discards; `<name>` is untouched.
/// 2. `rename` over `<name>`: atomic in the directory, so a reader sees the old file or the new
///    one, whole (the new one's bytes are already durable).
/// 3. `fsync` of the directory: the rename itself survives a power loss. Until then a power
///    loss may bring the old file back, never a torn one.
///
/// The log's checkpoint files, repaired segments and backups, the task store's checkpoint and the
/// engine's checkpoint and closed-run tables are all written through it.
package enum AtomicFile {
    /// The suffix of the temporary file a replace writes before renaming it.
    package static let temporarySuffix = ".tmp"

    /// Replaces `directory/name` with `bytes`; see ``AtomicFile`` for the steps.
    /// - Throws: ``AtomicFileError`` naming the step that failed and the file it was applied to.
    package static func replace(_ name: String, in directory: String, with bytes: UnsafeRawBufferPointer,
                                syscalls: any Syscalls) throws(AtomicFileError) {
        try replace(name, in: directory, syscalls: syscalls) { fd throws(SystemError) in
            try syscalls.pwriteAll(fd, bytes, at: 0)
        }
    }

    /// Replaces `directory/name` with `bytes`; see ``AtomicFile`` for the steps.
    /// - Throws: ``AtomicFileError`` naming the step that failed and the file it was applied to.
    package static func replace(_ name: String, in directory: String, with bytes: [UInt8],
                                syscalls: any Syscalls) throws(AtomicFileError) {
        let result: Result<Void, AtomicFileError> = bytes.withUnsafeBytes { buffer in
            do throws(AtomicFileError) {
                try replace(name, in: directory, with: buffer, syscalls: syscalls)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Replaces `directory/name` with what `write` writes to the temporary file's descriptor
    /// (from position 0; for content streamed from elsewhere, such as a copy of another file).
    ///
    /// - Parameter syncingDirectory: `false` leaves step 3 to the caller, for one that installs
    ///   several files and fsyncs their directory once after the last (the rename is then not
    ///   durable until it does).
    /// - Throws: ``AtomicFileError``: with step ``AtomicFileError/Step/writing`` (and the
    ///   temporary file's path) when creating, writing or fsyncing the temporary file failed,
    ///   including an error `write` threw; with ``AtomicFileError/Step/installing`` (and the
    ///   target's path) when the rename or the directory fsync failed.
    package static func replace(_ name: String, in directory: String, syscalls: any Syscalls, syncingDirectory: Bool = true,
                                write: (_ fd: Int32) throws(SystemError) -> Void) throws(AtomicFileError) {
        let path = directory + "/" + name
        let temporary = path + temporarySuffix
        do {
            let fd = try syscalls.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o600)
            defer { syscalls.close(fd) }
            try write(fd)
            try syscalls.fsync(fd)
        } catch {
            throw AtomicFileError(step: .writing, path: temporary, underlying: error)
        }
        do {
            try syscalls.rename(temporary, to: path)
            if syncingDirectory { try syscalls.fsyncDirectory(directory) }
        } catch {
            throw AtomicFileError(step: .installing, path: path, underlying: error)
        }
    }

    /// Moves a damaged file or directory aside to `path.damaged` (or `.damaged-2` … `-9`, the
    /// first that does not exist), keeping what it holds, so that a new file can be written in
    /// its place (a file cannot be renamed over a directory); syncs `directory`.
    /// - Returns: the new path; nil when it could not be moved (the next write there then
    ///   fails, naming the path).
    package static func moveAside(_ path: String, in directory: String, syscalls: any Syscalls) -> String? {
        for attempt in 1...9 {
            let target = path + ".damaged" + (attempt == 1 ? "" : "-\(attempt)")
            if access(target, F_OK) == 0 { continue }
            do {
                try syscalls.rename(path, to: target)
                try? syscalls.fsyncDirectory(directory)
                return target
            } catch {
                return nil
            }
        }
        return nil
    }
}

/// A failed ``AtomicFile`` replace: which step failed, on which file, and the system call's error.
/// Callers wrap it in their own error type with a sentence that names the file they were writing.
package struct AtomicFileError: Error, Sendable, CustomStringConvertible {
    /// The step of a replace.
    package enum Step: Sendable {
        /// Creating, writing or fsyncing the temporary file; the target is untouched.
        case writing
        /// Renaming the temporary file over the target, or fsyncing the directory.
        case installing
    }

    /// The step that failed.
    package var step: Step
    /// The temporary file's path for ``Step/writing``, the target's for ``Step/installing``.
    package var path: String
    /// The failed system call.
    package var underlying: SystemError

    package var description: String {
        "\(step == .writing ? "cannot write" : "cannot install") \(path): \(underlying)"
    }
}
