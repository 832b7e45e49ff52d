import SpoolTestSupport
import Testing
@testable import SpoolLog

/// Damage that is not a torn tail — a bad batch with a valid batch after it, or anything wrong in
/// a sealed segment — is never repaired silently: open throws ``LogError/Code/corruptBatch``
/// naming the file and the byte position of the damaged batch, and a read never returns damaged
/// bytes.
@Suite struct LogCorruptionTests {
    /// A crashed single-segment log of 10 batches, the middle one (`middle`) compressed when
    /// `compressedMiddle`. Returns the records and the segment's batches.
    static func crashedLog(_ dir: String, _ configuration: LogConfiguration,
                           compressedMiddle: Bool = false) async throws -> (records: [[UInt8]], layout: [BatchLocation]) {
        let log = try Log.open(directory: dir, configuration: configuration)
        var written: [[UInt8]] = []
        for i in 0..<10 {
            let record = compressedMiddle && i == middle ? [UInt8](repeating: 0x41, count: 2000) : payload(i, size: 60 + i)
            #expect(try await log.append(record) == UInt64(i))
            written.append(record)
        }
        log.abandon()
        let layout = batchLayout(segmentPath(dir, 0))
        #expect(layout.count == 10)
        #expect(layout[middle].header.isCompressed == compressedMiddle)
        return (written, layout)
    }

    static let middle = 5

    /// Checks that opening throws corruptBatch for the batch at `position` of `path`. Returns
    /// false when open did not fail (then it may have repaired the damage away: stop there).
    @discardableResult
    static func expectCorruptBatchOnOpen(_ dir: String, _ configuration: LogConfiguration, path: String, position: Int,
                                         _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let error = openFailure(dir, configuration)
        #expect(error?.code == .corruptBatch, comment, sourceLocation: sourceLocation)
        #expect(error?.path == path, comment, sourceLocation: sourceLocation)
        #expect(error?.offset == UInt64(position), comment, sourceLocation: sourceLocation)
        #expect(error?.message.contains("spool recover") == true, comment, sourceLocation: sourceLocation)
        return error != nil
    }

