#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// A log of several sealed segments for compaction tests, built the same way every time.
struct CompactionFixture {
    /// 64 KiB segments; `.none` durability, since compaction does not depend on it and the crash
    /// tests build the log hundreds of times.
    static func configuration(_ syscalls: any Syscalls = SystemCalls()) -> LogConfiguration {
        var configuration = LogConfiguration(durability: .none)
        configuration.segmentBytes = 64 << 10
        configuration.maxRecordBytes = 16 << 10
        configuration.indexIntervalBytes = 1024
        configuration.syscalls = syscalls
        return configuration
    }

    /// Record `i`: mostly incompressible, every seventh one large and compressible, so that
    /// compaction copies both stored forms.
    static func record(_ i: Int, size: Int) -> [UInt8] {
        i % 7 == 3 ? [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 6000) : payload(i, size: size)
    }

    /// Appends `count` records in calls of up to `perCall` records (one batch each); returns them.
    static func fill(_ log: Log, from first: Int = 0, count: Int, size: Int = 500, perCall: Int = 5) async throws -> [LogRecord] {
        var records: [LogRecord] = []
        var i = first
        while i < first + count {
            let n = min(perCall, first + count - i)
            let payloads = (i..<i + n).map { record($0, size: size) }
            let range = try await log.append(contentsOf: payloads)
            records += zip(range, payloads).map { LogRecord(offset: $0, payload: $1) }
            i += n
        }
        return records
    }

    /// Bytes of every segment file (`*.log`) in `directory`.
    static func segmentBytes(_ directory: String) throws -> Int {
        try SystemCalls().listDirectory(directory).filter { $0.hasSuffix(".log") }.reduce(0) { $0 + fileSize(directory + "/" + $1) }
    }

    /// Checks every read a user can make: the whole log through a reader, each record by offset,
    /// each missing offset refused with `.offsetOutOfRange`, and `read(from:)` from a missing
    /// offset skipping to the next present one.
    static func expectReads(_ log: Log, present expected: [LogRecord], absent: [UInt64],
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try readAll(log) == expected, sourceLocation: sourceLocation)
        #expect(try scanAll(log) == expected, "the scan", sourceLocation: sourceLocation)
        for record in expected {
            #expect(try log.read(at: record.offset) == record.payload, "offset \(record.offset)", sourceLocation: sourceLocation)
        }
        for offset in absent {
            let error = #expect(throws: LogError.self, "offset \(offset)", sourceLocation: sourceLocation) { try log.read(at: offset) }
            #expect(error?.code == .offsetOutOfRange, sourceLocation: sourceLocation)
            if offset >= log.startOffset {
                let next = expected.first { $0.offset > offset }
                #expect(try log.read(from: offset, maxRecords: 1).first == next, "read(from: \(offset))", sourceLocation: sourceLocation)
                #expect(try scanAll(log, from: offset).first == next, "scan(from: \(offset))", sourceLocation: sourceLocation)
            }
        }
    }
}

@Suite struct LogCompactionTests {
    /// Drops runs of five records out of every fifteen, and every record whose offset is a
    /// multiple of eleven: gaps inside batches, whole batches and runs across batches.
    static func isLive(_ offset: UInt64) -> Bool { (offset / 5) % 3 != 1 && offset % 11 != 0 }

    /// A log of 600 records over several segments, and the records it holds.
    static func makeLog(_ dir: TemporaryDirectory) async throws -> (Log, [LogRecord]) {
        let log = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
        let written = try await CompactionFixture.fill(log, count: 600)
        try #require(log.segmentBaseOffsets.count >= 4)
        return (log, written)
    }

    @Test func keepsExactlyTheLiveRecordsWithTheirOffsets() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let sealed = log.segmentBaseOffsets.count - 1
        let activeBase = try #require(log.segmentBaseOffsets.last)
        let bytesBefore = try CompactionFixture.segmentBytes(dir.log)

