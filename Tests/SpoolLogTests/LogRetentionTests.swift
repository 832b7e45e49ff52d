#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// `deleteSegments(below:)`: whole sealed segments go, the active one never does, and the new
/// start of the log holds across a reopen.
@Suite struct LogRetentionTests {
    static var configuration: LogConfiguration {
        var configuration = LogConfiguration(durability: .none)
        configuration.segmentBytes = 64 << 10
        configuration.maxRecordBytes = 16 << 10
        return configuration
    }

    /// A log of 400 records of 1000 bytes (six or seven segments) and its records.
    static func makeLog(_ dir: TemporaryDirectory) async throws -> (Log, [LogRecord]) {
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [LogRecord] = []
        for i in 0..<400 {
            let bytes = payload(i, size: 1000)
            written.append(LogRecord(offset: try await log.append(bytes), payload: bytes))
        }
        try #require(log.segmentBaseOffsets.count >= 5)
        return (log, written)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// The log starts at `start`: every record from there is readable, every one below is out of range.
    static func expectStarts(at start: UInt64, _ log: Log, _ written: [LogRecord],
                             sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(log.startOffset == start, sourceLocation: sourceLocation)
        #expect(try readAll(log) == written.filter { $0.offset >= start }, sourceLocation: sourceLocation)
        for offset in [0, start / 2, start - 1] where start > 0 {
            let error = #expect(throws: LogError.self, "offset \(offset)", sourceLocation: sourceLocation) { try log.read(at: offset) }
            #expect(error?.code == .offsetOutOfRange, sourceLocation: sourceLocation)
        }
        #expect(try log.read(at: start) == written[Int(start)].payload, sourceLocation: sourceLocation)
    }

    @Test func deletesOnlyWholeSegmentsBelowTheOffset() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let bases = log.segmentBaseOffsets

        // Segment 2 holds bases[3] - 1, which is not below the offset: only 0 and 1 go.
        #expect(try log.deleteSegments(below: bases[3] - 1) == 2)
        #expect(log.segmentBaseOffsets == Array(bases.dropFirst(2)))
        try Self.expectStarts(at: bases[2], log, written)
        for base in bases.prefix(2) {
            #expect(!Self.exists(segmentPath(dir.log, base)) && !Self.exists(segmentPath(dir.log, base, ".index")))
        }
        for base in bases.dropFirst(2) { #expect(Self.exists(segmentPath(dir.log, base))) }

        // An offset at or below the start deletes nothing.
        #expect(try log.deleteSegments(below: bases[2]) == 0)
        #expect(try log.deleteSegments(below: 0) == 0)
        // Exactly the next base: one more segment.
        #expect(try log.deleteSegments(below: bases[3]) == 1)
        try Self.expectStarts(at: bases[3], log, written)
        try log.close()
    }

    @Test func neverDeletesTheActiveSegment() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let bases = log.segmentBaseOffsets
        let active = bases[bases.count - 1]

        #expect(try log.deleteSegments(below: .max) == bases.count - 1)
        #expect(log.segmentBaseOffsets == [active])
        try Self.expectStarts(at: active, log, written)
        #expect(Self.exists(segmentPath(dir.log, active)))
        #expect(try log.deleteSegments(below: .max) == 0)

        // Appends go on into it.
        let bytes = payload(400, size: 1000)
        #expect(try await log.append(bytes) == 400)
        #expect(try log.read(at: 400) == bytes)
        try log.close()
    }

    enum Reopen: String, CaseIterable, Sendable { case afterClose, afterAbandon }

    @Test(arguments: Reopen.allCases)
    func theNewStartSurvivesAReopen(reopen: Reopen) async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let bases = log.segmentBaseOffsets
        #expect(try log.deleteSegments(below: bases[3]) == 3)
        switch reopen {
        case .afterClose: try log.close()
        case .afterAbandon: log.abandon()
        }

        let reopened = try Log.open(directory: dir.log, configuration: Self.configuration)
        #expect(reopened.segmentBaseOffsets == Array(bases.dropFirst(3)))
        #expect(reopened.endOffset == 400)
        try Self.expectStarts(at: bases[3], reopened, written)
        let more = try await reopened.append([1, 2, 3])
        #expect(more == 400)
        try reopened.close()
    }

    @Test func aReaderInsideADeletedSegmentFinishesIt() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.makeLog(dir)
        let bases = log.segmentBaseOffsets
        // A reader fetches up to the end of one segment at a time: this one holds all of segment 0.
        var reader = log.reader(from: 0)
        #expect(try reader.next() == written[0])
        #expect(try log.deleteSegments(below: bases[1]) == 1)
        var seen: [LogRecord] = []
        while let record = try reader.next() { seen.append(record) }
        #expect(seen == Array(written.dropFirst()))
        try log.close()
    }
}
