#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// `OfflineLog.verify` (what `spool recover --mode check` runs): it finds each kind of damage, says where,
/// and never changes a byte; and opening for maintenance refuses what it must.
@Suite struct LogVerifierTests {
    @Test func aCleanlyClosedLogVerifiesClean() async throws {
        let dir = TemporaryDirectory()
        let expected = try await buildMaintenanceLog(dir.log)
        let verification = try verifyDirectory(dir.log)
        #expect(verification.problems == [])
        #expect(verification.cleanShutdown)
        #expect(verification.records == expected.count)
        #expect(verification.segments.count == segmentBases(dir.log).count)
        #expect(verification.segments.count >= 3)
        #expect(verification.bytes == segmentBases(dir.log).reduce(0) { $0 + fileSize(segmentPath(dir.log, $1)) })
    }

    @Test func aCrashedLogVerifiesClean() async throws {
        // A killed process leaves no marker and a preallocated active index: normal, not a problem.
        let dir = TemporaryDirectory()
        var configuration = smallSegmentConfiguration()
        configuration.preallocationBytes = 4096
        let log = try Log.open(directory: dir.log, configuration: configuration)
        for i in 0..<300 { _ = try await log.append(nonZeroPayload(i, size: 600)) }
        log.abandon()
        let verification = try verifyDirectory(dir.log)
        #expect(verification.problems == [])
        #expect(!verification.cleanShutdown)
        #expect(verification.records == 300)
    }

