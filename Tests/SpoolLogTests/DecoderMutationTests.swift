#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// "A run of a few seconds per target in the test suite" (issue 6 item 4): the libFuzzer targets
/// (Tools/fuzz) are not built by `swift test`, so this feeds a fixed number of seeded mutations of
/// real encodings through the log's decoders: record batches (`FuzzRecordBatch`), checkpoint files
/// and the swap manifest (`FuzzCheckpoint`), and offset indexes beside a valid segment, loaded by
/// `Log.open` and read through (`FuzzOffsetIndex`). Each input must decode or be rejected (a trap
/// fails the run); half get a correct magic and CRC so the parsing behind the guard is reached.
@Suite struct DecoderMutationTests {
    static let seed = Mutator.seed(default: 20_261_125)

    static func payload(_ offset: UInt64) -> [UInt8] {
        Array("record \(offset) ".utf8) + [UInt8](repeating: UInt8(offset % 251), count: Int(offset * 37 % 100))
    }

    static let batches: [[UInt8]] = [
        RecordBatch.encode((0..<3).map(payload), baseOffset: 0),
        RecordBatch.encode([[UInt8](repeating: 7, count: 300), Array("compressible ".utf8) + [UInt8](repeating: 1, count: 200)],
                           baseOffset: 1 << 33, timestampMilliseconds: 1_700_000_000_000, compressionThreshold: 0),
        RecordBatch.encode([[]], baseOffset: 5),
    ]

    /// The records of `bytes` as a batch, or nil when the header, the length or the checksum
    /// rejects it or `RecordBatch.decode` throws.
    static func decodeBatch(_ bytes: [UInt8]) -> [[UInt8]]? {
        bytes.withUnsafeBytes { raw -> [[UInt8]]? in
            guard let header = RecordBatchHeader(raw), header.totalLength <= raw.count, header.checksumMatches(raw),
                  let records = try? RecordBatch.decode(header, UnsafeRawBufferPointer(rebasing: raw[0..<header.totalLength]))
            else { return nil }
            #expect(records.count == Int(header.recordCount), "seed \(seed): \(records.count) records for \(header.recordCount)")
            return records
        }
    }

