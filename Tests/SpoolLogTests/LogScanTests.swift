#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// `Log.scan` (issue 23, point 3): the records a reader returns, lent in place instead of
/// copied; a damaged batch stops it before any of its bytes reach the body, as a read refuses it.
@Suite struct LogScanTests {
    struct Stop: Error, Equatable { let at: UInt64 }

    /// Sealed and active segments, LZ4 and raw batches, gaps left by compaction: the scan from
    /// every offset (present or compacted away) returns exactly what the reader returns.
    @Test func scanEqualsTheReaderFromEveryOffset() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
        let written = try await CompactionFixture.fill(log, count: 600)
        try #require(log.segmentBaseOffsets.count >= 4)
        let live: (UInt64) -> Bool = { ($0 / 5) % 3 != 1 && $0 % 11 != 0 }
        _ = try log.compact(below: log.segmentBaseOffsets.last!) { live($0.offset) }
        let present = written.filter { live($0.offset) || $0.offset >= log.segmentBaseOffsets.last! }
        #expect(try scanAll(log) == readAll(log))
        #expect(try scanAll(log) == present)
        for offset in log.startOffset...log.endOffset {
            let expected = present.filter { $0.offset >= offset }
            #expect(try scanAll(log, from: offset) == expected, "scan(from: \(offset))")
        }
        #expect(try scanAll(log, releasingPagesBehind: true) == present)
        // Records appended after the scan started are not visited; a later scan sees them.
        let more = try await CompactionFixture.fill(log, from: 600, count: 10)
        #expect(try scanAll(log, from: 600) == more)
        try log.close()
    }

    @Test func outOfRangeOffsetsAndAClosedLogAreRefusedAsByRead() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        for i in 0..<5 { _ = try await log.append(payload(i)) }
        #expect(try scanAll(log, from: 5) == [])
        #expect(throws: LogError.self) { try log.read(from: 6) }
        let past = #expect(throws: LogError.self) { try scanAll(log, from: 6) }
        #expect(past?.code == .offsetOutOfRange)
        try log.close()
        let closed = #expect(throws: LogError.self) { try scanAll(log, from: 0) }
        #expect(closed?.code == .closed)
    }

    /// The body's error ends the scan at once, unchanged, as `.body`.
    @Test func theBodysErrorStopsTheScan() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        for i in 0..<50 { _ = try await log.append(payload(i)) }
        var visited: [UInt64] = []
        do {
            try log.scan(from: 0) { (offset, _) throws(Stop) in
                if offset == 17 { throw Stop(at: offset) }
                visited.append(offset)
            }
            Issue.record("the scan did not stop")
        } catch {
            guard case .body(let stop) = error else { Issue.record("\(error)"); return }
            #expect(stop == Stop(at: 17))
        }
        #expect(visited == Array(0..<17))
        try log.close()
    }

    /// A bit flipped in the payload of a batch in the middle of a sealed segment (raw or LZ4):
    /// the scan visits the records before that batch, then throws `corruptBatch` naming the
    /// segment and the batch's byte position; no record of the batch is passed on.
    @Test(arguments: [false, true]) func aDamagedBatchIsNeverPassedOn(compressed: Bool) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(compressionThresholdBytes: compressed ? 1024 : Int.max)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [[UInt8]] = []
        for i in 0..<600 {
            // Four records a batch; compressible ones (100 bytes four times) when `compressed`.
            let batch = (0..<4).map { k in compressed ? Array([[UInt8]](repeating: payload(4 * i + k), count: 4).joined()) : payload(4 * i + k, size: 200) }
            _ = try await log.append(contentsOf: batch)
            written += batch
        }
        try #require(log.segmentBaseOffsets.count >= 3)
        try log.close()
        let path = segmentPath(dir.log, 0)
        let layout = batchLayout(path)
        let damaged = layout[layout.count / 2]
        #expect(damaged.header.isCompressed == compressed)
        // Damaged under an open log (an open verifies what it is told to; the mapping shows the
        // file as it is now).
        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        flipBit(path, byte: damaged.position + RecordBatchHeader.size + 7, bit: 3)
        var visited: [LogRecord] = []
        do {
            try reopened.scan(from: 0) { (offset, bytes) throws(Never) in visited.append(LogRecord(offset: offset, payload: Array(bytes))) }
            Issue.record("the scan read a damaged batch")
        } catch {
            guard case .log(let failure) = error else { return }
            #expect(failure.code == .corruptBatch)
            #expect(failure.path == path)
            #expect(failure.offset == UInt64(damaged.position))
            #expect(failure.message.contains("spool recover"))
        }
        #expect(visited.map(\.offset) == Array(0..<damaged.header.baseOffset))
        #expect(visited.map(\.payload) == Array(written[0..<Int(damaged.header.baseOffset)]))
        // A read refuses the same batch; records in later segments remain readable by offset.
        #expect(throws: LogError.self) { try reopened.read(at: damaged.header.baseOffset) }
        #expect(try reopened.read(at: UInt64(written.count - 1)) == written[written.count - 1])
        try reopened.close()
    }

    /// The active segment is read with `pread` in chunks: batches that straddle a chunk's end,
    /// and records larger than a chunk, come back whole.
    @Test func activeSegmentChunksAreStitched() async throws {
        let dir = TemporaryDirectory()
        var configuration = LogConfiguration(durability: .none)
        configuration.segmentBytes = 8 << 20
        configuration.maxRecordBytes = 3 << 20
        configuration.preallocationBytes = 0
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [[UInt8]] = []
        for i in 0..<40 {
            let size = i % 10 == 9 ? (1 << 20) + 4321 : 30_000 + i * 977
            let record = payload(i, size: size)
            _ = try await log.append(record)
            written.append(record)
        }
        #expect(log.segmentBaseOffsets.count == 1)
        #expect(try scanAll(log).map(\.payload) == written)
        #expect(mismatchedRecords(log, written) == [])
        try log.close()
    }
}
