#if canImport(Glibc)
import Glibc
#endif
@testable import SpoolLog
import SpoolTestSupport

extension TemporaryDirectory {
    /// The log directory inside it.
    var log: String { path + "/log" }
}

func payload(_ i: Int, size: Int = 100) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: size)
    var x = UInt64(i) &* 0x9E37_79B9_7F4A_7C15 &+ 1
    for j in 0..<size {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        bytes[j] = UInt8(truncatingIfNeeded: x)
    }
    return bytes
}

/// Reads every record of the log from its start.
func readAll(_ log: Log) throws -> [LogRecord] {
    var reader = log.reader(from: log.startOffset)
    var records: [LogRecord] = []
    while let record = try reader.next() { records.append(record) }
    return records
}

/// Every record from `offset` (the log's start by default) on through ``Log/scan(from:releasingPagesBehind:_:)``,
/// copied out of the views it lends; the scan's own failure rethrown as the `LogError` it is.
func scanAll(_ log: Log, from offset: UInt64? = nil, releasingPagesBehind: Bool = false) throws(LogError) -> [LogRecord] {
    var records: [LogRecord] = []
    do {
        try log.scan(from: offset ?? log.startOffset, releasingPagesBehind: releasingPagesBehind) { (offset, bytes) throws(Never) in
            records.append(LogRecord(offset: offset, payload: Array(bytes)))
        }
    } catch {
        switch error {
        case .log(let failure): throw failure
        }
    }
    return records
}

func fileSize(_ path: String) -> Int {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_size) : -1
}

func truncateFile(_ path: String, to size: Int) {
    precondition(truncate(path, off_t(size)) == 0)
}

func readFile(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: max(fileSize(path), 0))
    let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    precondition(n == bytes.count)
    return bytes
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    precondition(n == bytes.count)
}

func segmentPath(_ directory: String, _ base: UInt64, _ suffix: String = ".log") -> String {
    directory + "/" + Segment.fileName(base, suffix)
}

// MARK: - Segment files, batches and damage (recovery and corruption suites)

/// Small segments so that a few hundred records span several of them. `maxRecordBytes` has to
/// fit in a segment, so it is lowered with it.
func smallSegmentConfiguration(_ durability: Durability = .none, preallocationBytes: Int = 0,
                               compressionThresholdBytes: Int = Int.max) -> LogConfiguration {
    var configuration = LogConfiguration(durability: durability)
    configuration.segmentBytes = 64 << 10
    configuration.maxRecordBytes = 4096
    configuration.preallocationBytes = preallocationBytes
    configuration.compressionThresholdBytes = compressionThresholdBytes
    return configuration
}

/// A batch found by walking a segment file.
struct BatchLocation: Sendable {
    var position: Int
    var header: RecordBatchHeader
    var end: Int { position + header.totalLength }
    /// The offsets of the batch's records.
    var offsets: Range<UInt64> { header.baseOffset..<header.nextOffset }
}

/// The batches of a segment file from its start, up to the first bytes that are not a whole,
/// well-formed batch header (the zero-filled tail). Checksums are not checked.
func batchLayout(_ path: String) -> [BatchLocation] {
    let bytes = readFile(path)
    var batches: [BatchLocation] = []
    bytes.withUnsafeBytes { raw in
        var position = 0
        while position < raw.count, let header = RecordBatchHeader(UnsafeRawBufferPointer(rebasing: raw[position...])),
              position + header.totalLength <= raw.count {
            batches.append(BatchLocation(position: position, header: header))
            position += header.totalLength
        }
    }
    return batches
}

/// Bytes of `path` from `position` on (`count` of them, or to the end).
func readBytes(_ path: String, at position: Int, count: Int? = nil) -> [UInt8] {
    let all = readFile(path)
    return Array(all[position..<(count.map { position + $0 } ?? all.count)])
}

/// Writes `bytes` at `position` in an existing file, leaving the rest as it is.
func overwrite(_ path: String, at position: Int, with bytes: [UInt8]) {
    let fd = open(path, O_WRONLY)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(position)) }
    precondition(n == bytes.count)
}

