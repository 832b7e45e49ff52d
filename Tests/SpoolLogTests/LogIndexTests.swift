import SpoolTestSupport
import Testing
@testable import SpoolLog

/// The `.index` files: what the writer and a rebuild put in them, and that a missing, garbled or
/// plausible-but-wrong index never makes a read return the wrong record.
@Suite struct LogIndexTests {
    /// A closed log of four segments of records of varied sizes.
    static func closedLog(_ dir: String, _ configuration: LogConfiguration) async throws -> ([[UInt8]], [UInt64]) {
        let log = try Log.open(directory: dir, configuration: configuration)
        var written: [[UInt8]] = []
        while log.segmentBaseOffsets.count < 4 || batchLayout(segmentPath(dir, log.segmentBaseOffsets.last!)).count < 30 {
            let record = payload(written.count, size: (written.count * 131) % 1200)
            #expect(try await log.append(record) == UInt64(written.count))
            written.append(record)
        }
        let bases = log.segmentBaseOffsets
        try log.close()
        return (written, bases)
    }

    /// The entries the index of a segment should hold: one for the first batch at or after every
    /// `interval` bytes from the previous entry, starting with the first batch.
    static func expectedEntries(_ layout: [BatchLocation], base: UInt64, interval: Int) -> [[UInt32]] {
        var entries: [[UInt32]] = []
        var next = 0
        for batch in layout where batch.position >= next {
            entries.append([UInt32(batch.header.baseOffset - base), UInt32(batch.position)])
            next = batch.position + interval
        }
        return entries
    }

    static func entries(_ path: String) -> [[UInt32]] {
        indexEntries(path).map { [$0.relativeOffset, $0.position] }
    }

