#if canImport(Glibc)
import Glibc
#endif
import SpoolLog

/// The closed runs of a checkpoint, in one immutable file that opening loads without decoding a
/// run (`DIR/closed-runs-<replay-from>-<crc>`): describe, history, list and the id-reuse
/// policies decode a run from it only when they ask for it.
///
/// Layout (the version is the ``ValueLayout`` of its runs, 4; older layouts are still read),
/// integers little endian:
/// ```
/// "SPCR" | version u8 = 4 | flags u8 | 2 zero bytes | count u64
/// index: count × (workflow hash u64, first record offset u64, close time i64 ns, data position u64),
///        sorted by (workflow hash, first record offset)
/// data:  per run: length u32 | the run as in a checkpoint (ExecutionState, record offsets)
/// [with flag 1: the visibility section (VisibilitySection) | its position u64]
/// CRC32C u32 of everything before it
/// ```
/// Flag 1 (bit 0) says the table carries its runs' visibility postings (``VisibilitySection``),
/// which an open loads instead of decoding every run; every merge writes them. A table without
/// the flag (written before the section existed; the byte was zero) is still read, and its runs
/// are indexed by decoding them at the first List or Count.
/// The workflow hash is FNV-1a (64 bits) of namespace, a 0xFF byte and workflow id, so every
/// run of a workflow id is in one stretch of the index, oldest first: the last one is its
/// current run. The first record offset names a run uniquely (a record starts at most one run).
/// The whole file is checked against its CRC when it is loaded, and against the size and CRC
/// the checkpoint that names it recorded: a run is never decoded from a file that failed them.
final class ClosedRunTable {
    static let magic: [UInt8] = Array("SPCR".utf8)
    /// The version written: the ``ValueLayout`` of its runs (`1`, flat, is still read).
    static let version: UInt8 = ValueLayout.current.rawValue
    static let headerSize = 16
    static let indexEntrySize = 32
    static let filePrefix = "closed-runs-"

    /// A run to add to a table: its index fields and its encoded bytes.
    struct Entry {
        var workflowHash: UInt64
        var firstRecordOffset: UInt64
        var closeTime: Int64
        var data: [UInt8]
        /// The run's namespace and visibility entries, when its state is at hand (else the merge
        /// decodes `data` for them).
        var visibility: (namespace: String, entries: VisibilityIndex.Entries)? = nil
    }

    /// The header flag of a table that has a visibility section.
    static let visibilityFlag: UInt8 = 1

    /// The file's bytes: `mapping`'s, or an allocation the table owns (freed with it).
    let storage: UnsafeRawBufferPointer
    /// The read-only mapping of the file `storage` is, when the table was mapped.
    private let mapping: MappedFile?
    let count: Int
    /// The layout its runs are encoded in (its version byte).
    let layout: ValueLayout
    /// Size and CRC32C of the file, as the checkpoint records them.
    let byteCount: Int
    let checksum: UInt32
    let name: String
    /// Where the visibility section is in ``storage``; nil when the table has none.
    let visibilityRange: Range<Int>?

    /// Takes ownership of `storage` (allocated with `UnsafeMutableRawBufferPointer.allocate`) and
    /// checks it: CRC, header, index order and bounds.
    /// - Throws: ``SpoolError/Code/corruptRecord`` (the storage is freed).
    convenience init(name: String, taking storage: UnsafeMutableRawBufferPointer) throws(SpoolError) {
        try self.init(name: name, storage: UnsafeRawBufferPointer(storage), mapping: nil)
    }

    /// Reads the table from `mapping` (a whole-file read-only mapping, kept as long as the table)
    /// and checks it: CRC, header, index order and bounds.
    /// - Throws: ``SpoolError/Code/corruptRecord``.
    convenience init(name: String, mapping: MappedFile) throws(SpoolError) {
        try self.init(name: name, storage: mapping.bytes, mapping: mapping)
    }

