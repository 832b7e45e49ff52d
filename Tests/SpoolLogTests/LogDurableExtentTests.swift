#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// The active segment's durable extent (`log-manifest`): the log acknowledges no record beyond a
/// file length it recorded as on stable storage, so after an unclean stop the active segment cut
/// anywhere below that length is refused as damage, naming the file, instead of being cut as a
/// torn tail with the acknowledged records after the cut.
@Suite struct LogDurableExtentTests {
    /// Segments of 1 MiB zero-filled 64 KiB ahead: the extent moves several times within a segment.
    static func configuration(_ durability: Durability = .sync, syscalls: (any Syscalls)? = nil) -> LogConfiguration {
        var configuration = LogConfiguration(durability: durability)
        configuration.segmentBytes = 1 << 20
        configuration.preallocationBytes = 64 << 10
        configuration.maxRecordBytes = 4096
        configuration.compressionThresholdBytes = Int.max
        if let syscalls { configuration.syscalls = syscalls }
        return configuration
    }

    /// The extent the manifest in `directory` records for its last segment.
    static func recordedExtent(_ directory: String) throws -> UInt64? {
        try LogManifest.read(directory: directory, syscalls: SystemCalls())?.segments.last?.extent
    }

    /// A log holding `batches` acknowledged batches of 10 records of 100 bytes, abandoned as a killed
    /// process leaves it. Returns the records.
    static func abandonedLog(_ directory: String, batches: Int, durability: Durability = .sync) async throws -> [[UInt8]] {
        let log = try Log.open(directory: directory, configuration: configuration(durability))
        var written: [[UInt8]] = []
        for i in 0..<batches {
            let records = (0..<10).map { nonZeroPayload(i * 10 + $0) }
            let offsets = try await log.append(contentsOf: records)
            #expect(offsets.lowerBound == UInt64(written.count))
            written += records
        }
        if durability != .sync { try await log.flush() }
        log.abandon()
        return written
    }

    static func copyLog(from source: String, to destination: String) {
        StoreDamage.copyStore(source, to: destination)
    }

    // (a) A cut anywhere below the recorded extent is refused.

