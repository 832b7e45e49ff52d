#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// The log knows its own shape (`log-manifest`): a segment lost or cut short behind its back is
/// refused by open and reported by check, while gaps left on purpose (compaction, retention,
/// repair) are not; salvage accepts a loss explicitly, after which the log opens.
@Suite struct LogManifestTests {
    /// A closed log of `count` 100-byte records spread over several 64 KiB segments.
    static func makeLog(_ directory: String, count: Int = 3000) async throws -> [UInt64] {
        let log = try Log.open(directory: directory, configuration: smallSegmentConfiguration())
        var i = 0
        while i < count {
            _ = try await log.append(contentsOf: (i..<min(i + 20, count)).map { payload($0) })
            i += 20
        }
        let bases = log.segmentBaseOffsets
        try log.close()
        return bases
    }

    static func verify(_ directory: String) throws -> LogVerification {
        let offline = try OfflineLog.open(directory: directory)
        defer { offline.close() }
        return try offline.verify()
    }

    static func salvage(_ directory: String) throws -> RepairReport {
        let offline = try OfflineLog.open(directory: directory, writable: true)
        defer { offline.close() }
        return try offline.repair(.salvage, backupDirectory: nil)
    }

    // MARK: Issue 25, "Why" bullet 1: a missing middle segment is invisible

    @Test func aMissingMiddleSegmentMakesOpenRefuseAndCheckFail() async throws {
        let dir = TemporaryDirectory()
        let bases = try await Self.makeLog(dir.log)
        try #require(bases.count >= 4)
        let lostBase = bases[2], nextBase = bases[3]
        removeFile(segmentPath(dir.log, lostBase))
        removeFile(segmentPath(dir.log, lostBase, ".index"))

        let error = try #require(openFailure(dir.log, smallSegmentConfiguration()))
        #expect(error.code == .missingSegment)
        #expect(error.path == segmentPath(dir.log, lostBase))
        #expect(error.message.contains("offsets \(lostBase)..<\(nextBase)"), "\(error)")
        #expect(error.message.contains("spool recover"), "\(error)")

        let check = try Self.verify(dir.log)
        #expect(!check.opensCleanly)
        let problem = try #require(check.problems.first { $0.kind == "segmentMissing" })
        #expect(problem.severity == .damage)
        #expect(problem.file == segmentPath(dir.log, lostBase))
        #expect(problem.offsets == lostBase..<nextBase)

        // Salvage accepts the loss, names it, and the log opens with every other record.
        let repair = try Self.salvage(dir.log)
        #expect(repair.lost.contains { $0.offsets == lostBase..<nextBase && $0.file == segmentPath(dir.log, lostBase) })
        #expect(repair.after.isClean, "\(repair.after.problems)")
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        let records = try readAll(log)
        #expect(records.count == 3000 - Int(nextBase - lostBase))
        #expect(records.allSatisfy { $0.payload == payload(Int($0.offset)) && !(lostBase..<nextBase).contains($0.offset) })
        try log.close()
        #expect(try Self.verify(dir.log).isClean)
    }

    // MARK: Issue 25, "Why" bullet 2: a last segment cut short after a clean close is "repaired" silently

    @Test func aLastSegmentCutShortAfterACleanCloseMakesOpenRefuse() async throws {
        let dir = TemporaryDirectory()
        let bases = try await Self.makeLog(dir.log)
        let last = try #require(bases.last)
        let path = segmentPath(dir.log, last)
        let size = fileSize(path)
        try #require(size > 1000)
        truncateFile(path, to: size / 2)

        let error = try #require(openFailure(dir.log, smallSegmentConfiguration()))
        #expect(error.code == .segmentShortened)
        #expect(error.path == path)
        #expect(error.message.contains("bytes \(size / 2)..<\(size)"), "\(error)")
        #expect(error.message.contains("..<3000)"), "the offsets lost, up to the end of the log: \(error)")
        #expect(fileSize(path) == size / 2, "open changed nothing")

        let check = try Self.verify(dir.log)
        #expect(!check.opensCleanly)
        let problem = try #require(check.problems.first { $0.kind == "segmentShortened" })
        #expect(problem.file == path)
        #expect(problem.offsets?.upperBound == 3000)
        // Said as what it is: the log was closed cleanly and the segment lost bytes since; not "not
        // closed cleanly", not a torn tail the next open cuts, not a marker that does not match.
        #expect(!check.notes.contains { $0.contains("not closed cleanly") }, "\(check.notes)")
        #expect(check.notes.contains { $0.contains("the log was closed cleanly, but its last segment is \(size / 2) bytes long where the clean close recorded \(size)") },
                "\(check.notes)")
        #expect(!check.problems.contains { $0.kind == "tornTail" || $0.kind == "cleanShutdownMismatch" }, "\(check.problems)")

