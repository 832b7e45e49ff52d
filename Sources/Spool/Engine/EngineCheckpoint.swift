#if canImport(Glibc)
import Glibc
#endif
import SpoolLog

/// A snapshot of every run's state and of where its records are in the log, taken so that
/// opening replays only the log after it (`DIR/checkpoint`).
///
/// Layout (version 5): `"SPEC"`, version u8, replay-from offset varint, the closed-run table it
/// names (presence byte; file name, byte count varint, CRC32C varint), run count varint; per
/// run its ``ExecutionState`` (see ExecutionState+Codec) and its record offsets (count, then
/// deltas); then a CRC32C (little endian) of everything before it. The runs are the open runs
/// and the runs closed since the table was written; the table (``ClosedRunTable``) holds the
/// other closed runs, loaded without being decoded. Payloads, failures and events inside the runs
/// are in the related ``ValueLayout`` (layout 4: run options, priorities, transient workflow
/// tasks, and each run's related-runs record). Version 4 is the same in the extended layout,
/// version 3 is the same without those in the whole layout, version 2 the same in the flat layout, and
/// version 1 is version 2 without the table field (every run in this file); both are still read. The file is replaced through `AtomicFile`
/// (`checkpoint.tmp`, fsync, rename over `checkpoint`, directory fsync); a table it names is
/// written the same way before it.
///
/// Consistency without stopping the world: the replay-from offset is read *before* the runs
/// are visited, and each run is read under its gate (so no transition of it is half-published).
/// A record at or after replay-from is replayed only for runs whose last checkpointed record is
/// older than it, so a record reflected in the snapshot is never applied twice, and one that is
/// not is never skipped.
struct EngineCheckpoint: Equatable {
    static let fileName = DataDirectory.checkpointName
    static let magic: [UInt8] = Array("SPEC".utf8)
    static let version: UInt8 = 5

    struct Run: Equatable {
        var state: ExecutionState
        var recordOffsets: [UInt64]

        func encode(into w: inout BinaryWriter) {
            state.encode(into: &w)
            w.count(recordOffsets.count)
            var previous: UInt64 = 0
            for offset in recordOffsets {
                w.unsigned(offset &- previous)
                previous = offset
            }
        }

        static func decode(from r: inout BinaryReader<SpoolError>, layout: ValueLayout) throws(SpoolError) -> Run {
            let state = try ExecutionState.decode(from: &r, layout: layout)
            var offsets: [UInt64] = []
            var previous: UInt64 = 0
            for _ in 0..<(try r.count()) {
                let (offset, overflow) = previous.addingReportingOverflow(try r.unsigned())
                guard !overflow else { throw r.corrupt("a record offset overflows") }
                offsets.append(offset)
                previous = offset
            }
            guard !offsets.isEmpty else { throw r.corrupt("run \(state.key) has no records") }
            return Run(state: state, recordOffsets: offsets)
        }
    }

    /// The closed-run table a checkpoint names: its file (in the data directory), size and CRC32C.
    struct TableReference: Equatable {
        var name: String
        var byteCount: Int
        var checksum: UInt32
    }

    var replayFrom: UInt64
    /// Open runs and runs closed since `closedTable` was written (with no table: every run).
    var runs: [Run]
    var closedTable: TableReference? = nil

    func encoded() -> [UInt8] {
        Self.encoded(replayFrom: replayFrom, closedTable: closedTable, runCount: runs.count, capacity: 64 + runs.count * 128) { w in
            for run in runs { run.encode(into: &w) }
        }
    }