    /// Every single bit flip in the header of a batch that has valid batches after it is reported
    /// at that batch — and a failed open changes nothing: undoing the flip gives the whole log back.
    @Test(arguments: [0, 4 << 10]) func bitFlipInAMiddleBatchHeaderIsReported(preallocationBytes: Int) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync, preallocationBytes: preallocationBytes)
        let (written, layout) = try await Self.crashedLog(dir.log, configuration)
        let path = segmentPath(dir.log, 0)
        let batch = layout[Self.middle]
        for byte in 0..<RecordBatchHeader.size {
            for bit in 0..<8 {
                flipBit(path, byte: batch.position + byte, bit: bit)
                guard Self.expectCorruptBatchOnOpen(dir.log, configuration, path: path, position: batch.position,
                                                    "byte \(byte) bit \(bit)") else { return }
                flipBit(path, byte: batch.position + byte, bit: bit)
            }
        }
        let log = try Log.open(directory: dir.log, configuration: configuration)
        #expect(log.recovery.truncatedBytes == 0)
        #expect(mismatchedRecords(log, written) == [])
        try log.close()
    }

    @Test func bitFlipInAMiddleBatchPayloadIsReported() async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync)
        let (written, layout) = try await Self.crashedLog(dir.log, configuration)
        let path = segmentPath(dir.log, 0)
        let batch = layout[Self.middle]
        for byte in [batch.position + RecordBatchHeader.size, batch.position + RecordBatchHeader.size + 4,
                     (batch.position + batch.end) / 2, batch.end - 1] {
            for bit in [0, 3, 7] {
                flipBit(path, byte: byte, bit: bit)
                guard Self.expectCorruptBatchOnOpen(dir.log, configuration, path: path, position: batch.position,
                                                    "byte \(byte) bit \(bit)") else { return }
                flipBit(path, byte: byte, bit: bit)
            }
        }
        let log = try Log.open(directory: dir.log, configuration: configuration)
        #expect(mismatchedRecords(log, written) == [])
        try log.close()
    }

    /// A damaged length field makes the batch appear to end somewhere else (past the file, inside
    /// the next batch): still reported at the damaged batch, not taken for a torn tail.
    @Test func bitFlipInTheLengthFieldsOfACompressedMiddleBatchIsReported() async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync, compressionThresholdBytes: 256)
        let (written, layout) = try await Self.crashedLog(dir.log, configuration, compressedMiddle: true)
        let path = segmentPath(dir.log, 0)
        let batch = layout[Self.middle]
        // Bytes 28..<32: stored length (a compressed batch's header still parses with it changed); 32..<36: raw length.
        for byte in 28..<36 {
            for bit in 0..<8 {
                flipBit(path, byte: batch.position + byte, bit: bit)
                guard Self.expectCorruptBatchOnOpen(dir.log, configuration, path: path, position: batch.position,
                                                    "byte \(byte) bit \(bit)") else { return }
                flipBit(path, byte: batch.position + byte, bit: bit)
            }
        }
        // The stored length grown to swallow exactly the next batch.
        var stored = batch.header.storedLength + UInt32(layout[Self.middle + 1].header.totalLength)
        overwrite(path, at: batch.position + 28, with: withUnsafeBytes(of: &stored) { Array($0) })
        Self.expectCorruptBatchOnOpen(dir.log, configuration, path: path, position: batch.position)
        overwrite(path, at: batch.position + 28, with: withUnsafeBytes(of: batch.header.storedLength.littleEndian) { Array($0) })

        let log = try Log.open(directory: dir.log, configuration: configuration)
        #expect(mismatchedRecords(log, written) == [])
        try log.close()
    }

    /// Zeros in the middle of the last segment (a lost block) are not its clean end when valid
    /// batches follow.
    @Test func zeroedMiddleBatchIsReported() async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.sync)
        let (_, layout) = try await Self.crashedLog(dir.log, configuration)
        let path = segmentPath(dir.log, 0)
        let batch = layout[Self.middle]
        overwrite(path, at: batch.position, with: [UInt8](repeating: 0, count: batch.header.totalLength))
        Self.expectCorruptBatchOnOpen(dir.log, configuration, path: path, position: batch.position)
    }

    // MARK: Sealed segments

    enum SealedDamage: String, CaseIterable, Sendable, CustomStringConvertible {
        /// A payload bit of a batch in the middle of the segment.
        case middleBatchBitFlip
        /// A payload bit of the segment's last batch: in a sealed segment that is not a torn tail.
        case lastBatchBitFlip
        /// The segment cut inside its last batch.
        case truncatedInsideLastBatch
        /// Zeros after the segment's last batch.
        case zeroTail
        var description: String { rawValue }
    }

    /// A crashed log of four segments; returns the records, the bases and the first segment's batches.
    static func crashedLogOfFourSegments(_ dir: String, _ configuration: LogConfiguration) async throws -> ([[UInt8]], [UInt64], [BatchLocation]) {
        let log = try Log.open(directory: dir, configuration: configuration)
        var written: [[UInt8]] = []
        while log.segmentBaseOffsets.count < 4 {
            let record = payload(written.count, size: 900)
            #expect(try await log.append(record) == UInt64(written.count))
            written.append(record)
        }
        let bases = log.segmentBaseOffsets
        log.abandon()
        let layout = batchLayout(segmentPath(dir, bases[0]))
        #expect(layout.last?.end == fileSize(segmentPath(dir, bases[0])), "a sealed segment ends with its last batch")
        return (written, bases, layout)
    }

    /// Returns the byte position the damage should be reported at.
    static func damage(_ kind: SealedDamage, _ path: String, _ layout: [BatchLocation]) -> Int {
        switch kind {
        case .middleBatchBitFlip:
            let batch = layout[layout.count / 2]
            flipBit(path, byte: batch.position + RecordBatchHeader.size + 10, bit: 2)
            return batch.position
        case .lastBatchBitFlip:
            let batch = layout[layout.count - 1]
            flipBit(path, byte: batch.end - 1, bit: 6)
            return batch.position
        case .truncatedInsideLastBatch:
            let batch = layout[layout.count - 1]
            truncateFile(path, to: batch.position + 100)
            return batch.position
        case .zeroTail:
            let end = layout[layout.count - 1].end
            truncateFile(path, to: end + 4096)
            return end
        }
    }

    /// With no recovery point every segment is scanned: damage in a sealed one is reported,
    /// never cut, even where it would look like a torn tail in the active segment.
    @Test(arguments: SealedDamage.allCases)
    func damageInASealedSegmentIsReportedByAFullScan(kind: SealedDamage) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.none, preallocationBytes: 8 << 10)
        let (_, bases, layout) = try await Self.crashedLogOfFourSegments(dir.log, configuration)
        let path = segmentPath(dir.log, bases[0])
        let sizeBefore = fileSize(path)
        let position = Self.damage(kind, path, layout)
        let sizeDamaged = fileSize(path)
        removeFile(dir.log + "/" + CheckpointFile.recoveryPointName)
        Self.expectCorruptBatchOnOpen(dir.log, configuration, path: path, position: position)
        #expect(fileSize(path) == sizeDamaged, "the damaged segment is left for `spool recover`")
        #expect(kind == .truncatedInsideLastBatch || kind == .zeroTail || fileSize(path) == sizeBefore)
    }

    /// A sealed segment whose index has to be rebuilt is scanned for that: damage found then is
    /// reported too.
    @Test(arguments: SealedDamage.allCases)
    func damageInASealedSegmentIsReportedWhenItsIndexIsRebuilt(kind: SealedDamage) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(.none, preallocationBytes: 8 << 10)
        let (_, bases, _) = try await Self.crashedLogOfFourSegments(dir.log, configuration)
        let path = segmentPath(dir.log, bases[1])
        let position = Self.damage(kind, path, batchLayout(path))
        removeFile(segmentPath(dir.log, bases[1], ".index"))
        Self.expectCorruptBatchOnOpen(dir.log, configuration, path: path, position: position)
    }

    // MARK: The read path

    /// A log of four segments, closed cleanly and reopened (so nothing was scanned).
    static func cleanlyReopenedLog(_ dir: String, _ configuration: LogConfiguration) async throws -> (Log, [[UInt8]]) {
        let log = try Log.open(directory: dir, configuration: configuration)
        var written: [[UInt8]] = []
        while log.segmentBaseOffsets.count < 4 || batchLayout(segmentPath(dir, log.segmentBaseOffsets.last!)).count < 4 {
            let record = payload(written.count, size: 300 + written.count % 500)
            #expect(try await log.append(record) == UInt64(written.count))
            written.append(record)
        }
        try log.close()
        let reopened = try Log.open(directory: dir, configuration: configuration)
        #expect(reopened.recovery.cleanShutdown)
        #expect(reopened.recovery.scannedBytes == 0)
        return (reopened, written)
    }

    /// Checks that every way of reading `batch` throws corruptBatch for it, and that no read returns
    /// anything but the bytes written: records before the batch and in other segments read back;
    /// records after it in its segment read back or throw corruptBatch for it (the walk from an
    /// index entry to them crosses the damaged batch).
    static func expectReadsRefuse(_ log: Log, _ batch: BatchLocation, path: String, _ written: [[UInt8]],
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        func check(_ error: LogError?, _ what: String) {
            #expect(error?.code == .corruptBatch, "\(what)", sourceLocation: sourceLocation)
            #expect(error?.path == path, "\(what)", sourceLocation: sourceLocation)
            #expect(error?.offset == UInt64(batch.position), "\(what)", sourceLocation: sourceLocation)
            #expect(error?.message.contains("spool recover") == true, "\(what)", sourceLocation: sourceLocation)
        }
        for offset in batch.offsets {
            check(#expect(throws: LogError.self, sourceLocation: sourceLocation) { _ = try log.read(at: offset) }, "read(at: \(offset))")
        }
        check(#expect(throws: LogError.self, sourceLocation: sourceLocation) {
            _ = try log.read(from: batch.offsets.lowerBound - 1, maxRecords: 5)
        }, "read(from:)")
        // A reader returns records before the damaged batch, then throws. (It fetches records in
        // chunks, so it may stop before the damaged batch's segment.)
        var reader = log.reader(from: 0)
        var read: [[UInt8]] = []
        check(#expect(throws: LogError.self, sourceLocation: sourceLocation) {
            while let record = try reader.next() { read.append(record.payload) }
        }, "reader")
        #expect(read.count <= Int(batch.offsets.lowerBound), sourceLocation: sourceLocation)
        #expect(read == Array(written.prefix(read.count)), sourceLocation: sourceLocation)

        let segmentEnd = log.segmentBaseOffsets.first { $0 > batch.offsets.lowerBound } ?? UInt64(written.count)
        var wrong: [String] = []
        for offset in 0..<UInt64(written.count) where !batch.offsets.contains(offset) {
            do {
                if try log.read(at: offset) != written[Int(offset)] { wrong.append("\(offset): other bytes") }
            } catch {
                let refusable = offset >= batch.offsets.upperBound && offset < segmentEnd
                if !refusable || error.code != .corruptBatch || error.offset != UInt64(batch.position) {
                    wrong.append("\(offset): \(error)")
                }
            }
        }
        #expect(wrong == [], "records outside the damaged batch", sourceLocation: sourceLocation)
    }

    /// A payload bit flipped under a cleanly opened log (sealed segments are read through a shared
    /// mapping, so the reader sees the damaged page): reads throw instead of returning it.
    @Test func readOfADamagedSealedBatchThrows() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.cleanlyReopenedLog(dir.log, smallSegmentConfiguration(.sync))
        let bases = log.segmentBaseOffsets
        let path = segmentPath(dir.log, bases[1])
        let layout = batchLayout(path)
        let batch = layout[layout.count / 2]
        flipBit(path, byte: batch.position + RecordBatchHeader.size + 7, bit: 5)
        Self.expectReadsRefuse(log, batch, path: path, written)
        try log.close()
    }

    /// The same for the active segment, which is read with `pread`.
    @Test func readOfADamagedActiveBatchThrows() async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.cleanlyReopenedLog(dir.log, smallSegmentConfiguration(.sync))
        let path = segmentPath(dir.log, log.segmentBaseOffsets.last!)
        let layout = batchLayout(path)
        let batch = layout[layout.count - 2]
        flipBit(path, byte: batch.end - 1, bit: 0)
        Self.expectReadsRefuse(log, batch, path: path, written)
        try log.close()
    }

    /// Damaged header fields of a sealed batch — its offset, record count or length — must not
    /// make a read skip the batch and return other records, or report its records as compacted.
    @Test(arguments: [(8, 0), (8, 1), (8, 4), (24, 0), (24, 1), (28, 0), (28, 3), (0, 1), (4, 1)])
    func damagedHeaderOfASealedBatchIsNotSkipped(byte: Int, bit: Int) async throws {
        let dir = TemporaryDirectory()
        let (log, written) = try await Self.cleanlyReopenedLog(dir.log, smallSegmentConfiguration(.sync))
        let bases = log.segmentBaseOffsets
        let path = segmentPath(dir.log, bases[1])
        let layout = batchLayout(path)
        // A batch the reader reaches by scanning forward from an index entry.
        let indexed = Set(indexEntries(segmentPath(dir.log, bases[1], ".index")).map { Int($0.position) })
        let batch = try #require(layout[(layout.count / 2)...].first { !indexed.contains($0.position) })
        flipBit(path, byte: batch.position + byte, bit: bit)
        Self.expectReadsRefuse(log, batch, path: path, written)
        try log.close()
    }
}