        let repair = try Self.salvage(dir.log)
        #expect(repair.lost.contains { $0.file == path && $0.offsets?.upperBound == 3000 })
        #expect(repair.after.isClean, "\(repair.after.problems)")
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        let records = try readAll(log)
        #expect(records.count < 3000 && records.count > Int(last))
        #expect(records.allSatisfy { $0.payload == payload(Int($0.offset)) })
        try log.close()
    }

    /// Without a manifest (a log made before it), the clean-shutdown marker alone records the last
    /// segment's length at the clean close: a cut below it is refused all the same, not cut as a torn tail.
    @Test func aLastSegmentCutAfterACleanCloseIsRefusedOnTheMarkerAlone() async throws {
        let dir = TemporaryDirectory()
        let bases = try await Self.makeLog(dir.log)
        let path = segmentPath(dir.log, try #require(bases.last))
        let size = fileSize(path)
        truncateFile(path, to: size / 2)
        removeFile(dir.log + "/" + LogManifest.fileName)

        let error = try #require(openFailure(dir.log, smallSegmentConfiguration()))
        #expect(error.code == .segmentShortened)
        #expect(error.path == path)
        #expect(error.message.contains("bytes \(size / 2)..<\(size)"), "\(error)")
        let check = try Self.verify(dir.log)
        #expect(check.problems.contains { $0.file == path && ($0.kind == "segmentShortened" || $0.kind == "damagedBytes") && $0.severity == .damage },
                "\(check.problems)")
        #expect(!check.problems.contains { $0.kind == "tornTail" }, "\(check.problems)")
        #expect(!check.notes.contains { $0.contains("not closed cleanly") }, "\(check.notes)")
    }

    /// A sealed segment of another log put in this one's place — same name, same length, every
    /// checksum valid — used to open as this log's: the manifest records each sealed segment's first
    /// batch checksum, and open refuses a segment whose first batch differs; check reports it;
    /// a repair refuses to adopt it.
    @Test func aSegmentOfAnotherLogIsRefused() async throws {
        let dir = TemporaryDirectory(), other = TemporaryDirectory()
        let bases = try await Self.makeLog(dir.log)
        _ = try await Self.makeLog(other.log)
        let path = segmentPath(dir.log, bases[1])
        try #require(fileSize(segmentPath(other.log, bases[1])) == fileSize(path), "the same layout, other batches (timestamps)")
        writeFile(path, readFile(segmentPath(other.log, bases[1])))

        let error = try #require(openFailure(dir.log, smallSegmentConfiguration()))
        #expect(error.code == .segmentReplaced)
        #expect(error.path == path)
        let check = try Self.verify(dir.log)
        #expect(check.problems.map(\.kind) == ["segmentReplaced"], "\(check.problems)")
        #expect(!check.opensCleanly)
        let writable = try OfflineLog.open(directory: dir.log, writable: true)
        defer { writable.close() }
        #expect { try writable.repair(.salvage, backupDirectory: nil) } throws: { ($0 as? LogError)?.code == .segmentReplaced }
    }

    /// Another log's manifest in this one's place fingerprints none of its segments: the manifest is
    /// named as the stranger, and a repair rewrites it from the segments present.
    @Test func aManifestOfAnotherLogIsRefusedAndRewritten() async throws {
        let dir = TemporaryDirectory(), other = TemporaryDirectory()
        _ = try await Self.makeLog(dir.log)
        _ = try await Self.makeLog(other.log)
        writeFile(dir.log + "/" + LogManifest.fileName, readFile(other.log + "/" + LogManifest.fileName))
        let error = try #require(openFailure(dir.log, smallSegmentConfiguration()))
        #expect(error.code == .corruptCheckpoint)
        #expect(error.path == dir.log + "/" + LogManifest.fileName)
        #expect(try Self.verify(dir.log).problems.map(\.kind) == ["logManifestForeign"])
        let repair = try Self.salvage(dir.log)
        #expect(repair.after.isClean, "\(repair.after.problems)")
        #expect(repair.lost.isEmpty)
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(try readAll(log).count == 3000)
        try log.close()
    }

    /// A sealed segment cut at a batch boundary used to pass as a shorter segment.
    @Test func aSealedSegmentCutAtABatchBoundaryMakesOpenRefuse() async throws {
        let dir = TemporaryDirectory()
        let bases = try await Self.makeLog(dir.log)
        let path = segmentPath(dir.log, bases[1])
        let layout = batchLayout(path)
        try #require(layout.count > 4)
        truncateFile(path, to: layout[layout.count / 2].position)
        // Unclean as well: no marker, so only the manifest knows.
        removeFile(dir.log + "/" + CheckpointFile.cleanShutdownName)

        let error = try #require(openFailure(dir.log, smallSegmentConfiguration()))
        #expect(error.code == .segmentShortened)
        #expect(error.path == path)
        #expect(try Self.verify(dir.log).problems.contains { $0.kind == "segmentShortened" && $0.file == path })
    }

    /// The first segments gone behind the log's back are damage like any other listed segment:
    /// retention rewrites the manifest before it deletes, so only a loss leaves a listed leading
    /// segment missing. Open used to accept it as "a shorter log", hiding the records (acknowledged
    /// tasks of a store whose ack level lay inside them); it refuses now, naming the first file and
    /// the offsets lost, and check reports every missing file.
    @Test func aMissingFirstSegmentMakesOpenRefuse() async throws {
        let dir = TemporaryDirectory()
        let bases = try await Self.makeLog(dir.log)
        for base in bases.prefix(2) {
            removeFile(segmentPath(dir.log, base))
            removeFile(segmentPath(dir.log, base, ".index"))
        }
        let error = try #require(openFailure(dir.log, smallSegmentConfiguration()))
        #expect(error.code == .missingSegment)
        #expect(error.path == segmentPath(dir.log, bases[0]))
        #expect(error.message.contains("offsets 0..<\(bases[2]) are lost"), "\(error.message)")
        // A read-only open refuses the same way.
        var readOnly = smallSegmentConfiguration()
        readOnly.access = .readOnly
        #expect(openFailure(dir.log, readOnly)?.code == .missingSegment)
        let check = try Self.verify(dir.log)
        #expect(check.problems.filter { $0.kind == "segmentMissing" && $0.severity == .damage }.count == 2)
        #expect(!check.opensCleanly)

        // Salvage accepts the loss, reports the offsets, and the log opens from the first segment left.
        let writable = try OfflineLog.open(directory: dir.log, writable: true)
        let repair = try writable.repair(.salvage, backupDirectory: nil)
        writable.close()
        #expect(repair.after.isClean, "\(repair.after.problems)")
        #expect(repair.lost.contains { $0.file == segmentPath(dir.log, bases[0]) && $0.offsets?.lowerBound == 0 }, "\(repair.lost)")
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(log.startOffset == bases[2])
        try log.close()
    }

    // MARK: Gaps left on purpose

    @Test func compactionAndRetentionGapsOpenAndCheckClean() async throws {
        let dir = TemporaryDirectory()
        let bases = try await Self.makeLog(dir.log)
        var log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        // Compaction keeps ten records of the first three sealed segments: a gap between segments follows.
        _ = try log.compactByOffset(below: bases[3]) { $0 >= bases[1] && $0 < bases[1] + 10 }
        try log.close()
        var check = try Self.verify(dir.log)
        #expect(check.isClean, "\(check.problems)")
        #expect(check.notes.contains { $0.contains("removed on purpose by compaction") }, "\(check.notes)")

        // Retention then drops the compacted segments.
        log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(try log.deleteSegments(below: bases[3]) >= 1)
        let kept = try readAll(log)
        #expect(kept.first?.offset == bases[3])
        try log.close()

        let manifest = try #require(try LogManifest.read(directory: dir.log, syscalls: SystemCalls()))
        #expect(manifest.cleanClose)
        #expect(manifest.gaps.contains { $0.reason == .retention })
        #expect(manifest.gaps.contains { $0.reason == .compaction })
        check = try Self.verify(dir.log)
        #expect(check.isClean, "\(check.problems)")
        log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(try readAll(log) == kept)
        try log.close()
    }

    // MARK: Stores made before the manifest

    @Test func aLogWithoutAManifestOpensAndGetsOneAtItsCleanClose() async throws {
        let dir = TemporaryDirectory()
        let bases = try await Self.makeLog(dir.log)
        let manifestPath = dir.log + "/" + LogManifest.fileName
        removeFile(manifestPath)
        // Even with a middle segment gone, a log that never had a manifest opens as before.
        removeFile(segmentPath(dir.log, bases[1]))
        removeFile(segmentPath(dir.log, bases[1], ".index"))
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(!fileExists(manifestPath), "open writes no manifest")
        try log.close()
        let manifest = try #require(try LogManifest.read(directory: dir.log, syscalls: SystemCalls()))
        #expect(manifest.segments.map(\.base) == bases.filter { $0 != bases[1] })
        #expect(manifest.segments.allSatisfy { $0.length != nil })
    }

    /// A manifest is rewritten when the set of segments changes, when the active segment's first
    /// batch is durable (to record its checksum, with the durable extent the same sync covered: here
    /// the whole 64 KiB segment, zero-filled), and at close; never per append.
    @Test func appendsDoNotRewriteTheManifest() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration(.sync, preallocationBytes: 1 << 20))
        let manifestPath = dir.log + "/" + LogManifest.fileName
        let empty = readFile(manifestPath)
        _ = try await log.append(payload(0))
        let recorded = try #require(try LogManifest.read(directory: dir.log, syscalls: SystemCalls()))
        #expect(recorded.segments.count == 1 && recorded.segments[0].length == nil)
        #expect(recorded.segments[0].fingerprint == LogManifest.fingerprint(ofSegment: segmentPath(dir.log, 0), syscalls: SystemCalls()))
        #expect(recorded.segments[0].fingerprint != nil)
        #expect(recorded.segments[0].extent == 64 << 10)
        let before = readFile(manifestPath)
        #expect(before != empty)
        for i in 1..<50 { _ = try await log.append(payload(i)) }
        try await log.flush()
        #expect(readFile(manifestPath) == before)
        #expect(log.segmentBaseOffsets.count == 1)
        try log.close()
        #expect(readFile(manifestPath) != before, "the clean close records the active segment's length")
    }

    /// After an unclean stop, the active segment emptied or replaced by another log's is refused
    /// (its first batch was durable and recorded), not cut as a torn tail or adopted.
    @Test func anUncleanlyStoppedActiveSegmentEmptiedOrReplacedIsRefused() async throws {
        for damage in ["emptied", "replaced"] {
            let dir = TemporaryDirectory()
            let other = TemporaryDirectory()
            let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration(.sync))
            let otherLog = try Log.open(directory: other.log, configuration: smallSegmentConfiguration(.sync))
            for i in 0..<5 {
                _ = try await log.append(payload(i))
                _ = try await otherLog.append(payload(100 + i))
            }
            log.abandon()
            try otherLog.close()
            let active = segmentPath(dir.log, 0)
            if damage == "emptied" {
                truncateFile(active, to: 0)
            } else {
                writeFile(active, readFile(segmentPath(other.log, 0)))
            }
            #expect(throws: LogError.self) { _ = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration(.sync)) }
            do {
                _ = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration(.sync))
            } catch {
                #expect(error.code == .segmentReplaced, "\(damage)")
                #expect(error.path == active, "\(damage)")
            }
        }
    }

    @Test func aDamagedManifestMakesOpenRefuseAndRepairRewritesIt() async throws {
        let dir = TemporaryDirectory()
        _ = try await Self.makeLog(dir.log, count: 1000)
        let manifestPath = dir.log + "/" + LogManifest.fileName
        flipBit(manifestPath, byte: 9)
        let error = try #require(openFailure(dir.log, smallSegmentConfiguration()))
        #expect(error.code == .corruptCheckpoint)
        #expect(error.path == manifestPath)
        #expect(try Self.verify(dir.log).problems.contains { $0.kind == "logManifestDamaged" && $0.severity == .damage })
        let repair = try Self.salvage(dir.log)
        #expect(repair.lost.isEmpty)
        #expect(repair.after.isClean, "\(repair.after.problems)")
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(try readAll(log).count == 1000)
        try log.close()
    }

    // MARK: Check agrees with open on files open cannot read

    /// The lock file was found by the damage matrix: check read the directory (a read-only open of a
    /// directory succeeds) and said "clean" while every open failed on it.
    @Test(arguments: ["clean-shutdown", "index", "lock"])
    func aFileReplacedByADirectoryIsDamageForCheckAsForOpen(file: String) async throws {
        let dir = TemporaryDirectory()
        let bases = try await Self.makeLog(dir.log, count: 1000)
        let path = file == "index" ? segmentPath(dir.log, bases[0], ".index") : dir.log + "/" + (file == "lock" ? "lock" : CheckpointFile.cleanShutdownName)
        removeFile(path)
        #expect(mkdir(path, 0o700) == 0)
        #expect(openFailure(dir.log, smallSegmentConfiguration()) != nil, "open refuses")
        let check = try Self.verify(dir.log)
        #expect(!check.opensCleanly, "\(check.problems)")
        #expect(check.problems.contains { $0.file == path && $0.severity == .damage })
    }
}
