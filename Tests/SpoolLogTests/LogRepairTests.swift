#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// `OfflineLog.repair` (what `spool recover --mode truncate|salvage` runs): after each kind of damage the
/// log opens and returns exactly the intact records the mode keeps, the report names exactly what was
/// lost, and the backup holds the original bytes of every file changed.
@Suite struct LogRepairTests {
    @Test(arguments: GeneratedDamage.allCases)
    func salvageKeepsEveryIntactRecord(_ damage: GeneratedDamage) async throws {
        let dir = TemporaryDirectory()
        let expected = try await buildMaintenanceLog(dir.log, crash: damage.crash)
        let touched = damage.apply(to: dir.log)
        let original = snapshot(dir.log)

        let report = try repairDirectory(dir.log, .salvage, backup: dir.path + "/backup")

        #expect(report.after.problems == [], "\(report.after.problems)")
        #expect(try openAndReadAll(dir.log) == records(expected, without: touched))
        // The damaged records are reported: exactly, or as the bound between their intact neighbours.
        #expect(report.lostOffsets == [])  // salvage removes no intact batch
        if damage == .tornTail {
            #expect(report.lost.count == 1 && report.lost.first?.offsets == nil)
            #expect(report.lost.first?.firstPossibleOffset == touched.min())
        } else {
            #expect(offsets(report.lost.compactMap(\.offsets)) == touched)
        }
        #expect(report.lost.isEmpty == !damage.losesRecords)
        try expectBackup(report, holds: original, in: dir)
        try expectRebuiltIndexesMatchTheWriters(dir.log)
    }

    @Test(arguments: GeneratedDamage.allCases)
    func truncateKeepsThePrefixBeforeTheFirstDamage(_ damage: GeneratedDamage) async throws {
        let dir = TemporaryDirectory()
        let expected = try await buildMaintenanceLog(dir.log, crash: damage.crash)
        let touched = damage.apply(to: dir.log)
        let original = snapshot(dir.log)

        let report = try repairDirectory(dir.log, .truncate, backup: dir.path + "/backup")

        #expect(report.after.problems == [], "\(report.after.problems)")
        let cut = touched.min().map { Int($0) } ?? expected.count
        let kept = try openAndReadAll(dir.log)
        #expect(kept == records(Array(expected.prefix(cut)), without: []))
        // Every intact record after the cut is reported by its exact offset; the damaged ones by their bound.
        let afterCut = Set((cut..<expected.count).map(UInt64.init))
        #expect(offsets(report.lostOffsets) == afterCut.subtracting(touched))
        if damage != .tornTail {
            #expect(offsets(report.lost.compactMap(\.offsets)) == afterCut)
        }
        try expectBackup(report, holds: original, in: dir)
        // The next append continues without reusing an offset that survived.
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        let offset = try await log.append([1, 2, 3])
        #expect(offset >= UInt64(kept.last.map { $0.offset + 1 } ?? 0))
        try log.close()
    }

    @Test func aLogWithoutProblemsIsNotTouched() async throws {
        let dir = TemporaryDirectory()
        _ = try await buildMaintenanceLog(dir.log)
        let before = snapshot(dir.log)
        for mode in RepairMode.allCases {
            let report = try repairDirectory(dir.log, mode, backup: dir.path + "/backup-\(mode)")
            #expect(report.changedNothing)
            #expect(report.backupDirectory == nil && !fileExists(dir.path + "/backup-\(mode)"))
        }
        #expect(snapshot(dir.log) == before)
    }

    @Test func salvageAcrossSeveralDamagedSegments() async throws {
        let dir = TemporaryDirectory()
        let expected = try await buildMaintenanceLog(dir.log)
        var touched: Set<UInt64> = []
        for base in segmentBases(dir.log).dropLast() {
            let path = segmentPath(dir.log, base)
            let layout = batchLayout(path)
            for batch in [layout[1], layout[layout.count - 2]] {
                flipBit(path, byte: batch.position + 60)
                touched.formUnion(batch.offsets)
            }
        }
        let report = try repairDirectory(dir.log, .salvage, backup: nil)
        #expect(report.after.problems == [])
        #expect(report.backupDirectory == nil && report.backedUpFiles == [])
        #expect(offsets(report.lost.compactMap(\.offsets)) == touched)
        #expect(try openAndReadAll(dir.log) == records(expected, without: touched))
    }