    private init(name: String, storage: UnsafeRawBufferPointer, mapping: MappedFile?) throws(SpoolError) {
        // Checked before any stored property is set, so a failure frees the storage here and
        // never runs deinit on a half-made table.
        let checked: (checksum: UInt32, count: Int, layout: ValueLayout, visibility: Range<Int>?)
        do { checked = try Self.check(storage, name: name) } catch {
            Self.release(storage, mapping: mapping)
            throw error
        }
        self.storage = storage
        self.mapping = mapping
        self.name = name
        byteCount = storage.count
        checksum = checked.checksum
        count = checked.count
        layout = checked.layout
        visibilityRange = checked.visibility
    }

    /// Checks a table's bytes: CRC, header, index order and bounds. Returns its CRC and run count.
    /// - Throws: ``SpoolError/Code/corruptRecord`` saying what is wrong.
    private static func check(_ storage: UnsafeRawBufferPointer, name: String) throws(SpoolError) -> (checksum: UInt32, count: Int, layout: ValueLayout, visibility: Range<Int>?) {
        func fail(_ what: String) -> SpoolError {
            SpoolError(.corruptRecord, "closed-run table \(name): \(what)")
        }
        guard storage.count >= Self.headerSize + 4 else { throw fail("\(storage.count) bytes is too short") }
        let body = UnsafeRawBufferPointer(rebasing: storage[..<(storage.count - 4)])
        let stored = storage.loadUnaligned(fromByteOffset: storage.count - 4, as: UInt32.self).littleEndian
        guard CRC32C.checksum(body) == stored else { throw fail("the checksum does not match") }
        guard Array(storage[0..<4]) == Self.magic else { throw fail("not a closed-run table") }
        guard let layout = ValueLayout(rawValue: storage[4]) else { throw fail("version \(storage[4]) is not one this build reads") }
        let flags = storage[5]
        guard flags & ~Self.visibilityFlag == 0 else { throw fail("unknown flags \(flags)") }
        let declared = storage.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
        let dataStart = UInt64(Self.headerSize) + declared &* UInt64(Self.indexEntrySize)
        // The end of the runs' data: the section follows it when there is one.
        var dataEnd = UInt64(body.count)
        var visibility: Range<Int>?
        if flags & Self.visibilityFlag != 0 {
            guard body.count >= 8 else { throw fail("no room for the visibility section's position") }
            let sectionStart = storage.loadUnaligned(fromByteOffset: body.count - 8, as: UInt64.self).littleEndian
            guard sectionStart >= dataStart, sectionStart <= UInt64(body.count - 8) else { throw fail("the visibility section's position \(sectionStart) is outside the file") }
            dataEnd = sectionStart
            visibility = Int(sectionStart)..<(body.count - 8)
        }
        guard declared <= UInt64(storage.count) / UInt64(Self.indexEntrySize), dataStart <= dataEnd else {
            throw fail("its count \(declared) does not fit its size")
        }
        let count = Int(declared)
        var previous: (UInt64, UInt64)? = nil
        for index in 0..<count {
            let base = Self.headerSize + index * Self.indexEntrySize
            let hash = storage.loadUnaligned(fromByteOffset: base, as: UInt64.self).littleEndian
            let first = storage.loadUnaligned(fromByteOffset: base + 8, as: UInt64.self).littleEndian
            let position = storage.loadUnaligned(fromByteOffset: base + 24, as: UInt64.self).littleEndian
            if let previous, !(previous < (hash, first)) { throw fail("index entry \(index) is out of order") }
            previous = (hash, first)
            guard position >= dataStart, position + 4 <= dataEnd else { throw fail("index entry \(index) points outside the data") }
            let length = UInt64(storage.loadUnaligned(fromByteOffset: Int(position), as: UInt32.self).littleEndian)
            guard position + 4 + length <= dataEnd else { throw fail("run \(index) runs past the end of the data") }
        }
        return (stored, count, layout, visibility)
    }