/// Inverts one bit of an existing file (call twice to undo).
func flipBit(_ path: String, byte position: Int, bit: Int = 0) {
    let fd = open(path, O_RDWR)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    var byte: UInt8 = 0
    precondition(pread(fd, &byte, 1, off_t(position)) == 1, "byte \(position) is past the end of \(path)")
    byte ^= UInt8(1) << UInt8(bit)
    precondition(pwrite(fd, &byte, 1, off_t(position)) == 1)
}

func removeFile(_ path: String) {
    precondition(unlink(path) == 0 || errno == ENOENT, "cannot remove \(path)")
}

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

/// Like `payload(_:size:)` but without zero bytes, so that a cut or zero-filled tail of a batch
/// always changes its bytes.
func nonZeroPayload(_ i: Int, size: Int = 100) -> [UInt8] {
    payload(i, size: size).map { $0 == 0 ? 0x5A : $0 }
}

/// The error `Log.open` throws; `nil` (after abandoning the log it opened) when it opens.
func openFailure(_ directory: String, _ configuration: LogConfiguration) -> LogError? {
    do {
        let log = try Log.open(directory: directory, configuration: configuration)
        log.abandon()
        return nil
    } catch {
        return error
    }
}

/// Which of `expected` (record `i` at offset `i`) the log does not return exactly, through
/// `read(at:)`, `read(from:maxRecords:)` in chunks of `chunk` and a reader; empty when all match.
/// Also checks that the log ends right after them.
func mismatchedRecords(_ log: Log, _ expected: [[UInt8]], chunk: Int = 7) -> [String] {
    var problems: [String] = []
    if log.startOffset != 0 { problems.append("startOffset \(log.startOffset)") }
    if log.endOffset != UInt64(expected.count) { problems.append("endOffset \(log.endOffset), expected \(expected.count)") }
    for (i, bytes) in expected.enumerated() {
        do {
            let read = try log.read(at: UInt64(i))
            if read != bytes { problems.append("read(at: \(i)) returned \(read.count) different bytes") }
        } catch {
            problems.append("read(at: \(i)) threw \(error)")
        }
        if problems.count > 10 { return problems }
    }
    var offset: UInt64 = 0
    while offset < UInt64(expected.count) {
        do {
            let records = try log.read(from: offset, maxRecords: chunk)
            guard !records.isEmpty, records.count <= chunk else {
                problems.append("read(from: \(offset), maxRecords: \(chunk)) returned \(records.count) records")
                break
            }
            for (k, record) in records.enumerated() where record != LogRecord(offset: offset + UInt64(k),
                                                                               payload: expected[Int(offset) + k]) {
                problems.append("read(from: \(offset)) record \(k) is offset \(record.offset) or has other bytes")
            }
            offset += UInt64(records.count)
        } catch {
            problems.append("read(from: \(offset)) threw \(error)")
            break
        }
        if problems.count > 10 { return problems }
    }
    do {
        let all = try readAll(log)
        if all.map(\.offset) != Array(0..<UInt64(expected.count)) { problems.append("the reader returned offsets other than 0..<\(expected.count)") }
        if all.map(\.payload) != expected { problems.append("the reader returned other bytes") }
    } catch {
        problems.append("the reader threw \(error)")
    }
    // The borrowed scan returns what the reader returns, from the start and from a few offsets inside.
    for from in Set([0, expected.count / 3, expected.count / 2, max(0, expected.count - 1)]).sorted() where from <= expected.count {
        do {
            let scanned = try scanAll(log, from: UInt64(from))
            if scanned.map(\.offset) != Array(UInt64(from)..<UInt64(expected.count)) {
                problems.append("the scan from \(from) returned other offsets")
            } else if scanned.map(\.payload) != Array(expected[from...]) {
                problems.append("the scan from \(from) returned other bytes")
            }
        } catch {
            problems.append("the scan from \(from) threw \(error)")
        }
    }
    return problems
}

/// The entries of an index file as stored: (offset - segment base, byte position) pairs.
func indexEntries(_ path: String) -> [(relativeOffset: UInt32, position: UInt32)] {
    let bytes = readFile(path)
    return bytes.withUnsafeBytes { raw in
        stride(from: 0, to: raw.count - raw.count % 8, by: 8).map {
            (raw.loadUnaligned(fromByteOffset: $0, as: UInt32.self).littleEndian,
             raw.loadUnaligned(fromByteOffset: $0 + 4, as: UInt32.self).littleEndian)
        }
    }
}
