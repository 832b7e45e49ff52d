#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The sparse index of one segment: `(offset - segment base, byte position)` pairs, 8 bytes each,
/// in a memory-mapped `.index` file.
///
/// One entry is written for the first batch at or after every ``LogConfiguration/indexIntervalBytes``
/// of log, so a lookup is a binary search followed by a scan of at most about that many bytes.
/// The active segment's index is preallocated (a sparse file) and trimmed to its entries on roll
/// and on close. The index holds nothing that cannot be rebuilt from the `.log`.
final class OffsetIndex {
    static let entrySize = 8

    let path: String
    private let fd: Int32
    private let syscalls: any Syscalls
    /// The whole file, mapped read-write; `mapping` is its start. `nil` for an index kept in memory.
    private let file: MappedFile?
    private let mapping: UnsafeMutableRawPointer
    /// Whether `mapping` is memory this index allocated (a read-only log's index) rather than the file.
    private let ownsMemory: Bool
    private let capacity: Int
    /// Entries visible to readers; the writer stores an entry before publishing the new count.
    private let published = Atomic<Int>(0)

    /// Opens (creating if needed) the index at `path` with room for `capacity` entries.
    /// The first `count` entries of the file are taken as they are; callers validate them.
    init(path: String, capacity: Int, keepingEntries count: Int, syscalls: any Syscalls) throws(LogError) {
        self.path = path
        self.syscalls = syscalls
        self.capacity = max(capacity, count, 1)
        do {
            fd = try syscalls.open(path, flags: O_RDWR | O_CREAT, mode: 0o600)
        } catch {
            throw .io(error, "cannot open the index", path: path)
        }
        do {
            // Sealed indexes (capacity == their entries) are left as they are; the active one is grown.
            if try syscalls.fileSize(fd) < Int64(self.capacity * Self.entrySize) {
                try syscalls.ftruncate(fd, to: Int64(self.capacity * Self.entrySize))
            }
        } catch {
            syscalls.close(fd)
            throw .io(error, "cannot size the index", path: path)
        }
        do {
            file = try MappedFile(fd: fd, size: self.capacity * Self.entrySize, access: .readWrite, path: path)
        } catch {
            syscalls.close(fd)
            throw .io(error, "cannot map the index", path: path)
        }
        mapping = file!.mutableBytes.baseAddress!  // capacity is at least 1: never an empty mapping
        ownsMemory = false
        published.store(count, ordering: .releasing)
    }

    /// An index held in memory only, for a log opened ``LogAccess/readOnly``: the first `count`
    /// entries are read from `path` (fewer when the file is shorter or unreadable; callers validate
    /// them), nothing is created or written. ``persist(trim:)`` must not be called on it.
    init(inMemoryFrom path: String, capacity: Int, keepingEntries count: Int, syscalls: any Syscalls) {
        self.path = path
        self.syscalls = syscalls
        self.capacity = max(capacity, count, 1)
        fd = -1
        file = nil
        ownsMemory = true
        mapping = UnsafeMutableRawPointer.allocate(byteCount: self.capacity * Self.entrySize, alignment: 8)
        mapping.initializeMemory(as: UInt8.self, repeating: 0, count: self.capacity * Self.entrySize)
        var read = 0
        if count > 0, let descriptor = try? syscalls.open(path, flags: O_RDONLY, mode: 0) {
            let buffer = UnsafeMutableRawBufferPointer(start: mapping, count: count * Self.entrySize)
            read = ((try? syscalls.preadFully(descriptor, into: buffer, at: 0)) ?? 0) / Self.entrySize
            syscalls.close(descriptor)
        }
        published.store(min(read, count), ordering: .releasing)
    }

    deinit {
        // `file` unmaps itself after this (a mapping outlives its descriptor).
        if fd >= 0 { syscalls.close(fd) }
        if ownsMemory { mapping.deallocate() }
    }

    /// Number of entries a reader may use.
    var count: Int { published.load(ordering: .acquiring) }

