import SpoolTestSupport
import Testing
@testable import SpoolLog

/// Rolling to a new segment, by size and by age: sealed segments hold exactly their batches, the
/// segments' offsets join up, and reads cross the boundaries.
@Suite struct LogSegmentRollTests {
    /// Checks what a sealed segment must be: its batches from byte 0 to the end of the file (no
    /// zero-filled tail), offsets from its base to the next segment's base, and no larger than
    /// `segmentBytes` unless it holds a single batch.
    static func expectSealedSegmentsAreExact(_ dir: String, _ bases: [UInt64], segmentBytes: Int, rolledBySize: Bool = true,
                                             sourceLocation: SourceLocation = #_sourceLocation) {
        for (i, base) in bases.dropLast().enumerated() {
            let path = segmentPath(dir, base)
            let layout = batchLayout(path)
            #expect(layout.first?.position == 0, "\(path)", sourceLocation: sourceLocation)
            #expect(layout.last?.end == fileSize(path), "\(path) ends with its last batch", sourceLocation: sourceLocation)
            #expect(layout.first?.header.baseOffset == base, "\(path)", sourceLocation: sourceLocation)
            #expect(layout.last?.header.nextOffset == bases[i + 1], "\(path)", sourceLocation: sourceLocation)
            for (a, b) in zip(layout, layout.dropFirst()) where a.header.nextOffset != b.header.baseOffset {
                Issue.record("\(path): batch at \(b.position) starts at offset \(b.header.baseOffset), not \(a.header.nextOffset)",
                             sourceLocation: sourceLocation)
            }
            #expect(fileSize(path) <= segmentBytes || layout.count == 1, "\(path)", sourceLocation: sourceLocation)
            if rolledBySize {
                // It was rolled because the next batch would not have fitted.
                let next = batchLayout(segmentPath(dir, bases[i + 1])).first
                #expect(next.map { fileSize(path) + $0.header.totalLength > segmentBytes } == true, "\(path)",
                        sourceLocation: sourceLocation)
            }
        }
    }

    @Test(arguments: [Durability.sync, .none])
    func rollBySize(durability: Durability) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(durability, preallocationBytes: 8 << 20)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [[UInt8]] = []
        while log.segmentBaseOffsets.count < 5 || UInt64(written.count) < log.segmentBaseOffsets.last! + 3 {
            let record = payload(written.count, size: 300 + (written.count * 211) % 3700)
            #expect(try await log.append(record) == UInt64(written.count))
            written.append(record)
        }
        let bases = log.segmentBaseOffsets
        #expect(bases.first == 0)
        #expect(bases == bases.sorted() && Set(bases).count == bases.count)
        #expect(log.statistics.segmentsRolled == bases.count - 1)

        // One .log and one .index per segment, named by base offset, and the recovery point at the active one.
        let expectedFiles = bases.flatMap { [Segment.fileName($0, ".index"), Segment.fileName($0, ".log")] }
            + ["lock", CheckpointFile.recoveryPointName, LogManifest.fileName]
        #expect(directoryEntries(dir.log) == expectedFiles.sorted())
        let point = CheckpointFile.decode(readFile(dir.log + "/" + CheckpointFile.recoveryPointName),
                                          magic: CheckpointFile.recoveryPointMagic, fieldCount: 1)
        #expect(point?.fields == [bases.last!])

        Self.expectSealedSegmentsAreExact(dir.log, bases, segmentBytes: configuration.segmentBytes)
        // The active segment is zero-filled ahead of its data, up to the segment size.
        let active = segmentPath(dir.log, bases.last!)
        let dataEnd = try #require(batchLayout(active).last?.end)
        #expect(fileSize(active) == configuration.segmentBytes)
        #expect(readBytes(active, at: dataEnd).allSatisfy { $0 == 0 })

        // Reads across the boundaries: read(from:) stops at the end of the segment holding the
        // offset; a reader goes on.
        for base in bases.dropFirst() {
            let records = try log.read(from: base - 2, maxRecords: 10)
            #expect(records == [LogRecord(offset: base - 2, payload: written[Int(base) - 2]),
                                LogRecord(offset: base - 1, payload: written[Int(base) - 1])])
            var reader = log.reader(from: base - 2)
            for offset in base - 2..<base + 3 {
                #expect(try reader.next() == LogRecord(offset: offset, payload: written[Int(offset)]))
            }
        }
        #expect(mismatchedRecords(log, written) == [])
        try log.close()

        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(reopened.segmentBaseOffsets == bases)
        #expect(mismatchedRecords(reopened, written) == [])
        try reopened.close()
    }

    /// A record as large as allowed still rolls a nearly full segment and goes whole into the next.
    @Test func largestRecordRollsANearlyFullSegment() async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync, preallocationBytes: 8 << 10)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [[UInt8]] = []
        // Fill the first segment to within a few bytes of its size.
        while fileSizeOfData(segmentPath(dir.log, 0)) + 4096 + 44 <= configuration.segmentBytes {
            written.append(payload(written.count, size: 4000))
            _ = try await log.append(written.last!)
        }
        #expect(log.segmentBaseOffsets == [0])
        let big = payload(7, size: configuration.maxRecordBytes)
        #expect(try await log.append(big) == UInt64(written.count))
        written.append(big)
        #expect(log.segmentBaseOffsets == [0, UInt64(written.count - 1)])
        #expect(batchLayout(segmentPath(dir.log, UInt64(written.count - 1))).first?.header.recordCount == 1)
        #expect(mismatchedRecords(log, written) == [])
        try log.close()
    }

    func fileSizeOfData(_ path: String) -> Int { batchLayout(path).last?.end ?? 0 }

    /// With a maximum age every append that comes after the active segment's first batch has aged
    /// starts a new segment.
    @Test func rollByAge() async throws {
        let dir = TemporaryDirectory()
        var configuration = smallSegmentConfiguration(.sync, preallocationBytes: 4 << 10)
        configuration.segmentMaxAgeMilliseconds = 1
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [[UInt8]] = []
        for i in 0..<5 {
            if i > 0 { try await Task.sleep(for: .milliseconds(5)) }
            written.append(payload(i, size: 100))
            #expect(try await log.append(written[i]) == UInt64(i))
        }
        #expect(log.segmentBaseOffsets == [0, 1, 2, 3, 4])
        #expect(log.statistics.segmentsRolled == 4)
        Self.expectSealedSegmentsAreExact(dir.log, log.segmentBaseOffsets, segmentBytes: configuration.segmentBytes,
                                          rolledBySize: false)
        #expect(mismatchedRecords(log, written) == [])
        try log.close()

        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(reopened.segmentBaseOffsets == [0, 1, 2, 3, 4])
        #expect(mismatchedRecords(reopened, written) == [])
        try reopened.close()
    }

    /// An empty segment is never rolled for age: the first append after a long pause goes into it.
    @Test func emptySegmentIsNotRolledByAge() async throws {
        let dir = TemporaryDirectory()
        var configuration = smallSegmentConfiguration(.sync)
        configuration.segmentMaxAgeMilliseconds = 1
        let log = try Log.open(directory: dir.log, configuration: configuration)
        try await Task.sleep(for: .milliseconds(5))
        #expect(try await log.append([1]) == 0)
        #expect(log.segmentBaseOffsets == [0])
        try log.close()
    }

    /// The age of the active segment counts from its first batch, across a restart: a segment
    /// that aged while the log was closed is rolled by the first append after reopening.
    @Test(arguments: [false, true]) func ageSurvivesAReopen(crash: Bool) async throws {
        let dir = TemporaryDirectory()
        var configuration = smallSegmentConfiguration(.sync)
        configuration.segmentMaxAgeMilliseconds = 1
        let log = try Log.open(directory: dir.log, configuration: configuration)
        #expect(try await log.append([1]) == 0)
        if crash { log.abandon() } else { try log.close() }
        try await Task.sleep(for: .milliseconds(5))

        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(reopened.recovery.cleanShutdown == !crash)
        #expect(try await reopened.append([2]) == 1)
        #expect(reopened.segmentBaseOffsets == [0, 1])
        #expect(try reopened.read(at: 0) == [1])
        #expect(try reopened.read(at: 1) == [2])
        try reopened.close()
    }
}