    /// A checkpoint whose `runCount` runs `writeRuns` appends (each as ``Run/encode(into:)``
    /// does): for writers that copy runs' bytes rather than encode their states.
    static func encoded<E: Error>(replayFrom: UInt64, closedTable: TableReference?, runCount: Int, capacity: Int,
                                  writeRuns: (inout BinaryWriter) throws(E) -> Void) throws(E) -> [UInt8] {
        var w = BinaryWriter(capacity: capacity)
        for byte in Self.magic { w.byte(byte) }
        w.byte(Self.version)
        w.unsigned(replayFrom)
        w.optional(closedTable) { w, table in
            w.string(table.name)
            w.count(table.byteCount)
            w.unsigned(UInt64(table.checksum))
        }
        w.count(runCount)
        try writeRuns(&w)
        var bytes = w.bytes
        let crc = CRC32C.checksum(bytes)
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// What comes before the runs.
    struct Header {
        var replayFrom: UInt64
        var closedTable: TableReference?
        var runCount: Int
        /// The layout of the values in its runs.
        var layout: ValueLayout
        /// Where the runs end: the CRC32C follows.
        var runsEnd: Int
    }

    /// Checks the CRC of `bytes` and reads the header (either layout), leaving the returned reader
    /// at the first run. Shared by ``decode(_:)`` and the compaction's skim.
    static func readHeader(_ bytes: [UInt8]) throws(SpoolError) -> (Header, BinaryReader<SpoolError>) {
        guard bytes.count >= Self.magic.count + 5 else { throw SpoolError(.corruptRecord, "the checkpoint is \(bytes.count) bytes long") }
        let runsEnd = bytes.count - 4
        let stored = bytes[runsEnd...].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<runsEnd])) }
        guard crc == stored else { throw SpoolError(.corruptRecord, "the checkpoint's checksum does not match") }
        var r = BinaryReader<SpoolError>(bytes, context: "checkpoint")
        for byte in Self.magic where try r.byte() != byte { throw r.corrupt("not a Spool engine checkpoint") }
        let version = try r.byte()
        guard (1...5).contains(version) else { throw r.corrupt("checkpoint version \(version) is not one this build reads") }
        let replayFrom = try r.unsigned()
        var table: TableReference?
        if version >= 2 {
            table = try r.optional { r throws(SpoolError) in
                let name = try r.string()
                guard name.hasPrefix(ClosedRunTable.filePrefix), !name.contains("/") else { throw r.corrupt("bad closed-run table name") }
                let byteCount = try r.unsigned()
                let checksum = try r.unsigned()
                guard byteCount <= UInt64(Int.max), let crc = UInt32(exactly: checksum) else { throw r.corrupt("bad closed-run table fields") }
                return TableReference(name: name, byteCount: Int(byteCount), checksum: crc)
            }
        }
        let runCount = try r.count()
        return (Header(replayFrom: replayFrom, closedTable: table, runCount: runCount, layout: version >= 5 ? .related : version == 4 ? .extended : version == 3 ? .whole : .flat,
                       runsEnd: runsEnd), r)
    }

    static func decode(_ bytes: [UInt8]) throws(SpoolError) -> EngineCheckpoint {
        var (header, r) = try readHeader(bytes)
        var runs: [Run] = []
        for _ in 0..<header.runCount { runs.append(try Run.decode(from: &r, layout: header.layout)) }
        guard r.position == header.runsEnd else { throw r.corrupt("the runs do not end where the checksum begins") }
        return EngineCheckpoint(replayFrom: header.replayFrom, runs: runs, closedTable: header.closedTable)
    }
}

/// Reads and writes the checkpoint file through the log's system-call layer (so fault-injection
/// tests cover it too).
struct CheckpointStore {
    let directory: String
    let syscalls: any Syscalls

    var path: String { directory + "/" + EngineCheckpoint.fileName }

    /// The file's bytes; nil when there is none.
    func read() throws(SpoolError) -> [UInt8]? { try read(EngineCheckpoint.fileName, what: "the checkpoint") }

    /// The bytes of the data directory's file `name` (`what` names it in errors); nil when there is none.
    func read(_ name: String, what: String) throws(SpoolError) -> [UInt8]? {
        let path = directory + "/" + name
        let fd: Int32
        do {
            fd = try syscalls.open(path, flags: O_RDONLY | O_CLOEXEC, mode: 0)
        } catch {
            if error.errno == ENOENT { return nil }
            throw SpoolError(.io, "cannot open \(what) \(path)", underlying: error)
        }
        defer { syscalls.close(fd) }
        do {
            let size = Int(try syscalls.fileSize(fd))
            var bytes = [UInt8](repeating: 0, count: size)
            var done = 0
            while done < size {
                let n = try bytes.withUnsafeMutableBytes { buffer throws(SystemError) -> Int in
                    try syscalls.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: Int64(done))
                }
                if n == 0 { break }
                done += n
            }
            return Array(bytes.prefix(done))
        } catch {
            throw SpoolError(.io, "cannot read \(what) \(path)", underlying: error)
        }
    }

    /// Replaces the file atomically (see ``writeFile(_:name:)``).
    /// - Throws: ``SpoolError/Code/io`` when a step of the replace failed.
    func write(_ bytes: [UInt8]) throws(SpoolError) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(SpoolError) in try writeFile(buffer, name: EngineCheckpoint.fileName) }
        }
        try result.get()
    }
}
