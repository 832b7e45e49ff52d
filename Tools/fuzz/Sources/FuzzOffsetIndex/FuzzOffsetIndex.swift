#if canImport(Glibc)
import Glibc
#endif
@testable import SpoolLog

/// The offset index loader on its own: a cleanly closed log of two small segments (80 records
/// of known payloads, an index entry every 64 bytes) whose `.index` file of one segment is
/// replaced by fuzz bytes, then `Log.open` (which, after a clean shutdown, trusts the segments and
/// only checks each index against its segment: `OffsetIndex.entriesInFile`, `isPlausible`, the
/// last entry's batch header) and reads of every offset through the index.
///
/// Properties: open succeeds (an index holds nothing that cannot be rebuilt from the `.log`, so
/// a bad one is rebuilt, never a reason to refuse the log); the log keeps its 80 records;
/// `read(from:maxRecords:)` of every offset, `read(at:)` of every fourth and a `LogReader` from
/// the start return the right records (offsets and payloads) or throw; nothing traps or reads
/// outside the mapping. (Each input opens a log, which starts its threads: about 500 inputs/s.)
///
/// Input: byte 0 picks the segment (bit 0) and the mode (bit 7): set, the rest of the input is
/// XORed onto the real index (a longer input extends it; bit 6 also cuts the index to the input's
/// length), so most entries stay sorted and plausible while some point at the wrong batch;
/// clear, the rest of the input is the index file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOffsetIndex(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let template = IndexFuzzSeeds.template
    let selector = data[0]
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let indexName = IndexFuzzSeeds.indexNames[Int(selector & 1)]
    var index = template.files[indexName] ?? []
    if selector & 0x80 != 0 {
        if selector & 0x40 != 0 { index = Array(index.prefix(input.count)) }
        for (i, byte) in input.enumerated() {
            if i < index.count { index[i] ^= byte } else { index.append(byte) }
        }
    } else {
        index = input
    }
    let directory = IndexFuzzSeeds.directory
    IndexFuzzSeeds.clear(directory)
    for (name, bytes) in template.files { IndexFuzzSeeds.write(directory + "/" + name, name == indexName ? index : bytes) }

    let log: Log
    do { log = try Log.open(directory: directory, configuration: IndexFuzzSeeds.configuration) } catch {
        preconditionFailure("open failed because of an index: \(error)")
    }
    defer { log.abandon() }
    let count = UInt64(IndexFuzzSeeds.recordCount)
    precondition(log.startOffset == 0 && log.endOffset == count, "the log is \(log.startOffset)..<\(log.endOffset), not 0..<\(count)")
    for offset in 0..<count {
        if offset % 4 == 0, let payload = try? log.read(at: offset) {
            precondition(payload == IndexFuzzSeeds.payload(offset), "read(at: \(offset)) returned another record's payload")
        }
        if let records = try? log.read(from: offset, maxRecords: 3) {
            precondition(!records.isEmpty, "read(from: \(offset)) returned nothing")
            for (i, record) in records.enumerated() {
                precondition(record.offset == offset + UInt64(i) && record.payload == IndexFuzzSeeds.payload(record.offset),
                             "read(from: \(offset)) returned record \(record.offset) at position \(i)")
            }
        }
    }
    var reader = log.reader(from: 0)
    var expected: UInt64 = 0
    while let record = try? reader.next() {
        precondition(record.offset == expected && record.payload == IndexFuzzSeeds.payload(expected),
                     "the reader returned record \(record.offset) where \(expected) was due")
        expected += 1
    }
    return 0
}

enum IndexFuzzSeeds {
    static let recordCount = 80
    static let segmentBases: [UInt64] = [0, 40]
    static let indexNames = segmentBases.map { Segment.fileName($0, ".index") }

    static let configuration: LogConfiguration = {
        var configuration = LogConfiguration(durability: .none)
        configuration.segmentBytes = 64 << 10
        configuration.maxRecordBytes = 512
        configuration.maxBatchBytes = 1024  // the writer's buffer: a smaller one is cheaper to set up per input
        configuration.indexIntervalBytes = 64
        configuration.preallocationBytes = 0
        configuration.compressionThresholdBytes = Int.max
        return configuration
    }()

    /// Record `offset`'s payload: its number, then 0–99 bytes of filler.
    static func payload(_ offset: UInt64) -> [UInt8] {
        Array("record \(offset) ".utf8) + [UInt8](repeating: UInt8(offset % 251), count: Int(offset * 37 % 100))
    }

    struct Template {
        var files: [String: [UInt8]]
    }

    /// The files of a cleanly closed log: segments of 1–3-record batches written by hand, whose
    /// indexes the log itself rebuilt at open and trimmed at close.
    static let template: Template = {
        let directory = "/tmp/spool-fuzz-index-template-\(getpid())"
        mkdir(directory, 0o700)
        clear(directory)
        for (n, base) in segmentBases.enumerated() {
            let end = n + 1 < segmentBases.count ? segmentBases[n + 1] : UInt64(recordCount)
            var segment: [UInt8] = []
            var offset = base
            while offset < end {
                let batchEnd = min(end, offset + 1 + offset % 3)
                segment += RecordBatch.encode((offset..<batchEnd).map(payload), baseOffset: offset)
                offset = batchEnd
            }
            write(directory + "/" + Segment.fileName(base, ".log"), segment)
        }
        do {
            let log = try Log.open(directory: directory, configuration: configuration)
            try log.close()
        } catch {
            fatalError("cannot build the template log: \(error)")
        }
        var files: [String: [UInt8]] = [:]
        for name in list(directory) { files[name] = read(directory + "/" + name) }
        clear(directory)
        rmdir(directory)
        for name in indexNames { precondition((files[name]?.count ?? 0) >= 3 * OffsetIndex.entrySize, "the template's \(name) is too small") }
        precondition(files[CheckpointFile.cleanShutdownName] != nil, "the template has no clean-shutdown marker")
        return Template(files: files)
    }()

    /// The real indexes (mode 0x80 with an all-zero XOR keeps them as they are) and raw copies.
    static func seeds() -> [[UInt8]] {
        [[0x80], [0x81], [0x80] + [UInt8](repeating: 0, count: 16) + [0, 0, 0, 0, 0x40],
         [0] + (template.files[indexNames[0]] ?? []), [1] + (template.files[indexNames[1]] ?? [])]
    }

    static let directory: String = {
        let root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        let path = "\(root)/spool-fuzz-index-\(getpid())"
        mkdir(path, 0o700)
        // libFuzzer ends a timed run with exit(): leave nothing behind in /dev/shm.
        atexit { IndexFuzzSeeds.clear(IndexFuzzSeeds.directory); rmdir(IndexFuzzSeeds.directory) }
        return path
    }()

    static func list(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        return names
    }

    static func clear(_ directory: String) {
        for name in list(directory) { unlink(directory + "/" + name) }
    }

    static func write(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    static func read(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return bytes
    }
}