    @Test func aWhollyDamagedSegmentIsDeletedAndTheRestKept() async throws {
        let dir = TemporaryDirectory()
        let expected = try await buildMaintenanceLog(dir.log)
        let bases = segmentBases(dir.log)
        let second = segmentPath(dir.log, bases[1])
        let touched = Set(batchLayout(second).flatMap { Array($0.offsets) })
        writeFile(second, [UInt8](repeating: 0xEE, count: fileSize(second)))
        let report = try repairDirectory(dir.log, .salvage, backup: nil)
        #expect(report.deletedFiles.contains(second))
        #expect(offsets(report.lost.compactMap(\.offsets)) == touched)
        #expect(try openAndReadAll(dir.log) == records(expected, without: touched))
        // A second run finds nothing left to do.
        #expect(try repairDirectory(dir.log, .salvage, backup: nil).changedNothing)
    }

    @Test func aDamagedFirstBatchOfTheOnlySegmentLeavesAnOpenableLog() async throws {
        let dir = TemporaryDirectory()
        let expected = try await buildMaintenanceLog(dir.log, count: 20)
        #expect(segmentBases(dir.log) == [0])
        flipBit(segmentPath(dir.log, 0), byte: 50)
        let report = try repairDirectory(dir.log, .truncate, backup: nil)
        #expect(offsets(report.lostOffsets) == Set(4..<20))
        #expect(report.lost.first?.offsets == nil || report.lost.first?.offsets == 0..<4)
        #expect(try openAndReadAll(dir.log) == [])
        _ = expected
    }

    @Test func aPendingSwapIsFinishedBeforeTheRepair() async throws {
        // A compaction that committed its manifest and stopped before the renames.
        let dir = TemporaryDirectory()
        let expected = try await buildMaintenanceLog(dir.log)
        let config = smallSegmentConfiguration()
        let log = try Log.open(directory: dir.log, configuration: config)
        var writer = CleanedSegmentWriter(directory: dir.log, firstBase: 0, configuration: config)
        let bases = segmentBases(dir.log)
        for record in try readAll(log) where record.offset < bases[2] && record.offset % 2 == 0 {
            try writer.append(record, timestamp: 0)
        }
        try writer.finish()
        try SegmentSwap(old: Array(bases.prefix(2)), new: writer.written.map(\.base)).commit(directory: dir.log, syscalls: SystemCalls())
        log.abandon()
        let verification = try verifyDirectory(dir.log)
        #expect(verification.problems == [] || verification.opensCleanly)
        #expect(verification.records == expected.count - Int(bases[2]) / 2)

        // Then damage a segment the swap does not touch, and salvage.
        let third = segmentPath(dir.log, bases[2])
        let batch = batchLayout(third)[2]
        flipBit(third, byte: batch.position + 70)
        let original = snapshot(dir.log)
        let report = try repairDirectory(dir.log, .salvage, backup: dir.path + "/backup")
        #expect(report.after.problems == [])
        #expect(!fileExists(dir.log + "/swap-manifest"))
        let lost = Set(batch.offsets).union(Set((0..<bases[2]).filter { $0 % 2 == 1 }))
        #expect(try openAndReadAll(dir.log) == records(expected, without: lost))
        try expectBackup(report, holds: original, in: dir)
    }

    // MARK: Helpers

    /// Every file the repair changed or deleted was copied first, byte for byte.
    private func expectBackup(_ report: RepairReport, holds original: [String: [UInt8]], in dir: TemporaryDirectory) throws {
        let touched = Set(report.changedFiles + report.deletedFiles).filter { original[name($0)] != nil }
        if touched.isEmpty { return }
        let backup = try #require(report.backupDirectory)
        #expect(backup == dir.path + "/backup")
        for path in touched {
            #expect(readFile(backup + "/" + name(path)) == original[name(path)], "backup of \(name(path))")
        }
        #expect(Set(report.backedUpFiles.map(name)).isSuperset(of: Set(touched.map(name))))
    }

    private func name(_ path: String) -> String { String(path.split(separator: "/").last!) }

    /// After a repair, the index of every sealed segment is what the writer would have written.
    private func expectRebuiltIndexesMatchTheWriters(_ directory: String) throws {
        let bases = segmentBases(directory)
        for base in bases.dropLast() {
            let layout = batchLayout(segmentPath(directory, base))
            var expected: [(UInt32, UInt32)] = []
            var next = 0
            for batch in layout where batch.position >= next {
                expected.append((UInt32(batch.header.baseOffset - base), UInt32(batch.position)))
                next = batch.position + 4096
            }
            let actual = indexEntries(segmentPath(directory, base, ".index"))
            #expect(actual.map(\.relativeOffset) == expected.map(\.0) && actual.map(\.position) == expected.map(\.1),
                    "index of segment \(base)")
        }
    }
}