    /// Sets the magic and version and recomputes the CRC, as `FuzzRecordBatch` does.
    static func withValidChecksum(_ batch: [UInt8]) -> [UInt8] {
        guard batch.count >= RecordBatchHeader.size else { return batch }
        var bytes = batch
        bytes[0] = 0x53; bytes[1] = 0x50; bytes[2] = 0x4C; bytes[3] = 0x42; bytes[4] = 1
        let crc = bytes.withUnsafeBytes { raw -> UInt32 in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[40...]),
                            continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<36])))
        }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[36 + i] = $0[i] } }
        return bytes
    }

    @Test func unmutatedBatchesAndCheckpointsRoundTrip() throws {
        #expect(Self.decodeBatch(Self.batches[0]) == (0..<3).map(Self.payload))
        #expect(Self.decodeBatch(Self.batches[2]) == [[]])
        let point = CheckpointFile(magic: CheckpointFile.recoveryPointMagic, fields: [42])
        #expect(CheckpointFile.decode(point.encoded, magic: point.magic, fieldCount: 1)?.fields == [42])
        let swap = CheckpointFile(magic: SegmentSwap.magic, fields: [2, 0, 100, 1, 0])
        #expect(CheckpointFile.decode(swap.encoded, magic: SegmentSwap.magic, fieldCount: 5).flatMap { SegmentSwap(fields: $0.fields) }?.old == [0, 100])
    }

    @Test func mutatedBatchesDecodeOrThrow() {
        var decoded = 0
        for i in 0..<30_000 {
            var mutator = Mutator(seed: Self.seed, input: i)
            var bytes = mutator.mutate(Self.batches[i % Self.batches.count])
            if i % 2 == 0 { bytes = Self.withValidChecksum(bytes) }
            guard let records = Self.decodeBatch(bytes) else { continue }
            decoded += 1
            let base = bytes.withUnsafeBytes { RecordBatchHeader($0)?.baseOffset } ?? 0
            #expect(Self.decodeBatch(RecordBatch.encode(records, baseOffset: base)) == records,
                    "seed \(Self.seed) input \(i): the batch's records do not round-trip")
        }
        #expect(decoded > 0, "seed \(Self.seed): no mutated batch decoded")
    }

    @Test func mutatedCheckpointFilesDecodeOrAreRejected() {
        let files = [CheckpointFile(magic: CheckpointFile.recoveryPointMagic, fields: [42]),
                     CheckpointFile(magic: CheckpointFile.cleanShutdownMagic, fields: [1, 2, 3]),
                     CheckpointFile(magic: SegmentSwap.magic, fields: [2, 0, 100, 1, 0])]
        for i in 0..<30_000 {
            var mutator = Mutator(seed: Self.seed, input: i)
            let file = files[i % files.count]
            var bytes = mutator.mutate(file.encoded)
            if i % 2 == 0 && bytes.count >= 12 {
                withUnsafeBytes(of: file.magic.littleEndian) { for k in 0..<4 { bytes[k] = $0[k] } }
                bytes[4] = CheckpointFile.version
                let crc = CRC32C.checksum(Array(bytes[0..<(bytes.count - 4)]))
                withUnsafeBytes(of: crc.littleEndian) { for k in 0..<4 { bytes[bytes.count - 4 + k] = $0[k] } }
            }
            // As open reads each file (SegmentSwap.resolve takes as many fields as the manifest holds).
            let fieldCount = file.magic == SegmentSwap.magic ? max(0, (bytes.count - 12) / 8) : file.fields.count
            guard let decoded = CheckpointFile.decode(bytes, magic: file.magic, fieldCount: fieldCount) else { continue }
            #expect(CheckpointFile.decode(decoded.encoded, magic: file.magic, fieldCount: fieldCount)?.fields == decoded.fields,
                    "seed \(Self.seed) input \(i): the checkpoint file does not round-trip")
            if file.magic == SegmentSwap.magic, let swap = SegmentSwap(fields: decoded.fields) {
                #expect(decoded.fields == [UInt64(swap.old.count)] + swap.old + [UInt64(swap.new.count)] + swap.new,
                        "seed \(Self.seed) input \(i): the manifest's segments do not match its fields")
            }
        }
    }

    /// A cleanly closed log of two small segments whose index files are mutated between opens:
    /// open must succeed (a bad index is rebuilt), and reads through the index return the right
    /// records or throw.
    @Test func mutatedIndexesAreRebuiltOrReadThrough() throws {
        var configuration = smallSegmentConfiguration()
        configuration.indexIntervalBytes = 64
        let dir = TemporaryDirectory()
        mkdir(dir.log, 0o700)
        let bases: [UInt64] = [0, 40], count: UInt64 = 80
        for (n, base) in bases.enumerated() {
            let end = n + 1 < bases.count ? bases[n + 1] : count
            var segment: [UInt8] = [], offset = base
            while offset < end {
                let batchEnd = min(end, offset + 1 + offset % 3)
                segment += RecordBatch.encode((offset..<batchEnd).map(Self.payload), baseOffset: offset)
                offset = batchEnd
            }
            writeFile(segmentPath(dir.log, base), segment)
        }
        try Log.open(directory: dir.log, configuration: configuration).close()
        let marker = readFile(dir.log + "/" + CheckpointFile.cleanShutdownName)
        let indexes = bases.map { readFile(segmentPath(dir.log, $0, ".index")) }
        #expect(indexes.allSatisfy { $0.count >= 3 * OffsetIndex.entrySize })
        for i in 0..<300 {
            var mutator = Mutator(seed: Self.seed, input: i)
            let which = i % 2
            for (n, base) in bases.enumerated() {
                writeFile(segmentPath(dir.log, base, ".index"), n == which ? mutator.mutate(indexes[n]) : indexes[n])
            }
            writeFile(dir.log + "/" + CheckpointFile.cleanShutdownName, marker)
            let log: Log
            do { log = try Log.open(directory: dir.log, configuration: configuration) } catch {
                Issue.record("seed \(Self.seed) input \(i): open failed because of an index: \(error)")
                continue
            }
            defer { log.abandon() }
            #expect(log.endOffset == count, "seed \(Self.seed) input \(i)")
            for offset in stride(from: UInt64(0), to: count, by: 3) {
                guard let records = try? log.read(from: offset, maxRecords: 2) else { continue }
                let right = records.enumerated().allSatisfy { i, record in
                    record.offset == offset + UInt64(i) && record.payload == Self.payload(record.offset)
                }
                #expect(right, "seed \(Self.seed) input \(i): read(from: \(offset)) returned the wrong records")
            }
        }
    }
}

