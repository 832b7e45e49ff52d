#if canImport(Glibc)
import Glibc
#endif
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

// MARK: - Seeded mutations (the same in each module's decoder mutation tests)

/// A deterministic stream of mutated inputs: input `i` of seed `s` is always the same bytes, so a
/// failure names both and reproduces with them (`SPOOL_MUTATION_SEED` overrides the seed).
private struct Mutator {
    let seed: UInt64
    private var state: UInt64

    static func seed(default value: UInt64) -> UInt64 {
        if let text = getenv("SPOOL_MUTATION_SEED"), let seed = UInt64(String(cString: text)) { return seed }
        return value
    }

    init(seed: UInt64, input: Int) {
        self.seed = seed
        state = seed ^ (UInt64(input) &* 0x9E37_79B9_7F4A_7C15)
        _ = next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

    /// One to four mutations of `bytes`: bit flips, bytes set to edge values, truncation,
    /// extension, insertion or deletion of a run, a copied slice, or random bytes of random length.
    mutating func mutate(_ original: [UInt8]) -> [UInt8] {
        var bytes = original
        let edge: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0xFE]
        for _ in 0...below(4) {
            switch below(9) {
            case 0, 1:
                if !bytes.isEmpty { bytes[below(bytes.count)] ^= UInt8(1) << UInt8(below(8)) }
            case 2:
                if !bytes.isEmpty { bytes[below(bytes.count)] = edge[below(edge.count)] }
            case 3:
                bytes = Array(bytes.prefix(below(bytes.count + 1)))
            case 4:
                for _ in 0..<(1 + below(16)) { bytes.append(UInt8(truncatingIfNeeded: next())) }
            case 5:
                let at = below(bytes.count + 1)
                bytes.insert(contentsOf: (0..<(1 + below(8))).map { _ in UInt8(truncatingIfNeeded: next()) }, at: at)
            case 6:
                if !bytes.isEmpty {
                    let from = below(bytes.count)
                    bytes.removeSubrange(from..<min(bytes.count, from + 1 + below(8)))
                }
            case 7:
                if !bytes.isEmpty {
                    let from = below(bytes.count), length = 1 + below(min(16, bytes.count - from))
                    bytes.insert(contentsOf: bytes[from..<(from + length)], at: below(bytes.count + 1))
                }
            default:
                if below(8) == 0 { bytes = (0..<below(64)).map { _ in UInt8(truncatingIfNeeded: next()) } }
                else if bytes.count >= 8 {
                    // A varint or length field set to a huge value.
                    let at = below(bytes.count - 7)
                    for k in 0..<8 { bytes[at + k] = 0xFF &- UInt8(below(2)) }
                }
            }
        }
        return bytes
    }
}
