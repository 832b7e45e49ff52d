#if canImport(Glibc)
import Glibc
#endif

/// A shared memory mapping of the first bytes of a file, unmapped when the last reference goes:
/// the one place Spool calls `mmap` on a file.
///
/// Sealed segments are read through read-only ones; readers keep a reference while they read, so
/// a segment deleted by retention or replaced by compaction stays readable until they let go (an
/// unlinked file's pages live as long as a mapping does). Offset indexes are read-write ones
/// (``Access/readWrite``) that their single writer stores entries into; the engine's closed-run
/// tables are read-only ones that are checked in full before use.
///
/// The mapping is of pages: what another process (or a truncation) does to the file shows through
/// it, and touching a page past the file's end raises `SIGBUS`. The owners keep their files at
/// least as long as what they read.
package final class MappedFile {
    /// Whether the bytes may be written through the mapping.
    package enum Access: Sendable {
        /// `PROT_READ`: ``bytes`` only.
        case readOnly
        /// `PROT_READ | PROT_WRITE`: ``mutableBytes`` too; stores reach the file through the page
        /// cache (``synchronize()`` writes them back).
        case readWrite
    }

    /// The mapped bytes (empty when the size was 0).
    package let bytes: UnsafeRawBufferPointer
    /// How the file was mapped.
    package let access: Access
    /// The file's path, for errors.
    package let path: String

    /// Maps the first `size` bytes of `fd` (which may be closed afterwards); `size` 0 maps nothing
    /// and gives an empty ``bytes``.
    /// - Throws: the `mmap` call's ``SystemError`` (with `path`); the caller's error says which file.
    package init(fd: Int32, size: Int, access: Access = .readOnly, path: String) throws(SystemError) {
        self.access = access
        self.path = path
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let protection = access == .readWrite ? PROT_READ | PROT_WRITE : PROT_READ
        guard let base = mmap(nil, size, protection, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            throw SystemError(call: "mmap", errno: errno, path: path)
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    /// The mapped bytes, writable. A precondition (a programmer error) that the file was mapped
    /// ``Access/readWrite``.
    package var mutableBytes: UnsafeMutableRawBufferPointer {
        precondition(access == .readWrite, "a read-only mapping is not writable")
        return UnsafeMutableRawBufferPointer(mutating: bytes)
    }

    /// Tells the kernel how the pages will be read (`madvise`, such as `MADV_SEQUENTIAL` before one
    /// pass over the whole file, `MADV_RANDOM` before lookups). Only a hint: failures are ignored.
    package func advise(_ advice: Int32) {
        if let base = bytes.baseAddress { _ = madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, advice) }
    }

    /// Drops this process's mappings of the file's pages (`madvise(MADV_DONTNEED)`): the
    /// resident size no longer counts them, the kernel's page cache keeps them, and the next
    /// read maps them again. The bytes read back are the same: the file is mapped shared.
    package func releasePages() {
        advise(MADV_DONTNEED)
    }

    /// Writes stores made through the mapping back to the file (`msync(MS_SYNC)`); an fsync of
    /// the file still makes them durable.
    /// - Throws: the `msync` call's ``SystemError``.
    package func synchronize() throws(SystemError) {
        guard let base = bytes.baseAddress else { return }
        if msync(UnsafeMutableRawPointer(mutating: base), bytes.count, MS_SYNC) != 0 {
            throw SystemError(call: "msync", errno: errno, path: path)
        }
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}

// The mapping itself never changes after init. Read-only mappings are immutable; the owner of a
// read-write one (an offset index) orders its single writer's stores before readers' loads.
extension MappedFile: @unchecked Sendable {}