    static func expectIndexesMatchSegments(_ dir: String, _ bases: [UInt64], interval: Int = 4096,
                                           sourceLocation: SourceLocation = #_sourceLocation) {
        for base in bases {
            let indexPath = segmentPath(dir, base, ".index")
            let expected = expectedEntries(batchLayout(segmentPath(dir, base)), base: base, interval: interval)
            #expect(!expected.isEmpty, sourceLocation: sourceLocation)
            #expect(entries(indexPath) == expected, "\(indexPath)", sourceLocation: sourceLocation)
            #expect(fileSize(indexPath) == expected.count * OffsetIndex.entrySize, "trimmed to its entries",
                    sourceLocation: sourceLocation)
        }
    }

    /// After a clean close every index — sealed ones and the active one — holds exactly the
    /// entries its segment calls for, and is trimmed to them.
    @Test func indexesAfterCleanCloseMatchTheirSegments() async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.none, preallocationBytes: 8 << 10)
        let (written, bases) = try await Self.closedLog(dir.log, configuration)
        Self.expectIndexesMatchSegments(dir.log, bases)

        // Reopened cleanly, the active index is taken as it is and extended by new appends.
        let log = try Log.open(directory: dir.log, configuration: configuration)
        #expect(log.recovery.cleanShutdown)
        #expect(log.recovery.rebuiltIndexes == [])
        var all = written
        for i in 0..<20 {
            all.append(payload(10_000 + i, size: 700))
            #expect(try await log.append(all.last!) == UInt64(all.count - 1))
        }
        #expect(log.segmentBaseOffsets == bases, "still in the same active segment")
        #expect(mismatchedRecords(log, all) == [])
        try log.close()
        Self.expectIndexesMatchSegments(dir.log, bases)
    }

    /// After a crash the active segment's index is rebuilt by the scan and new entries continue
    /// from the rebuilt ones.
    @Test func activeIndexAfterACrashIsRebuiltAndExtended() async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.none, preallocationBytes: 8 << 10)
        let (written, bases) = try await Self.closedLog(dir.log, configuration)
        var all = written
        let log = try Log.open(directory: dir.log, configuration: configuration)
        for i in 0..<10 {
            all.append(payload(20_000 + i, size: 500))
            _ = try await log.append(all.last!)
        }
        log.abandon()

        let recovered = try Log.open(directory: dir.log, configuration: configuration)
        #expect(recovered.recovery.rebuiltIndexes == [segmentPath(dir.log, bases.last!, ".index")])
        for i in 0..<20 {
            all.append(payload(30_000 + i, size: 800))
            _ = try await recovered.append(all.last!)
        }
        #expect(mismatchedRecords(recovered, all) == [])
        try recovered.close()
        Self.expectIndexesMatchSegments(dir.log, bases)
    }

    enum IndexDamage: String, CaseIterable, Sendable, CustomStringConvertible {
        case deleted, empty, randomBytes, oddLength, lastEntryNamesAnotherOffset, lastEntryPastTheEnd
        var description: String { rawValue }

        func apply(to path: String, _ logSize: Int) {
            let original = readFile(path)
            switch self {
            case .deleted: removeFile(path)
            case .empty: writeFile(path, [])
            case .randomBytes: writeFile(path, payload(99, size: original.count))
            case .oddLength: writeFile(path, original + [1, 2, 3])
            case .lastEntryNamesAnotherOffset:
                // Still increasing and pointing at a batch, but one relative offset too high.
                var bytes = original
                bytes[bytes.count - 8] &+= 1
                writeFile(path, bytes)
            case .lastEntryPastTheEnd:
                var bytes = original
                withUnsafeBytes(of: UInt32(logSize).littleEndian) { for i in 0..<4 { bytes[bytes.count - 4 + i] = $0[i] } }
                writeFile(path, bytes)
            }
        }
    }

    /// A sealed or active index that is missing or does not fit its segment is detected on a
    /// clean open, rebuilt — listed in the recovery report — and every read works.
    @Test(arguments: IndexDamage.allCases, [false, true])
    func damagedIndexIsRebuilt(damage: IndexDamage, active: Bool) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.none, preallocationBytes: 8 << 10)
        let (written, bases) = try await Self.closedLog(dir.log, configuration)
        let base = active ? bases.last! : bases[1]
        let indexPath = segmentPath(dir.log, base, ".index")
        let original = readFile(indexPath)
        damage.apply(to: indexPath, batchLayout(segmentPath(dir.log, base)).last!.end)
        #expect(damage == .deleted || readFile(indexPath) != original)

        let log = try Log.open(directory: dir.log, configuration: configuration)
        #expect(log.recovery.cleanShutdown)
        #expect(log.recovery.rebuiltIndexes == [indexPath])
        #expect(mismatchedRecords(log, written) == [])
        var all = written
        for i in 0..<10 {
            all.append(payload(40_000 + i, size: 900))
            _ = try await log.append(all.last!)
        }
        #expect(mismatchedRecords(log, all) == [])
        try log.close()
        #expect(readFile(indexPath) == original || active, "a sealed index is rebuilt as the writer made it")
        Self.expectIndexesMatchSegments(dir.log, log.segmentBaseOffsets)
    }

    enum WrongEntry: String, CaseIterable, Sendable, CustomStringConvertible {
        /// Points at the batch after the one it names.
        case positionOfTheNextBatch
        /// Points into the middle of a batch.
        case positionInsideABatch
        /// Names an offset one higher than that of the batch it points at.
        case offsetTooHigh
        /// Names an offset one lower.
        case offsetTooLow
        var description: String { rawValue }
    }

    /// A middle entry that is plausible (entries still increase, the last one is right, so the
    /// index is not rebuilt) but wrong: reads notice the mismatch and scan instead.
    @Test(arguments: WrongEntry.allCases, [false, true])
    func plausibleButWrongEntryStillReadsTheRightRecords(wrong: WrongEntry, active: Bool) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.none, preallocationBytes: 8 << 10)
        let (written, bases) = try await Self.closedLog(dir.log, configuration)
        let base = active ? bases.last! : bases[1]
        let indexPath = segmentPath(dir.log, base, ".index")
        let layout = batchLayout(segmentPath(dir.log, base))
        var entries = Self.entries(indexPath)
        #expect(entries.count >= 4)
        let k = entries.count / 2
        let batchIndex = try #require(layout.firstIndex { $0.position == Int(entries[k][1]) })
        switch wrong {
        case .positionOfTheNextBatch: entries[k][1] = UInt32(layout[batchIndex + 1].position)
        case .positionInsideABatch: entries[k][1] += 17
        case .offsetTooHigh: entries[k][0] += 1
        case .offsetTooLow: entries[k][0] -= 1
        }
        #expect(entries[k][0] > entries[k - 1][0] && entries[k][0] < entries[k + 1][0])
        #expect(entries[k][1] > entries[k - 1][1] && entries[k][1] < entries[k + 1][1])
        var bytes: [UInt8] = []
        for entry in entries { for value in entry { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } } }
        writeFile(indexPath, bytes)

        let log = try Log.open(directory: dir.log, configuration: configuration)
        #expect(log.recovery.cleanShutdown)
        #expect(mismatchedRecords(log, written, chunk: 3) == [])
        // Every record of the segment, one by one and from each offset on.
        let end = bases.first { $0 > base } ?? UInt64(written.count)
        for offset in base..<end {
            #expect(try log.read(from: offset, maxRecords: 2).first == LogRecord(offset: offset, payload: written[Int(offset)]))
        }
        try log.close()
    }
}