        var seen: [LogRecord] = []
        let summary = try log.compact { record in
            seen.append(record)
            return Self.isLive(record.offset)
        }
        // The predicate saw every record of the sealed segments, as written.
        #expect(seen == written.filter { $0.offset < activeBase })
        let expected = written.filter { $0.offset >= activeBase || Self.isLive($0.offset) }
        let dropped = written.map(\.offset).filter { $0 < activeBase && !Self.isLive($0) }
        #expect(summary.recordsKept == expected.filter { $0.offset < activeBase }.count)
        #expect(summary.recordsDropped == dropped.count)
        #expect(summary.segmentsRewritten == sealed)
        #expect(summary.segmentsWritten >= 1 && summary.segmentsWritten <= sealed)
        #expect(summary.bytesAfter < summary.bytesBefore)
        #expect(log.startOffset == 0)
        #expect(log.endOffset == 600)
        try CompactionFixture.expectReads(log, present: expected, absent: dropped)
        #expect(try CompactionFixture.segmentBytes(dir.log) < bytesBefore, "the segments on disk did not shrink")
        let names = try SystemCalls().listDirectory(dir.log)
        #expect(!names.contains { $0.contains(".cleaned") || $0.contains("swap-manifest") || $0.hasSuffix(".tmp") })

        // Appends go on after it.
        let more = try await CompactionFixture.fill(log, from: 600, count: 20)
        #expect(more.first?.offset == 600)
        try CompactionFixture.expectReads(log, present: expected + more, absent: dropped)
        try log.close()
    }

    /// The offsets-only compaction skips dead batches and copies wholly live ones as they are
    /// (both stored forms: the fixture's large records are compressed): readers, a reopen and a
    /// full scan see the same records as after the record-by-record compaction.
    @Test func compactingByOffsetKeepsTheSameRecords() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let activeBase = try #require(log.segmentBaseOffsets.last)
        var judged: [UInt64] = []
        let summary = try log.compactByOffset { offset in
            judged.append(offset)
            return Self.isLive(offset)
        }
        #expect(judged == written.map(\.offset).filter { $0 < activeBase })
        let expected = written.filter { $0.offset >= activeBase || Self.isLive($0.offset) }
        let dropped = written.map(\.offset).filter { $0 < activeBase && !Self.isLive($0) }
        // Batches of five: some wholly dead, some wholly live, some partly.
        let batches = Dictionary(grouping: written.map(\.offset).filter { $0 < activeBase }) { $0 / 5 }.values
        #expect(batches.contains { $0.allSatisfy(Self.isLive) } && batches.contains { !$0.contains(where: Self.isLive) }
                && batches.contains { $0.contains(where: Self.isLive) && !$0.allSatisfy(Self.isLive) })
        #expect(summary.recordsKept == expected.filter { $0.offset < activeBase }.count)
        #expect(summary.recordsDropped == dropped.count)
        try CompactionFixture.expectReads(log, present: expected, absent: dropped)
        try log.close()
        let reopened = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
        try CompactionFixture.expectReads(reopened, present: expected, absent: dropped)
        try reopened.close()
        unlink(dir.log + "/clean-shutdown")
        unlink(dir.log + "/recovery-point")
        let scanned = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
        try CompactionFixture.expectReads(scanned, present: expected, absent: dropped)
        try scanned.close()
    }

    @Test func isIdempotent() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let activeBase = try #require(log.segmentBaseOffsets.last)
        let first = try log.compact { Self.isLive($0.offset) }
        let bytesAfterFirst = try CompactionFixture.segmentBytes(dir.log)
        let second = try log.compact { Self.isLive($0.offset) }

        #expect(second.recordsDropped == 0)
        #expect(second.recordsKept == first.recordsKept)
        #expect(second.bytesAfter == first.bytesAfter)
        #expect(try CompactionFixture.segmentBytes(dir.log) == bytesAfterFirst)
        let expected = written.filter { $0.offset >= activeBase || Self.isLive($0.offset) }
        let dropped = written.map(\.offset).filter { $0 < activeBase && !Self.isLive($0) }
        try CompactionFixture.expectReads(log, present: expected, absent: dropped)
        try log.close()
    }

    enum Reopen: String, CaseIterable, Sendable { case afterClose, afterAbandon }

    @Test(arguments: Reopen.allCases)
    func aCompactedLogReopensWithTheSameRecords(reopen: Reopen) async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let activeBase = try #require(log.segmentBaseOffsets.last)
        _ = try log.compact { Self.isLive($0.offset) }
        let expected = written.filter { $0.offset >= activeBase || Self.isLive($0.offset) }
        let dropped = written.map(\.offset).filter { $0 < activeBase && !Self.isLive($0) }
        let bases = log.segmentBaseOffsets
        switch reopen {
        case .afterClose: try log.close()
        case .afterAbandon: log.abandon()
        }

        let reopened = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
        #expect(reopened.recovery.cleanShutdown == (reopen == .afterClose))
        #expect(reopened.segmentBaseOffsets == bases)
        #expect(reopened.startOffset == 0)
        #expect(reopened.endOffset == 600)
        try CompactionFixture.expectReads(reopened, present: expected, absent: dropped)
        let more = try await CompactionFixture.fill(reopened, from: 600, count: 10)
        #expect(more.first?.offset == 600)
        try reopened.close()

        // A scan from the first segment (no recovery point) accepts the gaps too.
        _ = unlink(dir.log + "/" + CheckpointFile.recoveryPointName)
        _ = unlink(dir.log + "/" + CheckpointFile.cleanShutdownName)
        let scanned = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
        try CompactionFixture.expectReads(scanned, present: expected + more, absent: dropped)
        try scanned.close()
    }

    @Test func onlySegmentsBelowTheOffsetAreRewritten() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let bases = log.segmentBaseOffsets
        let limit = bases[2]
        let summary = try log.compact(below: limit + 1) { Self.isLive($0.offset) }  // segment 2 is not wholly below
        #expect(summary.segmentsRewritten == 2)
        let expected = written.filter { $0.offset >= limit || Self.isLive($0.offset) }
        let dropped = written.map(\.offset).filter { $0 < limit && !Self.isLive($0) }
        try CompactionFixture.expectReads(log, present: expected, absent: dropped)
        #expect(Array(log.segmentBaseOffsets.drop { $0 < limit }) == Array(bases.drop { $0 < limit }))
        try log.close()
    }

    @Test func droppingEverythingRemovesTheSealedSegments() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let activeBase = try #require(log.segmentBaseOffsets.last)
        let summary = try log.compact { _ in false }
        #expect(summary.recordsKept == 0 && summary.segmentsWritten == 0)
        #expect(log.segmentBaseOffsets == [activeBase])
        #expect(log.startOffset == activeBase)
        let expected = written.filter { $0.offset >= activeBase }
        try CompactionFixture.expectReads(log, present: expected, absent: [0, activeBase - 1])
        try log.close()

        let reopened = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
        #expect(reopened.startOffset == activeBase)
        try CompactionFixture.expectReads(reopened, present: expected, absent: [0, activeBase - 1])
        try reopened.close()
    }

    @Test func aThrowingPredicateChangesNothing() async throws {
        struct Stop: Error {}
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let bytes = try CompactionFixture.segmentBytes(dir.log)
        #expect(throws: Stop.self) { try log.compact { record in if record.offset == 300 { throw Stop() }; return false } }
        try CompactionFixture.expectReads(log, present: written, absent: [])
        #expect(try CompactionFixture.segmentBytes(dir.log) == bytes)
        #expect(try !SystemCalls().listDirectory(dir.log).contains { $0.contains(".cleaned") || $0.contains("swap-manifest") })
        try log.close()
    }

    @Test func appendsAndReadsContinueDuringCompaction() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        // Records appended meanwhile are all kept, whatever segment they land in.
        let appending = Task { try await CompactionFixture.fill(log, from: 600, count: 300, perCall: 3) }
        let reading = Task {
            var reader = log.reader(from: 0)
            var count = 0
            while let _ = try reader.next() { count += 1 }
            return count
        }
        _ = try log.compact { $0.offset >= 600 || Self.isLive($0.offset) }
        let appended = try await appending.value
        _ = try await reading.value

        #expect(appended.map(\.offset) == Array(600..<900))
        let expected = (written + appended).filter { $0.offset >= 600 || Self.isLive($0.offset) }
        // Which records were dropped depends on how far the rolls had gone when compaction
        // picked its segments; every record still there is right and every live one is there.
        let records = try readAll(log)
        let byOffset = Dictionary(uniqueKeysWithValues: (written + appended).map { ($0.offset, $0.payload) })
        for record in records { #expect(byOffset[record.offset] == record.payload) }
        #expect(Set(expected.map(\.offset)).isSubset(of: Set(records.map(\.offset))))
        #expect(records.map(\.offset) == records.map(\.offset).sorted())
        try log.close()

        let reopened = try Log.open(directory: dir.log, configuration: CompactionFixture.configuration())
        #expect(try readAll(reopened) == records)
        try reopened.close()
    }
}