    /// Entries already in the file: its size divided by the entry size (a trimmed index).
    static func entriesInFile(_ path: String, syscalls: any Syscalls) -> Int? {
        guard let fd = try? syscalls.open(path, flags: O_RDONLY, mode: 0) else { return nil }
        defer { syscalls.close(fd) }
        guard let size = try? syscalls.fileSize(fd), size % Int64(entrySize) == 0 else { return nil }
        return Int(size) / entrySize
    }

    func entry(_ i: Int) -> (relativeOffset: UInt32, position: UInt32) {
        Self.decodeEntry(UnsafeRawPointer(mapping) + i * Self.entrySize)
    }

    /// An entry's two little-endian fields at `raw`.
    static func decodeEntry(_ raw: UnsafeRawPointer) -> (relativeOffset: UInt32, position: UInt32) {
        (raw.loadUnaligned(as: UInt32.self).littleEndian, raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian)
    }

    /// The last entry of the index file at `path`, read without mapping it; nil without one.
    static func lastEntryInFile(_ path: String, syscalls: any Syscalls) -> (relativeOffset: UInt32, position: UInt32)? {
        guard let count = entriesInFile(path, syscalls: syscalls), count > 0,
              let fd = try? syscalls.open(path, flags: O_RDONLY, mode: 0) else { return nil }
        defer { syscalls.close(fd) }
        var bytes: [UInt8] = []
        guard (try? syscalls.preadFully(fd, into: &bytes, count: entrySize, at: Int64((count - 1) * entrySize))) == entrySize else { return nil }
        return bytes.withUnsafeBytes { decodeEntry($0.baseAddress!) }
    }

    /// Appends an entry; only the segment's single writer calls this. Returns false when full.
    @discardableResult
    func append(relativeOffset: UInt32, position: UInt32) -> Bool {
        let n = published.load(ordering: .relaxed)
        guard n < capacity else { return false }
        let raw = mapping + n * Self.entrySize
        raw.storeBytes(of: relativeOffset.littleEndian, as: UInt32.self)
        raw.storeBytes(of: position.littleEndian, toByteOffset: 4, as: UInt32.self)
        published.store(n + 1, ordering: .releasing)
        return true
    }

    /// Replaces every entry (after a rebuild from the log).
    func reset(to entries: [(relativeOffset: UInt32, position: UInt32)]) {
        published.store(0, ordering: .releasing)
        for entry in entries.prefix(capacity) { append(relativeOffset: entry.relativeOffset, position: entry.position) }
    }

    /// The position of the last indexed batch at or before `relativeOffset` (0 when none).
    func lookup(_ relativeOffset: UInt32) -> (relativeOffset: UInt32, position: UInt32) {
        var low = 0, high = count - 1, best: (UInt32, UInt32) = (0, 0)
        while low <= high {
            let mid = (low + high) / 2
            let e = entry(mid)
            if e.relativeOffset <= relativeOffset { best = e; low = mid + 1 } else { high = mid - 1 }
        }
        return best
    }

    /// Whether the entries are strictly increasing and point inside a log of `logSize` bytes.
    func isPlausible(logSize: Int) -> Bool {
        var previous: (UInt32, UInt32)? = nil
        for i in 0..<count {
            let e = entry(i)
            if Int(e.position) >= logSize { return false }
            if let (offset, position) = previous, e.relativeOffset <= offset || e.position <= position { return false }
            previous = e
        }
        return true
    }

    /// Writes the mapping back and fsyncs; with `trim`, cuts the preallocated tail first.
    func persist(trim: Bool) throws(LogError) {
        let n = count
        guard let file else { preconditionFailure("persist(trim:) on an in-memory index") }
        do { try file.synchronize() } catch {
            throw .io(error, "cannot write the index back", path: path)
        }
        do {
            // The mapping keeps its size; readers only touch the first `count` entries, which stay inside the file.
            if trim { try syscalls.ftruncate(fd, to: Int64(n * Self.entrySize)) }
            try syscalls.fsync(fd)
        } catch {
            throw .io(error, "cannot persist the index", path: path)
        }
    }
}

// Entries are written by one writer and published through `published` (release/acquire);
// the mapping itself never moves.
extension OffsetIndex: @unchecked Sendable {}