    /// An index whose name is there but cannot be opened (a symbolic link to itself: `stat` and
    /// `open` fail with ELOOP) is not "missing", which open would rebuild: open refuses the
    /// directory, so check reports it as damage too, for the active segment empty or not.
    @Test(arguments: [0, 20])
    func anIndexThatIsASymbolicLinkLoopIsUnreadableDamage(records: Int) async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration(.sync))
        for i in 0..<records { _ = try await log.append(nonZeroPayload(i, size: 100)) }
        try log.close()
        let index = segmentPath(dir.log, 0, ".index")
        #expect(unlink(index) == 0)
        #expect(symlink(index, index) == 0)

        let verification = try verifyDirectory(dir.log)
        let problem = try #require(verification.problems.first { $0.file == index })
        #expect(problem.kind == "indexUnreadable" && problem.severity == .damage)
        #expect(!verification.opensCleanly)
        #expect(throws: LogError.self) { try Log.open(directory: dir.log, configuration: smallSegmentConfiguration()) }
    }

    @Test func aCompactedLogWithGapsVerifiesClean() async throws {
        let dir = TemporaryDirectory()
        _ = try await buildMaintenanceLog(dir.log)
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        let summary = try log.compact { $0.offset % 3 == 0 }
        #expect(summary.recordsDropped > 0)
        try log.close()
        let verification = try verifyDirectory(dir.log)
        #expect(verification.problems == [])
        #expect(verification.records == 400 - summary.recordsDropped)
    }

    @Test(arguments: GeneratedDamage.allCases)
    func checkFindsTheDamageAndChangesNothing(_ damage: GeneratedDamage) async throws {
        let dir = TemporaryDirectory()
        _ = try await buildMaintenanceLog(dir.log, crash: damage.crash)
        let second = segmentPath(dir.log, segmentBases(dir.log)[1])
        let layout = batchLayout(second)
        let touched = damage.apply(to: dir.log)
        let before = snapshot(dir.log)

        let verification = try verifyDirectory(dir.log)
        // Also the inspection walk of every segment.
        let log = try OfflineLog.open(directory: dir.log)
        for segment in try log.listing().segments { try log.walkSegment(segment, decodeRecords: true) { _ in } }
        log.close()

        #expect(snapshot(dir.log) == before, "verification changed the directory")
        #expect(!verification.isClean)
        switch damage {
        case .tornTail:
            let problem = try #require(verification.problems.first { $0.kind == "tornTail" })
            #expect(problem.severity == .inconsistency)
            #expect(verification.opensCleanly)
            #expect(problem.file == segmentPath(dir.log, segmentBases(dir.log).last!))
        case .bitFlipMidSegment:
            let batch = layout[layout.count / 2]
            #expect(verification.problems.count == 1)
            let problem = try #require(verification.problems.first)
            #expect(problem.kind == "damagedBytes" && problem.severity == .damage)
            #expect(problem.file == second && problem.position == batch.position)
            #expect(problem.bytes == batch.position..<batch.end)
            #expect(problem.offsets == batch.offsets)
            #expect(!verification.opensCleanly)
        case .deletedIndex:
            #expect(verification.problems.map(\.kind) == ["indexMissing"])
            #expect(verification.problems.first?.file == segmentPath(dir.log, segmentBases(dir.log)[1], ".index"))
            #expect(verification.opensCleanly)
        case .deletedCheckpoint:
            #expect(verification.problems.map(\.kind) == ["recoveryPointMissing"])
            #expect(verification.opensCleanly)
        case .truncatedSegment:
            let batch = layout.last!
            let problem = try #require(verification.problems.first)
            #expect(verification.problems.count == 1)
            #expect(problem.kind == "damagedBytes" && problem.severity == .damage)
            #expect(problem.position == batch.position && problem.bytes == batch.position..<batch.position + 100)
            #expect(problem.offsets == batch.offsets)
        case .zeroFilledRange:
            let damaged = verification.problems.filter { $0.kind == "damagedBytes" }
            #expect(damaged.count == 1)
            let start = layout[layout.count / 2].end - 150
            let first = layout.first { $0.end > start }!
            #expect(damaged.first?.position == first.position)
            #expect(offsets(damaged.compactMap(\.offsets)) == touched)
            #expect(!verification.opensCleanly)
        }
        // A log check says opens does open. (The converse need not hold: open trusts sealed segments
        // before the recovery point, whose damage only reads find.)
        if verification.opensCleanly { #expect(openFailure(dir.log, smallSegmentConfiguration()) == nil) }
    }

    @Test func aDamagedSwapManifestIsDamage() async throws {
        let dir = TemporaryDirectory()
        _ = try await buildMaintenanceLog(dir.log)
        writeFile(dir.log + "/swap-manifest", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
        let verification = try verifyDirectory(dir.log)
        #expect(verification.problems.map(\.kind) == ["swapManifestDamaged"])
        #expect(!verification.opensCleanly)
    }

    /// A valid marker that says the data ends early, in a log without a manifest (made before
    /// manifests) that could tell it is wrong: trusted, it would make open hide the records after it
    /// and overwrite them. The bytes after the length it records are not zeros, which no clean close
    /// leaves: open ignores it and scans, and check says so as an inconsistency.
    @Test func aMarkerThatEndsBeforeTheSegmentsDataIsIgnored() async throws {
        let dir = TemporaryDirectory()
        let written = try await buildMaintenanceLog(dir.log)
        let last = segmentBases(dir.log).last!
        let size = fileSize(segmentPath(dir.log, last))
        let marker = CheckpointFile(magic: CheckpointFile.cleanShutdownMagic, fields: [399, last, UInt64(size - 100)])
        writeFile(dir.log + "/clean-shutdown", marker.encoded)
        removeFile(dir.log + "/log-manifest")
        let verification = try verifyDirectory(dir.log)
        #expect(verification.problems.map(\.kind) == ["cleanShutdownMismatch"], "\(verification.problems)")
        #expect(verification.problems.allSatisfy { $0.severity == .inconsistency })
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(!log.recovery.cleanShutdown)
        #expect(try readAll(log).map(\.payload) == written)
        try log.close()
    }

    /// With the manifest of the same clean close, whose recorded length the marker contradicts (a
    /// marker of another store, mixed up), open ignores the marker and scans: check says so, as an
    /// inconsistency, and every record reads back.
    @Test func aMarkerThatDisagreesWithTheManifestIsIgnored() async throws {
        let dir = TemporaryDirectory()
        let written = try await buildMaintenanceLog(dir.log)
        let last = segmentBases(dir.log).last!
        let size = fileSize(segmentPath(dir.log, last))
        let marker = CheckpointFile(magic: CheckpointFile.cleanShutdownMagic, fields: [399, last, UInt64(size - 100)])
        writeFile(dir.log + "/clean-shutdown", marker.encoded)
        let verification = try verifyDirectory(dir.log)
        #expect(verification.problems.map(\.kind) == ["cleanShutdownMismatch"], "\(verification.problems)")
        #expect(verification.problems.allSatisfy { $0.severity == .inconsistency })
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(!log.recovery.cleanShutdown)
        #expect(try readAll(log).count == written.count)
        try log.close()
    }

    @Test func offlineAccessAndTheLogExcludeEachOther() async throws {
        let dir = TemporaryDirectory()
        _ = try await buildMaintenanceLog(dir.log)
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        for writable in [false, true] {
            #expect { try OfflineLog.open(directory: dir.log, writable: writable) } throws: {
                ($0 as? LogError)?.code == .directoryLocked && "\($0)".contains("open by another process")
            }
        }
        try log.close()
        let reader = try OfflineLog.open(directory: dir.log)
        #expect(openFailure(dir.log, smallSegmentConfiguration())?.code == .directoryLocked)
        // Readers share the lock; a writer waits for none of them, it fails.
        let second = try OfflineLog.open(directory: dir.log)
        #expect { try OfflineLog.open(directory: dir.log, writable: true) } throws: { ($0 as? LogError)?.code == .directoryLocked }
        second.close()
        reader.close()
        #expect(openFailure(dir.log, smallSegmentConfiguration()) == nil)
    }

    @Test func missingEmptyAndForeignDirectoriesAreRefusedUntouched() throws {
        let dir = TemporaryDirectory()
        #expect { try OfflineLog.open(directory: dir.path + "/nope") } throws: { ($0 as? LogError)?.code == .logDirectoryMissing }
        #expect(!fileExists(dir.path + "/nope"))

        let empty = dir.path + "/empty"
        mkdir(empty, 0o700)
        for writable in [false, true] {
            #expect { try OfflineLog.open(directory: empty, writable: writable) } throws: { ($0 as? LogError)?.code == .emptyLogDirectory }
        }
        #expect(directoryEntries(empty) == [])

        let foreign = dir.path + "/foreign"
        mkdir(foreign, 0o700)
        writeFile(foreign + "/notes.txt", Array("hello".utf8))
        #expect { try OfflineLog.open(directory: foreign, writable: true) } throws: { ($0 as? LogError)?.code == .notALogDirectory }
        #expect(directoryEntries(foreign) == ["notes.txt"])

        writeFile(dir.path + "/file", [1])
        #expect { try OfflineLog.open(directory: dir.path + "/file") } throws: { ($0 as? LogError)?.code == .notALogDirectory }
    }

    @Test func aReadOnlyHandleNeverCreatesTheLockFile() async throws {
        let dir = TemporaryDirectory()
        _ = try await buildMaintenanceLog(dir.log)
        removeFile(dir.log + "/lock")  // as in a copied backup
        let before = snapshot(dir.log)
        _ = try verifyDirectory(dir.log)
        #expect(snapshot(dir.log) == before)
    }

    @Test func theWalkReportsEveryBatchAndRecord() async throws {
        let dir = TemporaryDirectory()
        let expected = try await buildMaintenanceLog(dir.log, perBatch: 3)
        let log = try OfflineLog.open(directory: dir.log)
        defer { log.close() }
        var records: [LogRecord] = []
        var positions: [Int] = []
        let first = try log.listing().segments[0]
        let summary = try log.walkSegment(first, decodeRecords: true) { item in
            if case .batch(let batch) = item {
                positions.append(batch.position)
                records += batch.records ?? []
            }
        }
        #expect(positions == batchLayout(first.path).map(\.position))
        #expect(records.count == summary.records)
        #expect(records == expected.prefix(summary.records).enumerated().map { LogRecord(offset: UInt64($0.offset), payload: $0.element) })
    }
}
