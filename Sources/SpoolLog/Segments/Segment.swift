#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// One segment: `<20-digit base offset>.log` and its `.index`.
///
/// The active (last) segment is written only under the log's `writeLock` and read with `pread`
/// up to ``readableSize``; sealed segments are read through a ``MappedFile``.
final class Segment {
    let baseOffset: UInt64
    let logPath: String
    let indexPath: String
    let fd: Int32
    /// Replaced only while the log is being opened, before any reader can see the segment.
    private(set) var index: OffsetIndex
    private let syscalls: any Syscalls

    /// Bytes readers may read: only whole, acknowledged batches lie below it.
    let readableSize = Atomic<Int>(0)

    /// Set once, under the log's segment lock, when the segment is sealed.
    var mapping: MappedFile?

    /// Set when a sync covering the segment's first batch was acknowledged: from then on the
    /// manifest records that batch's checksum for the segment while it is active, so that open
    /// can tell the segment emptied or replaced from a tail a crash tore (``Log/recordFirstBatchIfNeeded(of:)``).
    let firstBatchDurable = Atomic<Bool>(false)

    /// The durable extent `log-manifest` records for this segment while it is active (0: none): a
    /// file length a completed `fdatasync` covered. No record ending beyond it is acknowledged
    /// (``Log/recordExtent(of:covering:extent:)``). Written under the log's manifest lock, only
    /// upward while the segment takes appends; read on the acknowledgement path with one relaxed load.
    let recordedExtent = Atomic<Int>(0)
    /// Set under the log's manifest lock when the segment's file is about to be cut to its data (a
    /// roll seals it, a clean close trims it): the extent is no longer raised.
    var extentFrozen = false

    /// What the writes published to the syncers (under the log's pipeline lock) have reached: the
    /// end of their data, and the file's extent (data and zero fill). A sync claimed after them
    /// covers both; see `SyncClaim`.
    var publishedDataEnd = 0
    var publishedExtent = 0

    // Writer-thread state of the active segment.
    var writePosition: Int
    var zeroedUpTo: Int
    var nextIndexPosition: Int
    var firstTimestamp: Int64?

    static func fileName(_ baseOffset: UInt64, _ suffix: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// Parses `00000000000000001234.log` into 1234.
    static func baseOffset(ofLogFile name: String) -> UInt64? {
        guard name.utf8.count == 24, name.hasSuffix(".log") else { return nil }
        let digits = name.prefix(20)
        guard digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return UInt64(digits)
    }

    /// Opens (or with `create`, creates) the segment. With `readOnly` the `.log` is opened
    /// `O_RDONLY` and the index is read into memory (see ``OffsetIndex/init(inMemoryFrom:capacity:keepingEntries:syscalls:)``).
    init(directory: String, baseOffset: UInt64, size: Int, indexEntries: Int, indexCapacity: Int,
         syscalls: any Syscalls, create: Bool, readOnly: Bool = false) throws(LogError) {
        self.baseOffset = baseOffset
        self.syscalls = syscalls
        logPath = directory + "/" + Self.fileName(baseOffset, ".log")
        indexPath = directory + "/" + Self.fileName(baseOffset, ".index")
        do {
            fd = try syscalls.open(logPath, flags: readOnly ? O_RDONLY : O_RDWR | (create ? O_CREAT | O_EXCL : 0), mode: 0o600)
        } catch {
            throw .io(error, create ? "cannot create the segment" : "cannot open the segment", path: logPath)
        }
        do {
            index = readOnly
                ? OffsetIndex(inMemoryFrom: indexPath, capacity: indexCapacity, keepingEntries: indexEntries, syscalls: syscalls)
                : try OffsetIndex(path: indexPath, capacity: indexCapacity, keepingEntries: indexEntries, syscalls: syscalls)
        } catch {
            syscalls.close(fd)
            throw error
        }
        writePosition = size
        zeroedUpTo = size
        nextIndexPosition = size
        readableSize.store(size, ordering: .releasing)
    }

    /// Extra descriptors of the `.log`, one per syncer when several syncs may overlap; see
    /// ``openSyncDescriptors(_:)``. Set before the segment becomes active, then only read.
    private(set) var syncDescriptors: [Int32] = []

    deinit {
        syscalls.close(fd)
        for descriptor in syncDescriptors { syscalls.close(descriptor) }
    }

    /// Opens `count` more descriptors of this segment, one per syncer.
    ///
    /// Linux records a write-back error once per open file description and reports it to the
    /// first fsync through that description only. Syncers sharing one descriptor could see the
    /// error in one sync while an overlapping one returns success for the lost pages; with a
    /// description each, every sync that covers the failed pages reports the error. They are
    /// opened before the segment takes writes, so no earlier error can precede them unseen.
    func openSyncDescriptors(_ count: Int) throws(LogError) {
        guard count > 1, syncDescriptors.isEmpty else { return }
        for _ in 0..<count {
            do {
                syncDescriptors.append(try syscalls.open(logPath, flags: O_RDWR, mode: 0))
            } catch {
                throw .io(error, "cannot open the segment for syncing", path: logPath)
            }
        }
    }

    /// The descriptor syncer number `syncer` calls `fdatasync` on.
    func syncDescriptor(_ syncer: Int) -> Int32 {
        syncDescriptors.isEmpty ? fd : syncDescriptors[syncer % syncDescriptors.count]
    }

    func replaceIndex(_ index: OffsetIndex) { self.index = index }

    func fileSize() throws(LogError) -> Int {
        do { return Int(try syscalls.fileSize(fd)) } catch { throw .io(error, "cannot stat the segment", path: logPath) }
    }

    /// Maps the first `size` bytes for reading.
    /// - Throws: ``LogError/Code/io`` when `mmap` fails.
    func map(size: Int) throws(LogError) -> MappedFile {
        do { return try MappedFile(fd: fd, size: size, path: logPath) } catch {
            throw .io(error, "cannot map the file for reading", path: logPath)
        }
    }
}

// Writer-thread state is touched by that thread only; `mapping` is published under the
// log's segment lock; `readableSize` is atomic; the rest is immutable.
extension Segment: @unchecked Sendable {}

extension Segment {
    /// Whether the segment file at `path`, `size` bytes long, holds anything but zeros in the batch
    /// header's worth of bytes after `length` (or cannot be read there): data after the length a
    /// clean close recorded, which that close's marker does not know. Open and check both ask it.
    static func holdsBytes(_ path: String, after length: UInt64, size: Int, syscalls: any Syscalls) -> Bool {
        guard UInt64(size) > length else { return false }
        let count = min(size - Int(length), RecordBatchHeader.size)
        guard let fd = try? syscalls.open(path, flags: O_RDONLY, mode: 0) else { return true }
        defer { syscalls.close(fd) }
        var bytes: [UInt8] = []
        return (try? syscalls.preadFully(fd, into: &bytes, count: count, at: Int64(length))) != count || bytes.contains { $0 != 0 }
    }
}

/// The outcome of verifying a segment's batches.
struct SegmentScan {
    /// Position after the last valid batch.
    var endPosition: Int
    /// Offset after the last valid batch.
    var nextOffset: UInt64
    var indexEntries: [(relativeOffset: UInt32, position: UInt32)] = []
    var firstTimestamp: Int64?
    var batches = 0
    var records = 0
    /// Set when the scan stopped at bytes that are neither a valid batch nor the zero-filled tail.
    var damage: Damage?

