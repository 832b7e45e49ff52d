import SpoolTestSupport
import Testing
@testable import SpoolLog

/// Opening a log is recovery: after a clean close and after a crash (``Log/abandon()``), every
/// acknowledged record reads back as written, and a torn tail is cut — and reported — without
/// touching anything before it.
@Suite struct LogRecoveryTests {
    enum Shutdown: String, CaseIterable, Sendable, CustomStringConvertible {
        case close, crash
        var description: String { rawValue }
    }

    /// Records of every kind the log must carry: empty ones, tiny ones, the largest allowed,
    /// compressible runs and incompressible bytes.
    static func record(_ i: Int) -> [UInt8] {
        switch i % 6 {
        case 0: []
        case 1: payload(i, size: i % 97)
        case 2: [UInt8](repeating: UInt8(i % 251), count: 1500)  // compresses
        case 3: payload(i, size: 4096)  // maxRecordBytes
        case 4: payload(i, size: 1)
        default: Array("record \(i) record \(i) record \(i)".utf8)
        }
    }

    @Test(arguments: [Durability.sync, .interval(milliseconds: 2), .none], Shutdown.allCases)
    func everyRecordReadsBackAfterReopen(durability: Durability, shutdown: Shutdown) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(durability, preallocationBytes: 16 << 10, compressionThresholdBytes: 256)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        #expect(log.recovery.segments == 1)
        var written: [[UInt8]] = []
        for i in 0..<300 {
            let record = Self.record(i)
            #expect(try await log.append(record) == UInt64(written.count))
            written.append(record)
            if i % 50 == 49 {
                // A multi-record batch mixing empty, compressible and random records.
                let group = [[], Self.record(2), payload(i, size: 300), [], Self.record(3)]
                let range = try await log.append(contentsOf: group)
                #expect(range == UInt64(written.count)..<UInt64(written.count + group.count))
                written += group
            }
        }
        let segments = log.segmentBaseOffsets
        #expect(segments.count >= 4, "the records should span several segments")
        #expect(mismatchedRecords(log, written) == [])
        let compressedBatches = segments.flatMap { batchLayout(segmentPath(dir.log, $0)) }.filter(\.header.isCompressed)
        #expect(!compressedBatches.isEmpty, "some batches should be stored compressed")

        switch shutdown {
        case .close: try log.close()
        case .crash: log.abandon()
        }
        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(reopened.recovery.cleanShutdown == (shutdown == .close))
        #expect(reopened.recovery.truncatedBytes == 0)
        #expect(reopened.recovery.truncatedSegment == nil)
        #expect(reopened.recovery.segments == segments.count)
        #expect(reopened.segmentBaseOffsets == segments)
        #expect(mismatchedRecords(reopened, written) == [])
        #expect(try await reopened.append(payload(7, size: 70)) == UInt64(written.count))
        written.append(payload(7, size: 70))
        #expect(mismatchedRecords(reopened, written) == [])
        try reopened.close()

