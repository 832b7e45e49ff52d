#if canImport(Glibc)
import Glibc
#endif

/// The small fixed-size files beside the segments: each is a magic, a version, fixed
/// 64-bit fields and a CRC32C of everything before it (layout in `Docs/file-format.md`).
/// They are replaced through ``AtomicFile`` (`<name>.tmp`, fsync, rename over `<name>`, directory
/// fsync), so a reader sees either the old or the new content, never a torn one.
struct CheckpointFile {
    static let recoveryPointName = "recovery-point"
    static let cleanShutdownName = "clean-shutdown"
    static let recoveryPointMagic: UInt32 = 0x5052_5053  // "SPRP"
    static let cleanShutdownMagic: UInt32 = 0x5343_5053  // "SPCS"
    static let version: UInt8 = 1

    let magic: UInt32
    var fields: [UInt64]

    var encoded: [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: magic.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [Self.version, 0, 0, 0])
        for field in fields { withUnsafeBytes(of: field.littleEndian) { bytes.append(contentsOf: $0) } }
        let crc = CRC32C.checksum(bytes)
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Parses the file's bytes; `nil` when they are not a valid checkpoint of `magic` with `fieldCount` fields.
    static func decode(_ bytes: [UInt8], magic: UInt32, fieldCount: Int) -> CheckpointFile? {
        guard bytes.count == 8 + 8 * fieldCount + 4 else { return nil }
        return bytes.withUnsafeBytes { raw -> CheckpointFile? in
            guard raw.loadUnaligned(as: UInt32.self).littleEndian == magic, raw[4] == version else { return nil }
            let stored = raw.loadUnaligned(fromByteOffset: raw.count - 4, as: UInt32.self).littleEndian
            guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<raw.count - 4])) == stored else { return nil }
            let fields = (0..<fieldCount).map { raw.loadUnaligned(fromByteOffset: 8 + 8 * $0, as: UInt64.self).littleEndian }
            return CheckpointFile(magic: magic, fields: fields)
        }
    }

    /// Reads a whole small file; `nil` when it does not exist.
    static func readFile(_ path: String, syscalls: any Syscalls) throws(LogError) -> [UInt8]? {
        let fd: Int32
        do {
            fd = try syscalls.open(path, flags: O_RDONLY, mode: 0)
        } catch {
            if error.errno == ENOENT { return nil }
            throw .io(error, "cannot open", path: path)
        }
        defer { syscalls.close(fd) }
        do {
            let size = Int(try syscalls.fileSize(fd))
            guard size <= 1 << 20 else { return Array(repeating: 0, count: 1) }  // not one of ours
            var bytes: [UInt8] = []
            let n = try syscalls.preadFully(fd, into: &bytes, count: size, at: 0)
            return Array(bytes.prefix(n))
        } catch {
            throw .io(error, "cannot read", path: path)
        }
    }

    /// Atomically replaces `directory/name` with `bytes` (see ``AtomicFile``).
    /// - Throws: ``LogError/Code/io``: "cannot write NAME" with the temporary file's path, or
    ///   "cannot install NAME" with the file's path when the rename or the directory fsync failed.
    static func writeAtomically(_ bytes: [UInt8], directory: String, name: String, syscalls: any Syscalls) throws(LogError) {
        do {
            try AtomicFile.replace(name, in: directory, with: bytes, syscalls: syscalls)
        } catch {
            throw .io(error.underlying, error.step == .writing ? "cannot write \(name)" : "cannot install \(name)", path: error.path)
        }
    }

    /// Removes `directory/name` if present and fsyncs the directory.
    static func remove(directory: String, name: String, syscalls: any Syscalls) throws(LogError) {
        let path = directory + "/" + name
        do {
            try syscalls.unlink(path)
        } catch {
            if error.errno == ENOENT { return }
            throw .io(error, "cannot remove \(name)", path: path)
        }
        do { try syscalls.fsyncDirectory(directory) } catch { throw .io(error, "cannot sync the directory", path: directory) }
    }
}