    struct Damage {
        var position: Int
        var reason: String
        /// A valid batch found after the damage: then it is not a torn tail.
        var nextValidBatch: Int?
    }

    /// Verifies batches of `bytes` from `position` until the end, a zero-filled tail, or damage.
    static func run(_ bytes: UnsafeRawBufferPointer, baseOffset: UInt64, from start: Int, nextOffset: UInt64,
                    indexInterval: Int) -> SegmentScan {
        var scan = SegmentScan(endPosition: start, nextOffset: nextOffset)
        var position = start
        var nextIndexPosition = start
        func damaged(_ reason: String) -> SegmentScan {
            scan.damage = Damage(position: position, reason: reason,
                                 nextValidBatch: findValidBatch(bytes, after: position, minimumOffset: scan.nextOffset))
            return scan
        }
        while position < bytes.count {
            let remaining = bytes.count - position
            let view = UnsafeRawBufferPointer(rebasing: bytes[position...])
            guard let header = RecordBatchHeader(view) else {
                if isZero(view) { return scan }  // the preallocated tail: a clean end
                return damaged(remaining < RecordBatchHeader.size ? "partial batch header" : "invalid batch header")
            }
            guard header.totalLength <= remaining else { return damaged("batch of \(header.totalLength) bytes runs past the end of the file") }
            guard header.checksumMatches(view) else { return damaged("checksum mismatch") }
            guard header.baseOffset >= scan.nextOffset, header.baseOffset >= baseOffset,
                  header.baseOffset - baseOffset < UInt64(UInt32.max) else {
                return damaged("batch offset \(header.baseOffset) out of sequence (expected at least \(scan.nextOffset))")
            }
            if position >= nextIndexPosition {
                scan.indexEntries.append((UInt32(header.baseOffset - baseOffset), UInt32(position)))
                nextIndexPosition = position + indexInterval
            }
            if scan.firstTimestamp == nil { scan.firstTimestamp = header.timestampMilliseconds }
            scan.batches += 1
            scan.records += Int(header.recordCount)
            scan.nextOffset = header.nextOffset
            position += header.totalLength
            scan.endPosition = position
        }
        return scan
    }

    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            if bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
            i += 8
        }
        while i < n { if bytes[i] != 0 { return false }; i += 1 }
        return true
    }

    /// The position of the first batch after `position` whose header and checksum are valid and
    /// whose base offset is at least `minimumOffset` (a batch can only follow the ones before it).
    static func findValidBatch(_ bytes: UnsafeRawBufferPointer, after position: Int, minimumOffset: UInt64) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let first = Int32(RecordBatchHeader.magic & 0xff)
        var from = position + 1
        while from + RecordBatchHeader.size <= bytes.count {
            // memchr for the magic's first byte, then a full check.
            guard let hit = memchr(base + from, first, bytes.count - from - RecordBatchHeader.size + 1) else { return nil }
            let candidate = base.distance(to: UnsafeRawPointer(hit))
            let view = UnsafeRawBufferPointer(rebasing: bytes[candidate...])
            if let header = RecordBatchHeader(view), header.baseOffset >= minimumOffset, header.totalLength <= view.count,
               header.checksumMatches(view) {
                return candidate
            }
            from = candidate + 1
        }
        return nil
    }
}