        let third = try Log.open(directory: dir.log, configuration: configuration)
        #expect(third.recovery.cleanShutdown)
        #expect(mismatchedRecords(third, written) == [])
        try third.close()
    }

    /// Crash, reopen, append, crash again: nothing acknowledged in any round is lost.
    @Test func repeatedCrashesLoseNothing() async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync, preallocationBytes: 8 << 10)
        var written: [[UInt8]] = []
        for round in 0..<12 {
            let log = try Log.open(directory: dir.log, configuration: configuration)
            #expect(!log.recovery.cleanShutdown || round == 0)
            #expect(log.recovery.truncatedBytes == 0)
            #expect(log.endOffset == UInt64(written.count))
            for i in 0..<40 {
                let record = payload(round * 100 + i, size: (round * 37 + i * 13) % 900)
                #expect(try await log.append(record) == UInt64(written.count))
                written.append(record)
            }
            log.abandon()
        }
        let log = try Log.open(directory: dir.log, configuration: configuration)
        #expect(log.segmentBaseOffsets.count > 1)
        #expect(mismatchedRecords(log, written) == [])
        try log.close()
    }

    // MARK: Torn tails

    enum LastBatch: String, CaseIterable, Sendable, CustomStringConvertible {
        case oneRecord, fourRecords
        var description: String { rawValue }
        var records: [[UInt8]] {
            switch self {
            case .oneRecord: [nonZeroPayload(900, size: 200)]
            case .fourRecords: (0..<4).map { nonZeroPayload(901 + $0, size: 40) }
            }
        }
    }

    /// A crash image: a log of `earlier` records in one segment, then `lastBatch` as one batch,
    /// abandoned. Returns the records before the last batch.
    static func writeCrashImage(_ dir: String, _ configuration: LogConfiguration, lastBatch: [[UInt8]]) async throws -> [[UInt8]] {
        let log = try Log.open(directory: dir, configuration: configuration)
        var written: [[UInt8]] = []
        for i in 0..<12 {
            let record = payload(i, size: i * 3)
            #expect(try await log.append(record) == UInt64(i))
            written.append(record)
        }
        let range = try await log.append(contentsOf: lastBatch)
        #expect(range == 12..<UInt64(12 + lastBatch.count))
        log.abandon()
        return written
    }

    /// The number of bytes of `bytes` up to and including the last non-zero one: what recovery
    /// reports as cut (zero fill is not counted).
    static func nonZeroLength(_ bytes: ArraySlice<UInt8>) -> Int {
        bytes.lastIndex { $0 != 0 }.map { $0 + 1 - bytes.startIndex } ?? 0
    }

    /// Checks a log reopened over a torn last batch that began at byte `tornPosition` (offset 12):
    /// everything before it intact, the batch gone, and appends continuing at its offset.
    static func expectCutAtLastBatch(_ log: Log, earlier: [[UInt8]], tornPosition: Int, cutBytes: Int, logPath: String,
                                     sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let report = log.recovery
        #expect(!report.cleanShutdown, sourceLocation: sourceLocation)
        if cutBytes == 0 {
            #expect(report.truncatedSegment == nil, sourceLocation: sourceLocation)
            #expect(report.truncatedPosition == nil, sourceLocation: sourceLocation)
        } else {
            #expect(report.truncatedSegment == logPath, sourceLocation: sourceLocation)
            #expect(report.truncatedPosition == tornPosition, sourceLocation: sourceLocation)
        }
        #expect(report.truncatedBytes == cutBytes, sourceLocation: sourceLocation)
        #expect(log.endOffset == 12, sourceLocation: sourceLocation)
        #expect(mismatchedRecords(log, earlier) == [], sourceLocation: sourceLocation)
        let error = #expect(throws: LogError.self, sourceLocation: sourceLocation) { try log.read(at: 12) }
        #expect(error?.code == .offsetOutOfRange, sourceLocation: sourceLocation)
        // The next append takes the torn batch's offset and place.
        let next = nonZeroPayload(5000, size: 33)
        #expect(try await log.append(next) == 12, sourceLocation: sourceLocation)
        #expect(try log.read(at: 12) == next, sourceLocation: sourceLocation)
        #expect(batchLayout(logPath).last?.position == tornPosition, sourceLocation: sourceLocation)
    }

    /// The process died while the last batch was being written, at every possible byte: the file
    /// ends anywhere inside the batch.
    @Test(arguments: LastBatch.allCases)
    func tornTailAtEveryByteOfTheLastBatch(lastBatch: LastBatch) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.none, preallocationBytes: 0)
        let earlier = try await Self.writeCrashImage(dir.log, configuration, lastBatch: lastBatch.records)
        let logPath = segmentPath(dir.log, 0)
        let indexPath = segmentPath(dir.log, 0, ".index")
        let image = readFile(logPath)
        let indexImage = readFile(indexPath)
        let layout = batchLayout(logPath)
        let last = try #require(layout.last)
        #expect(layout.count == 13)
        #expect(last.offsets == 12..<UInt64(12 + lastBatch.records.count))
        #expect(last.end == image.count, "without preallocation the file ends with the last batch")

        for length in last.position..<last.end {
            writeFile(logPath, Array(image[..<length]))
            writeFile(indexPath, indexImage)
            let log = try Log.open(directory: dir.log, configuration: configuration)
            #expect(fileSize(logPath) == last.position, "cut at \(length)")
            try await Self.expectCutAtLastBatch(log, earlier: earlier, tornPosition: last.position,
                                                cutBytes: Self.nonZeroLength(image[last.position..<length]), logPath: logPath)
            log.abandon()
        }
    }

    /// With preallocation the segment is zero-filled past its data: a torn batch is a prefix of the
    /// batch followed by zeros, at every possible byte.
    @Test(arguments: LastBatch.allCases)
    func tornTailFollowedByZeroFillAtEveryByte(lastBatch: LastBatch) async throws {
        let dir = TemporaryDirectory()
        var configuration = smallSegmentConfiguration(.none, preallocationBytes: 16 << 10)
        configuration.segmentBytes = 1 << 20
        let earlier = try await Self.writeCrashImage(dir.log, configuration, lastBatch: lastBatch.records)
        let logPath = segmentPath(dir.log, 0)
        let indexPath = segmentPath(dir.log, 0, ".index")
        let image = readFile(logPath)
        let indexImage = readFile(indexPath)
        let last = try #require(batchLayout(logPath).last)
        #expect(last.offsets.lowerBound == 12)
        #expect(image.count >= last.end + 8 << 10, "the segment should be zero-filled past its data")
        #expect(image[last.end...].allSatisfy { $0 == 0 })

        for zeroFrom in last.position..<last.end {
            var damaged = image
            for i in zeroFrom..<last.end { damaged[i] = 0 }
            writeFile(logPath, damaged)
            writeFile(indexPath, indexImage)
            let log = try Log.open(directory: dir.log, configuration: configuration)
            // A batch zeroed from its first byte was never begun: a clean end, nothing to cut.
            try await Self.expectCutAtLastBatch(log, earlier: earlier, tornPosition: last.position,
                                                cutBytes: Self.nonZeroLength(damaged[last.position..<last.end]), logPath: logPath)
            log.abandon()
        }
    }

    /// Several segments: a torn tail of the last one is cut; the sealed ones are neither touched
    /// nor scanned (recovery starts at the recovery point, the start of the active segment).
    @Test(arguments: [1, RecordBatchHeader.size - 1, RecordBatchHeader.size, RecordBatchHeader.size + 1, -1])
    func tornTailOfTheLastOfSeveralSegments(cut: Int) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync, preallocationBytes: 4 << 10)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [[UInt8]] = []
        while log.segmentBaseOffsets.count < 4 || batchLayout(segmentPath(dir.log, log.segmentBaseOffsets.last!)).count < 3 {
            let record = nonZeroPayload(written.count, size: 700 + written.count % 300)
            #expect(try await log.append(record) == UInt64(written.count))
            written.append(record)
        }
        let bases = log.segmentBaseOffsets
        log.abandon()
        let sealedImages = bases.dropLast().map { readFile(segmentPath(dir.log, $0)) }
        let activePath = segmentPath(dir.log, bases.last!)
        let layout = batchLayout(activePath)
        let last = try #require(layout.last)
        let length = cut > 0 ? last.position + cut : last.end + cut
        let activeImage = readFile(activePath)
        // The batch torn at `length`: its bytes from there on never reached the disk, which still
        // holds the zero fill there (a crash does not shorten the file below the durable extent
        // the manifest records; a cut file is refused, `LogDurableExtentTests`).
        overwrite(activePath, at: length, with: [UInt8](repeating: 0, count: activeImage.count - length))

        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(reopened.recovery.truncatedSegment == activePath)
        #expect(reopened.recovery.truncatedPosition == last.position)
        #expect(reopened.recovery.truncatedBytes == Self.nonZeroLength(activeImage[last.position..<length]))
        #expect(reopened.recovery.scannedBytes == last.position, "only the active segment is scanned")
        #expect(reopened.segmentBaseOffsets == bases)
        #expect(mismatchedRecords(reopened, Array(written.dropLast())) == [])
        #expect(bases.dropLast().map { readFile(segmentPath(dir.log, $0)) } == sealedImages)
        #expect(try await reopened.append([1, 2, 3]) == UInt64(written.count - 1))
        try reopened.close()
    }

    /// The torn batch was the only one of a segment that had just been rolled to: the segment is
    /// left empty and the next append goes into it.
    @Test func tornFirstBatchOfANewSegmentLeavesItEmpty() async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [[UInt8]] = []
        while log.segmentBaseOffsets.count < 2 {
            let record = nonZeroPayload(written.count, size: 2000)
            #expect(try await log.append(record) == UInt64(written.count))
            written.append(record)
        }
        let bases = log.segmentBaseOffsets
        log.abandon()
        let activePath = segmentPath(dir.log, bases[1])
        #expect(batchLayout(activePath).count == 1)
        truncateFile(activePath, to: 1000)
        // A batch a crash tears was never acknowledged, so the manifest never recorded its
        // checksum, nor a durable extent covering it (this one was acknowledged: the test forgets
        // both as the crash would have; with them, open refuses the cut,
        // `anUncleanlyStoppedActiveSegmentEmptiedOrReplacedIsRefused`, `LogDurableExtentTests`).
        var manifest = try #require(try LogManifest.read(directory: dir.log, syscalls: SystemCalls()))
        #expect(manifest.segments.last?.fingerprint != nil)
        #expect(manifest.segments.last?.extent != nil)
        manifest.segments[manifest.segments.count - 1].fingerprint = nil
        manifest.segments[manifest.segments.count - 1].extent = nil
        try manifest.write(directory: dir.log, syscalls: SystemCalls())

        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(reopened.recovery.truncatedSegment == activePath)
        #expect(reopened.recovery.truncatedPosition == 0)
        #expect(reopened.recovery.truncatedBytes == 1000)
        #expect(reopened.segmentBaseOffsets == bases)
        #expect(reopened.endOffset == bases[1])
        #expect(fileSize(activePath) == 0)
        #expect(mismatchedRecords(reopened, Array(written.dropLast())) == [])
        let record = nonZeroPayload(77, size: 2000)
        #expect(try await reopened.append(record) == bases[1])
        #expect(reopened.segmentBaseOffsets == bases, "an empty active segment takes the append")
        #expect(try reopened.read(at: bases[1]) == record)
        try reopened.close()
    }

    /// A crash right after a roll created the new segment but before anything was written to it
    /// (with the recovery point written or not yet): the empty segment is kept as the active one.
    @Test(arguments: [false, true]) func crashRightAfterARoll(recoveryPointMoved: Bool) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [[UInt8]] = []
        for i in 0..<20 {
            written.append(payload(i, size: 500))
            _ = try await log.append(written[i])
        }
        log.abandon()
        // What roll() leaves: the old segment trimmed, a new empty segment and index.
        writeFile(segmentPath(dir.log, 20), [])
        writeFile(segmentPath(dir.log, 20, ".index"), [])
        if recoveryPointMoved {
            let point = CheckpointFile(magic: CheckpointFile.recoveryPointMagic, fields: [20])
            writeFile(dir.log + "/" + CheckpointFile.recoveryPointName, point.encoded)
        }
        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(reopened.segmentBaseOffsets == [0, 20])
        #expect(reopened.recovery.truncatedBytes == 0)
        #expect(mismatchedRecords(reopened, written) == [])
        #expect(try await reopened.append([9]) == 20)
        #expect(try reopened.read(at: 20) == [9])
        #expect(try reopened.read(from: 19, maxRecords: 5).map(\.offset) == [19], "a read stops at the end of its segment")
        try reopened.close()
    }

    // MARK: Checkpoint files

    /// A log of several segments left by a crash; returns the records and the segment bases.
    static func crashedLogOfSeveralSegments(_ dir: String, _ configuration: LogConfiguration) async throws -> ([[UInt8]], [UInt64]) {
        let log = try Log.open(directory: dir, configuration: configuration)
        var written: [[UInt8]] = []
        while log.segmentBaseOffsets.count < 4 {
            let record = payload(written.count, size: 600 + written.count % 400)
            #expect(try await log.append(record) == UInt64(written.count))
            written.append(record)
        }
        let bases = log.segmentBaseOffsets
        log.abandon()
        return (written, bases)
    }

    enum RecoveryPointDamage: String, CaseIterable, Sendable, CustomStringConvertible {
        case missing, garbage, wrongMagic, truncated, beforeTheFirstSegment
        var description: String { rawValue }
    }

    /// Without a usable recovery point the whole log is scanned; nothing is lost either way.
    @Test(arguments: RecoveryPointDamage.allCases)
    func unusableRecoveryPointMeansAFullScan(damage: RecoveryPointDamage) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.none, preallocationBytes: 4 << 10)
        let (written, bases) = try await Self.crashedLogOfSeveralSegments(dir.log, configuration)
        let path = dir.log + "/" + CheckpointFile.recoveryPointName
        let valid = readFile(path)
        #expect(CheckpointFile.decode(valid, magic: CheckpointFile.recoveryPointMagic, fieldCount: 1)?.fields == [bases.last!])
        switch damage {
        case .missing: removeFile(path)
        case .garbage: writeFile(path, payload(1, size: valid.count))
        case .wrongMagic: writeFile(path, CheckpointFile(magic: CheckpointFile.cleanShutdownMagic, fields: [bases.last!]).encoded)
        case .truncated: writeFile(path, Array(valid.dropLast()))
        case .beforeTheFirstSegment:
            // A log whose first segments were deleted by retention long after the point was written.
            // Retention rewrites the manifest before it deletes (a listed segment that is missing is
            // damage, `LogManifestTests.aMissingFirstSegmentMakesOpenRefuse`), so do the same here.
            var manifest = try #require(try LogManifest.read(directory: dir.log, syscalls: SystemCalls()))
            manifest.segments.removeAll { $0.base < bases[1] }
            manifest.record(0..<bases[1], .retention)
            try manifest.write(directory: dir.log, syscalls: SystemCalls())
            for base in bases.prefix(1) {
                removeFile(segmentPath(dir.log, base))
                removeFile(segmentPath(dir.log, base, ".index"))
            }
            writeFile(path, CheckpointFile(magic: CheckpointFile.recoveryPointMagic, fields: [0]).encoded)
        }
        let remaining = bases.filter { fileExists(segmentPath(dir.log, $0)) }
        let dataBytes = remaining.reduce(0) { total, base in total + (batchLayout(segmentPath(dir.log, base)).last?.end ?? 0) }

        let log = try Log.open(directory: dir.log, configuration: configuration)
        #expect(!log.recovery.cleanShutdown)
        #expect(log.recovery.scannedBytes == dataBytes, "every segment is scanned")
        #expect(log.recovery.truncatedBytes == 0)
        if damage == .beforeTheFirstSegment {
            #expect(log.startOffset == bases[1])
            #expect(try readAll(log).map(\.payload) == Array(written[Int(bases[1])...]))
        } else {
            #expect(mismatchedRecords(log, written) == [])
        }
        try log.close()
    }

    /// A clean-shutdown marker that is damaged (or names another segment) is not trusted: the log
    /// is scanned as after a crash, and nothing is lost.
    @Test(arguments: ["garbage", "truncated", "otherSegment", "sizePastTheFile"])
    func unusableCleanShutdownMarkerMeansAScan(damage: String) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync, preallocationBytes: 0)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        var written: [[UInt8]] = []
        while log.segmentBaseOffsets.count < 3 {
            let record = payload(written.count, size: 1500)
            _ = try await log.append(record)
            written.append(record)
        }
        let bases = log.segmentBaseOffsets
        try log.close()
        let path = dir.log + "/" + CheckpointFile.cleanShutdownName
        let valid = readFile(path)
        let marker = try #require(CheckpointFile.decode(valid, magic: CheckpointFile.cleanShutdownMagic, fieldCount: 3))
        #expect(marker.fields[0] == UInt64(written.count))
        #expect(marker.fields[1] == bases.last!)
        switch damage {
        case "garbage": writeFile(path, payload(3, size: valid.count))
        case "truncated": writeFile(path, Array(valid.prefix(valid.count - 4)))
        case "otherSegment":
            writeFile(path, CheckpointFile(magic: CheckpointFile.cleanShutdownMagic, fields: [marker.fields[0], bases[0], marker.fields[2]]).encoded)
        default:
            writeFile(path, CheckpointFile(magic: CheckpointFile.cleanShutdownMagic,
                                           fields: [marker.fields[0], marker.fields[1], marker.fields[2] + 1]).encoded)
        }
        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(!reopened.recovery.cleanShutdown)
        #expect(reopened.recovery.scannedBytes > 0)
        #expect(reopened.recovery.truncatedBytes == 0)
        #expect(!fileExists(path), "the marker is consumed by open")
        #expect(mismatchedRecords(reopened, written) == [])
        try reopened.close()
    }

    /// Opening consumes the marker before accepting writes, so a crash after a clean open still
    /// leads to a scan that finds the records appended since.
    @Test func crashAfterACleanReopenIsRecovered() async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync, preallocationBytes: 8 << 10)
        var written = (0..<50).map { payload($0, size: 300) }
        let log = try Log.open(directory: dir.log, configuration: configuration)
        for record in written { _ = try await log.append(record) }
        try log.close()

        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(reopened.recovery.cleanShutdown)
        #expect(reopened.recovery.scannedBytes == 0, "a clean open scans nothing")
        #expect(!fileExists(dir.log + "/" + CheckpointFile.cleanShutdownName))
        for i in 50..<120 {
            written.append(payload(i, size: 300))
            #expect(try await reopened.append(written[i]) == UInt64(i))
        }
        reopened.abandon()

        let recovered = try Log.open(directory: dir.log, configuration: configuration)
        #expect(!recovered.recovery.cleanShutdown)
        #expect(recovered.recovery.truncatedBytes == 0)
        #expect(mismatchedRecords(recovered, written) == [])
        try recovered.close()
    }
}