    deinit { Self.release(storage, mapping: mapping) }

    /// Frees an allocated `storage`; a mapped one is unmapped when its ``MappedFile`` goes.
    private static func release(_ storage: UnsafeRawBufferPointer, mapping: MappedFile?) {
        if mapping == nil { UnsafeMutableRawBufferPointer(mutating: storage).deallocate() }
    }

    static func workflowHash(_ key: WorkflowKey) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.namespace.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ 0xFF) &* 0x100_0000_01b3
        for byte in key.workflowID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    func field(_ index: Int, _ at: Int) -> UInt64 {
        storage.loadUnaligned(fromByteOffset: Self.headerSize + index * Self.indexEntrySize + at, as: UInt64.self).littleEndian
    }

    func workflowHash(at index: Int) -> UInt64 { field(index, 0) }
    func firstRecordOffset(at index: Int) -> UInt64 { field(index, 8) }
    func closeTime(at index: Int) -> Timestamp { Timestamp(nanosecondsSinceEpoch: Int64(bitPattern: field(index, 16))) }

    /// The encoded run at `index`.
    func data(at index: Int) -> [UInt8] {
        let position = Int(field(index, 24))
        let length = Int(storage.loadUnaligned(fromByteOffset: position, as: UInt32.self).littleEndian)
        return Array(storage[(position + 4)..<(position + 4 + length)])
    }

    /// The run at `index`, decoded.
    /// - Throws: ``SpoolError/Code/corruptRecord`` (a bug wrote it: the file passed its CRC).
    func run(at index: Int) throws(SpoolError) -> EngineCheckpoint.Run {
        var r = BinaryReader<SpoolError>(data(at: index), context: "closed-run table \(name), run \(index)")
        let run = try EngineCheckpoint.Run.decode(from: &r, layout: layout)
        guard r.isAtEnd else { throw r.corrupt("bytes left after the run") }
        return run
    }

    /// The indexes of the runs whose workflow id hashes to `hash` (oldest first).
    func indexes(ofWorkflowHash hash: UInt64) -> Range<Int> {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if workflowHash(at: middle) < hash { low = middle + 1 } else { high = middle }
        }
        var end = low
        while end < count && workflowHash(at: end) == hash { end += 1 }
        return low..<end
    }

    /// The runs of `workflowKey`, oldest first (those of other workflow ids with the same hash left out).
    func runs(of workflowKey: WorkflowKey) throws(SpoolError) -> [(index: Int, run: EngineCheckpoint.Run)] {
        var found: [(index: Int, run: EngineCheckpoint.Run)] = []
        for index in indexes(ofWorkflowHash: Self.workflowHash(workflowKey)) {
            let run = try run(at: index)
            if run.state.key.workflowKey == workflowKey { found.append((index, run)) }
        }
        return found
    }

    /// Where a run of the merged table comes from.
    enum Source {
        case kept(Int)      // an index in the old table
        case fresh(Int)     // an index in the new entries
    }

    /// The order of a merged table: the runs of `table` at `kept` (ascending indexes, so in key
    /// order) interleaved with `fresh` (sorted by workflow hash, first record offset).
    static func mergeOrder(kept: some Sequence<Int>, of table: ClosedRunTable?, fresh: [Entry]) -> [Source] {
        var order: [Source] = []
        order.reserveCapacity(fresh.count + (table?.count ?? 0))
        var next = 0
        if let table {
            for index in kept {
                let key = (table.workflowHash(at: index), table.firstRecordOffset(at: index))
                while next < fresh.count && (fresh[next].workflowHash, fresh[next].firstRecordOffset) < key {
                    order.append(.fresh(next))
                    next += 1
                }
                order.append(.kept(index))
            }
        }
        order.append(contentsOf: (next..<fresh.count).map { .fresh($0) })
        return order
    }

    /// A new table of the runs `order` names, in that order (sorted by workflow hash, first
    /// record offset): kept runs are copied from `old` byte for byte, without decoding, and so
    /// are their visibility postings (``VisibilitySection/merged(order:old:fresh:)``). Returns
    /// the file's bytes in a buffer the caller owns.
    /// - Parameter withVisibility: false writes a table without the visibility section, as
    ///   builds before it did (for tests of reading such tables).
    /// - Throws: ``SpoolError/Code/corruptRecord`` when a run whose postings must be derived does not decode.
    static func merge(_ order: [Source], old: ClosedRunTable?, fresh: [Entry], withVisibility: Bool = true) throws(SpoolError) -> UnsafeMutableRawBufferPointer {
        let section = withVisibility ? try VisibilitySection.merged(order: order, old: old, fresh: fresh).encoded() : nil
        let dataStart = headerSize + order.count * indexEntrySize
        var size = dataStart + 4 + (section.map { $0.count + 8 } ?? 0)
        for source in order {
            switch source {
            case .kept(let index): size += 4 + old!.dataLength(at: index)
            case .fresh(let index): size += 4 + fresh[index].data.count
            }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
        func store(_ value: UInt64, at offset: Int) { buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self) }
        for (index, byte) in magic.enumerated() { buffer[index] = byte }
        buffer[4] = version
        buffer[5] = section == nil ? 0 : visibilityFlag; buffer[6] = 0; buffer[7] = 0
        store(UInt64(order.count), at: 8)
        var position = dataStart
        for (slot, source) in order.enumerated() {
            let base = headerSize + slot * indexEntrySize
            let length: Int
            switch source {
            case .kept(let index):
                let table = old!
                store(table.workflowHash(at: index), at: base)
                store(table.firstRecordOffset(at: index), at: base + 8)
                store(UInt64(bitPattern: table.closeTime(at: index).nanosecondsSinceEpoch), at: base + 16)
                length = table.dataLength(at: index)
                let from = Int(table.field(index, 24)) + 4
                UnsafeMutableRawBufferPointer(rebasing: buffer[(position + 4)..<(position + 4 + length)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: table.storage[from..<(from + length)]))
            case .fresh(let index):
                let entry = fresh[index]
                store(entry.workflowHash, at: base)
                store(entry.firstRecordOffset, at: base + 8)
                store(UInt64(bitPattern: entry.closeTime), at: base + 16)
                length = entry.data.count
                entry.data.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[(position + 4)..<(position + 4 + length)]).copyMemory(from: $0) }
            }
            store(UInt64(position), at: base + 24)
            buffer.storeBytes(of: UInt32(length).littleEndian, toByteOffset: position, as: UInt32.self)
            position += 4 + length
        }
        if let section {
            let sectionStart = position
            section.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[position..<(position + section.count)]).copyMemory(from: $0) }
            position += section.count
            store(UInt64(sectionStart), at: position)
            position += 8
        }
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[..<position]))
        buffer.storeBytes(of: crc.littleEndian, toByteOffset: position, as: UInt32.self)
        return buffer
    }

    func dataLength(at index: Int) -> Int {
        Int(storage.loadUnaligned(fromByteOffset: Int(field(index, 24)), as: UInt32.self).littleEndian)
    }

    /// A closed run as a table entry.
    static func entry(_ run: EngineCheckpoint.Run) -> Entry {
        var w = BinaryWriter(capacity: 256)
        run.encode(into: &w)
        return Entry(workflowHash: workflowHash(run.state.key.workflowKey), firstRecordOffset: run.recordOffsets.first ?? 0,
                     closeTime: (run.state.closeTime ?? run.state.startTime).nanosecondsSinceEpoch, data: w.bytes,
                     visibility: (run.state.key.namespace, VisibilityIndex.entries(of: run.state)))
    }
}

// The storage is written once, in init, and only read afterwards.
extension ClosedRunTable: @unchecked Sendable {}
