#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory mapping of a whole file, unmapped when the last reference goes.
///
/// Sealed segments are read through one of these; readers keep a reference while they
/// read, so a segment deleted by retention or replaced by compaction stays readable
/// until they let go (an unlinked file's pages live as long as a mapping does).
final class MappedFile {
    let bytes: UnsafeRawBufferPointer

    /// Maps `size` bytes of `fd` (which may be closed afterwards).
    init(fd: Int32, size: Int, path: String) throws(LogError) {
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            throw .io(SystemError(call: "mmap", errno: errno, path: path), "cannot map the file for reading", path: path)
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Drops this process's mappings of the file's pages (`madvise(MADV_DONTNEED)`): the
    /// resident size no longer counts them, the kernel's page cache keeps them, and the next
    /// read maps them again. The bytes read back are the same: the file is mapped shared and
    /// read-only.
    func releasePages() {
        if let base = bytes.baseAddress { _ = madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, MADV_DONTNEED) }
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}

// The mapping is read-only and never changes after init.
extension MappedFile: @unchecked Sendable {}
