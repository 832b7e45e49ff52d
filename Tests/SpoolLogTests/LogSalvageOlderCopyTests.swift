#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// An older copy of the last segment put back after a clean close (a restore from yesterday's
/// backup, a snapshot rolled back) holds a valid prefix of the log and nothing else. Every record
/// after that prefix was acknowledged; salvage may accept losing them, but it has to name them.
/// Found by `spool torture --damage` (the `swapWithOtherStore` damage, which restores an older copy
/// of the same store's segment).
@Suite struct LogSalvageOlderCopyTests {
    static let first = 100, more = 200

    /// A log closed cleanly after `first` records, the bytes of its only segment then, and the same log
    /// after `more` records more, closed cleanly again.
    static func makeLog(_ directory: String) async throws -> (path: String, olderCopy: [UInt8], recordedLength: Int) {
        let configuration = smallSegmentConfiguration()
        var log = try Log.open(directory: directory, configuration: configuration)
        _ = try await log.append(contentsOf: (0..<first).map { payload($0, size: 40) })
        try #require(log.segmentBaseOffsets == [0])
        try log.close()
        let path = segmentPath(directory, 0)
        let olderCopy = readFile(path)
        log = try Log.open(directory: directory, configuration: configuration)
        _ = try await log.append(contentsOf: (first..<first + more).map { payload($0, size: 40) })
        try #require(log.segmentBaseOffsets == [0], "one segment, so that the copy is the last one")
        try log.close()
        return (path, olderCopy, fileSize(path))
    }

    /// `zeroFilled`: the copy was taken while the log ran, with its zero-filled preallocation, which
    /// makes it longer than the length the clean close recorded.
    static func salvageNamesTheLostRecords(zeroFilled: Bool) async throws {
        let dir = TemporaryDirectory()
        let (path, olderCopy, recordedLength) = try await Self.makeLog(dir.log)
        try #require(olderCopy.count < recordedLength)
        writeFile(path, zeroFilled ? olderCopy + [UInt8](repeating: 0, count: recordedLength + 4096 - olderCopy.count) : olderCopy)
        removeFile(segmentPath(dir.log, 0, ".index"))

        let refusal = try #require(openFailure(dir.log, smallSegmentConfiguration()), "open hid the loss")
        #expect(refusal.path == path)
        #expect(refusal.message.contains("offsets \(first)..<\(first + more)"), "\(refusal)")

        let check: LogVerification
        do {
            let offline = try OfflineLog.open(directory: dir.log)
            defer { offline.close() }
            check = try offline.verify()
        }
        #expect(!check.opensCleanly, "records acknowledged at the last clean close are missing: \(check.problems)")

        let offline = try OfflineLog.open(directory: dir.log, writable: true)
        let report = try offline.repair(.salvage, backupDirectory: nil)
        offline.close()
        // Named as the offsets the clean close recorded and the segment no longer holds (an upper bound,
        // as for every loss a repair accepts rather than makes).
        #expect(report.lost.map(\.offsets) == [UInt64(first)..<UInt64(first + more)], "\(report.lost)")
        #expect(report.lost.first?.file == path)
        #expect(report.after.isClean, "\(report.after.problems)")

        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        let records = try readAll(log)
        #expect(records.map(\.offset) == (0..<UInt64(first)).map { $0 })
        #expect(records.allSatisfy { $0.payload == payload(Int($0.offset), size: 40) })
        try log.close()
    }

    /// The copy is exactly as long as the data it holds: shorter than the clean close recorded.
    @Test func anOlderCopyOfTheLastSegmentIsNamedAsLost() async throws {
        try await Self.salvageNamesTheLostRecords(zeroFilled: false)
    }

    /// The copy carries the zero-filled preallocation of the segment then: as long as (or longer than)
    /// the clean close recorded, so the length alone does not show the loss; the marker's next offset does.
    @Test func anOlderPreallocatedCopyOfTheLastSegmentIsNamedAsLost() async throws {
        try await Self.salvageNamesTheLostRecords(zeroFilled: true)
    }
}