    @Test func theActiveSegmentCutBelowItsRecordedExtentIsRefusedNamingTheFile() async throws {
        let template = TemporaryDirectory()
        let written = try await Self.abandonedLog(template.log, batches: 150)
        let path = segmentPath(template.log, 0)
        let layout = batchLayout(path)
        let dataEnd = try #require(layout.last).end
        let extent = try #require(try Self.recordedExtent(template.log))
        // Every acknowledged record lies within the extent, and the extent within the file.
        #expect(extent >= UInt64(dataEnd))
        #expect(UInt64(fileSize(path)) >= extent)
        try #require(layout.count == 150 && dataEnd > 128 << 10, "the data spans several zero-fill steps")

        let cuts = [layout[0].end, layout[1].position + 7, layout[75].position, layout[75].position + 30, dataEnd - 1, dataEnd,
                    Int(extent) - 1]
        for cut in cuts {
            let copy = TemporaryDirectory()
            Self.copyLog(from: template.log, to: copy.log)
            let cutPath = segmentPath(copy.log, 0)
            truncateFile(cutPath, to: cut)

            let error = try #require(openFailure(copy.log, Self.configuration()), "cut at \(cut)")
            #expect(error.code == .segmentShortened, "cut at \(cut): \(error)")
            #expect(error.path == cutPath, "cut at \(cut)")
            #expect(error.message.contains("\(extent)") && error.message.contains("\(cut)"), "cut at \(cut): \(error)")
            #expect(error.message.contains("spool recover"), "\(error)")
            // The records after the last batch the cut left whole are named as lost (where they ended is unknown).
            let intact = layout.filter { $0.end <= cut }.count * 10
            #expect(error.message.contains("offsets from \(intact) on"), "cut at \(cut): \(error)")
            // The files are as they were: open changed nothing.
            #expect(fileSize(cutPath) == cut)

            // Check says the same, as damage naming the file.
            let offline = try OfflineLog.open(directory: copy.log)
            let check = try offline.verify()
            offline.close()
            #expect(!check.opensCleanly, "cut at \(cut)")
            #expect(check.problems.contains { $0.file == cutPath && $0.severity == .damage && $0.message.contains("\(extent)") },
                    "cut at \(cut): \(check.problems)")
        }
        _ = written
    }

    /// Salvage accepts the loss like that of a sealed segment cut short: it names the file, the log
    /// then opens and holds every record before the cut, intact.
    @Test func salvageAcceptsTheCutAndTheLogOpens() async throws {
        let dir = TemporaryDirectory()
        let written = try await Self.abandonedLog(dir.log, batches: 60)
        let path = segmentPath(dir.log, 0)
        let layout = batchLayout(path)
        let cut = layout[30].position + 50
        truncateFile(path, to: cut)
        let offline = try OfflineLog.open(directory: dir.log, writable: true)
        let repair = try offline.repair(.salvage, backupDirectory: nil)
        offline.close()
        #expect(repair.lost.contains { $0.file == path }, "\(repair.lost)")
        #expect(repair.after.isClean, "\(repair.after.problems)")

        let log = try Log.open(directory: dir.log, configuration: Self.configuration())
        let records = try readAll(log)
        #expect(records.count == 300)
        #expect(records.allSatisfy { $0.payload == written[Int($0.offset)] })
        try log.close()
    }

    /// A file cut at or beyond the extent lost nothing acknowledged: it opens with every record.
    @Test func aCutAtOrBeyondTheExtentOpensWithEveryRecord() async throws {
        let template = TemporaryDirectory()
        let written = try await Self.abandonedLog(template.log, batches: 20)
        let extent = try #require(try Self.recordedExtent(template.log))
        let size = fileSize(segmentPath(template.log, 0))
        try #require(UInt64(size) >= extent)
        for cut in Set([Int(extent), (Int(extent) + size) / 2]) {
            let copy = TemporaryDirectory()
            Self.copyLog(from: template.log, to: copy.log)
            truncateFile(segmentPath(copy.log, 0), to: cut)
            let log = try Log.open(directory: copy.log, configuration: Self.configuration())
            #expect(mismatchedRecords(log, written) == [], "cut at \(cut)")
            try log.close()
        }
    }

    // The promise in the other durability modes: whatever a completed sync covered.

    @Test(arguments: [Durability.none, .interval(milliseconds: 5)])
    func aFlushRecordsTheExtentOfWhatItSynced(durability: Durability) async throws {
        let dir = TemporaryDirectory()
        _ = try await Self.abandonedLog(dir.log, batches: 100, durability: durability)
        let dataEnd = try #require(batchLayout(segmentPath(dir.log, 0)).last).end
        let extent = try #require(try Self.recordedExtent(dir.log))
        #expect(extent >= UInt64(dataEnd), "everything flushed lies within the recorded extent")
        truncateFile(segmentPath(dir.log, 0), to: dataEnd / 2)
        #expect(openFailure(dir.log, Self.configuration(durability))?.code == .segmentShortened)
    }

    // The cost: one manifest rewrite per zero-fill step of data, not per append.

    @Test func theExtentIsRewrittenOncePerZeroFillStepNotPerAppend() async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(syscalls: faults))
        let renamesAtOpen = faults.trace.filter { $0.operation == .rename && $0.destination?.hasSuffix("/log-manifest") == true }.count
        for i in 0..<300 { _ = try await log.append(nonZeroPayload(i, size: 1000)) }
        let rewrites = faults.trace.filter { $0.operation == .rename && $0.destination?.hasSuffix("/log-manifest") == true }.count
            - renamesAtOpen
        let dataEnd = log.segmentLayout.last!.bytes
        try log.close()
        // About 300 KB of batches, zero-filled 64 KiB ahead: 5 steps (the first also records the first batch).
        #expect(rewrites >= 1)
        #expect(rewrites <= dataEnd / (64 << 10) + 2, "\(rewrites) manifest rewrites for \(dataEnd) bytes")
    }

    // (c) A manifest of the previous version (no extents) still opens.

    @Test func aManifestWithoutExtentsStillOpens() async throws {
        let dir = TemporaryDirectory()
        let written = try await Self.abandonedLog(dir.log, batches: 30)
        let current = try #require(try LogManifest.read(directory: dir.log, syscalls: SystemCalls()))
        let last = try #require(current.segments.last)
        #expect(last.extent != nil)
        // The previous version's layout: flags with bit 1 only, (base, length, fingerprint) per segment.
        var fields: [UInt64] = [LogManifest.fingerprintsFlag, UInt64(current.segments.count)]
        for entry in current.segments {
            fields += [entry.base, entry.length ?? LogManifest.unknownLength, entry.fingerprint.map { UInt64($0) } ?? LogManifest.unknownLength]
        }
        fields.append(0)
        let old = CheckpointFile(magic: LogManifest.magic, fields: fields).encoded
        let decoded = try #require(LogManifest.decode(old))
        #expect(decoded.segments.map(\.base) == current.segments.map(\.base))
        #expect(decoded.segments.allSatisfy { $0.extent == nil })
        #expect(decoded.segments.last?.fingerprint == last.fingerprint)
        writeFile(dir.log + "/" + LogManifest.fileName, old)

        // It opens as before extents, with every record, and takes appends.
        let log = try Log.open(directory: dir.log, configuration: Self.configuration())
        #expect(mismatchedRecords(log, written) == [])
        for i in 0..<5 { _ = try await log.append(nonZeroPayload(1000 + i)) }
        try log.close()
        // The next write of the manifest is the new version.
        let rewritten = readFile(dir.log + "/" + LogManifest.fileName)
        #expect(rewritten != old)
        #expect(LogManifest.decode(rewritten) != nil)
        #expect(rewritten.count > 16 && rewritten[8] & UInt8(LogManifest.extentsFlag) != 0)
    }
}
