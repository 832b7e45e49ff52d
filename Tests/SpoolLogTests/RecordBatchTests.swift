import Testing
@testable import SpoolLog

/// The on-disk batch format: what is written is what is read, and no damaged batch is accepted.
@Suite struct RecordBatchTests {
    /// Records of assorted sizes, empty ones included.
    static let mixedRecords: [[UInt8]] = [[], payload(1, size: 1), payload(2, size: 5), [], payload(3, size: 100),
                                         payload(4, size: 1000), [], payload(5, size: 3)]

    static func parse(_ batch: [UInt8]) -> RecordBatchHeader? {
        batch.withUnsafeBytes { RecordBatchHeader($0) }
    }

    static func decode(_ batch: [UInt8]) throws -> [[UInt8]] {
        guard let header = parse(batch) else { throw LogError(.corruptBatch, "header does not parse") }
        return try batch.withUnsafeBytes { raw throws(LogError) in try RecordBatch.decode(header, raw) }
    }

    static func checksumMatches(_ header: RecordBatchHeader, _ batch: [UInt8]) -> Bool {
        batch.withUnsafeBytes { header.checksumMatches($0) }
    }

    @Test func rawBatchRoundTrip() throws {
        let records = Self.mixedRecords
        let batch = RecordBatch.encode(records, baseOffset: 1 << 40, timestampMilliseconds: 1_700_000_000_123,
                                       compressionThreshold: Int.max)
        let header = try #require(Self.parse(batch))
        let rawLength = records.reduce(0) { $0 + 4 + $1.count }
        #expect(!header.isCompressed)
        #expect(header.baseOffset == 1 << 40)
        #expect(header.nextOffset == (1 << 40) + UInt64(records.count))
        #expect(header.timestampMilliseconds == 1_700_000_000_123)
        #expect(header.recordCount == UInt32(records.count))
        #expect(Int(header.rawLength) == rawLength)
        #expect(header.storedLength == header.rawLength)
        #expect(header.totalLength == batch.count)
        #expect(batch.count == RecordBatchHeader.size + rawLength)
        #expect(Self.checksumMatches(header, batch))
        #expect(try Self.decode(batch) == records)
    }

    @Test func compressibleBatchIsStoredCompressedAndRoundTrips() throws {
        let records: [[UInt8]] = [[UInt8](repeating: 7, count: 3000), [], Array("abcabcabcabcabcabc".utf8),
                                  [UInt8](repeating: 0, count: 2000), payload(9, size: 10)]
        let batch = RecordBatch.encode(records, baseOffset: 42, compressionThreshold: 64)
        let header = try #require(Self.parse(batch))
        #expect(header.isCompressed)
        #expect(header.storedLength <= header.rawLength - header.rawLength / 8, "compression is kept only when it saves an eighth")
        #expect(Int(header.rawLength) == records.reduce(0) { $0 + 4 + $1.count })
        #expect(header.totalLength == batch.count)
        #expect(Self.checksumMatches(header, batch))
        #expect(try Self.decode(batch) == records)
    }

    @Test func incompressibleBatchIsStoredRaw() throws {
        let records = [payload(11, size: 4000), payload(12, size: 900)]
        let batch = RecordBatch.encode(records, baseOffset: 0, compressionThreshold: 64)
        let header = try #require(Self.parse(batch))
        #expect(!header.isCompressed)
        #expect(header.storedLength == header.rawLength)
        #expect(try Self.decode(batch) == records)
    }

    /// Compression starts at a raw payload (records and their 4-byte lengths) of exactly the threshold.
    @Test func compressionThresholdIsInclusive() throws {
        let record = [UInt8](repeating: 1, count: 996)  // 1000 raw payload bytes
        let atThreshold = try #require(Self.parse(RecordBatch.encode([record], baseOffset: 0, compressionThreshold: 1000)))
        let belowThreshold = try #require(Self.parse(RecordBatch.encode([record], baseOffset: 0, compressionThreshold: 1001)))
        #expect(atThreshold.isCompressed)
        #expect(!belowThreshold.isCompressed)
    }

    // MARK: Header validation

    /// The header of a valid raw batch with `mutate` applied to its bytes; the checksum is not
    /// involved in parsing.
    static func parseMutated(_ mutate: (inout [UInt8]) -> Void) -> RecordBatchHeader? {
        var batch = RecordBatch.encode([payload(1, size: 20), payload(2, size: 30)], baseOffset: 5, compressionThreshold: Int.max)
        mutate(&batch)
        return parse(batch)
    }

    @Test func headerParsesUnmodified() {
        #expect(Self.parseMutated { _ in } != nil)
    }

    @Test(arguments: 0..<4) func headerRejectsWrongMagic(byte: Int) {
        #expect(Self.parseMutated { $0[byte] ^= 0x20 } == nil)
    }

    @Test(arguments: [UInt8(0), 2, 3, 0x81, 0xFF]) func headerRejectsUnknownVersion(version: UInt8) {
        #expect(Self.parseMutated { $0[4] = version } == nil)
    }

    @Test(arguments: 1..<8) func headerRejectsUnknownFlagBits(bit: Int) {
        #expect(Self.parseMutated { $0[5] |= UInt8(1) << UInt8(bit) } == nil)
    }

    @Test func headerRejectsImpossibleLengths() {
        func store(_ value: UInt32, at position: Int, in bytes: inout [UInt8]) {
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[position + i] = b } }
        }
        // No records.
        #expect(Self.parseMutated { store(0, at: 24, in: &$0) } == nil)
        // Fewer raw bytes than 4 per record.
        #expect(Self.parseMutated { store(1000, at: 24, in: &$0) } == nil)
        // A raw batch whose stored and raw lengths differ.
        #expect(Self.parseMutated { store(57, at: 28, in: &$0) } == nil)
        #expect(Self.parseMutated { store(59, at: 32, in: &$0) } == nil)
    }

    @Test func headerRejectsShortAndZeroBytes() {
        #expect(Self.parseMutated { $0.removeLast($0.count - RecordBatchHeader.size + 1) } == nil)
        #expect(Self.parse([UInt8](repeating: 0, count: 4096)) == nil, "the zero-filled tail of a segment is not a batch")
        #expect(Self.parse([]) == nil)
    }

    // MARK: Checksums

    /// Every single bit flip in a batch — header or payload — is caught, both against the header
    /// that was read before the damage and against the header as re-read from the damaged bytes.
    @Test(arguments: [false, true]) func everySingleBitFlipIsDetected(compressed: Bool) throws {
        let records: [[UInt8]] = compressed ? [[UInt8](repeating: 3, count: 300), Array("spool spool spool spool".utf8)]
                                            : [payload(1, size: 30), [], payload(2, size: 17)]
        let batch = RecordBatch.encode(records, baseOffset: 77, timestampMilliseconds: 123, compressionThreshold: 64)
        let header = try #require(Self.parse(batch))
        #expect(header.isCompressed == compressed)
        var undetected: [String] = []
        for byte in 0..<batch.count {
            for bit in 0..<8 {
                var damaged = batch
                damaged[byte] ^= UInt8(1) << UInt8(bit)
                // The stored CRC (bytes 36..<40) is not part of what it covers; a flip there shows
                // when the header is re-read.
                if !(36..<40).contains(byte) && Self.checksumMatches(header, damaged) {
                    undetected.append("byte \(byte) bit \(bit) against the original header")
                }
                if let reread = Self.parse(damaged), Self.checksumMatches(reread, damaged) {
                    undetected.append("byte \(byte) bit \(bit) against the re-read header")
                }
            }
        }
        #expect(undetected.isEmpty, "\(undetected.prefix(10))")
    }

    @Test func checksumFailsForATruncatedBatch() throws {
        let batch = RecordBatch.encode([payload(1, size: 50)], baseOffset: 0)
        let header = try #require(Self.parse(batch))
        for length in [0, RecordBatchHeader.size, batch.count - 1] {
            #expect(!Self.checksumMatches(header, Array(batch.prefix(length))))
        }
    }

    // MARK: Decoding a batch whose checksum is right but whose payload is not what the header says

    /// A batch with a valid checksum over `payload` (which is stored as given).
    static func forgedBatch(payload: [UInt8], recordCount: UInt32, rawLength: UInt32, compressed: Bool) -> [UInt8] {
        let header = RecordBatchHeader(flags: compressed ? RecordBatchHeader.compressedFlag : 0, baseOffset: 9,
                                       timestampMilliseconds: 0, recordCount: recordCount,
                                       storedLength: UInt32(payload.count), rawLength: rawLength)
        var batch = [UInt8](repeating: 0, count: RecordBatchHeader.size) + payload
        batch.withUnsafeMutableBytes { all in
            header.write(to: all, payload: UnsafeRawBufferPointer(rebasing: all[RecordBatchHeader.size...]))
        }
        return batch
    }

    @Test func recordsThatDoNotFillThePayloadAreCorrupt() throws {
        // A 10-byte record announced in 9 raw bytes.
        let overrun = Self.forgedBatch(payload: [10, 0, 0, 0, 1, 2, 3, 4, 5], recordCount: 1, rawLength: 9, compressed: false)
        // One 2-byte record followed by 3 stray bytes.
        let trailing = Self.forgedBatch(payload: [2, 0, 0, 0, 1, 2, 7, 7, 7], recordCount: 1, rawLength: 9, compressed: false)
        for batch in [overrun, trailing] {
            #expect(Self.checksumMatches(try #require(Self.parse(batch)), batch))
            let error = #expect(throws: LogError.self) { try Self.decode(batch) }
            #expect(error?.code == .corruptBatch)
        }
    }

    @Test func undecompressiblePayloadThrowsDecompressionFailed() throws {
        let batch = Self.forgedBatch(payload: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00], recordCount: 1, rawLength: 64, compressed: true)
        #expect(Self.checksumMatches(try #require(Self.parse(batch)), batch))
        let error = #expect(throws: LogError.self) { try Self.decode(batch) }
        #expect(error?.code == .decompressionFailed)
    }

    // MARK: CRC32C

    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func hardwareAndPortableCRC32CAgree() {
        let bytes = payload(5, size: 60_000)
        // Lengths around the three-stream block sizes too (3 × 256 and 3 × 8192 bytes).
        for start in [0, 1, 3, 7] {
            for length in [0, 1, 7, 8, 9, 63, 64, 65, 767, 768, 775, 1000, 4000, 24_575, 24_576, 24_583, 50_000] {
                let slice = Array(bytes[start..<start + length])
                let portable = slice.withUnsafeBytes { CRC32C.portableChecksum($0) }
                #expect(CRC32C.checksum(slice) == portable, "start \(start) length \(length)")
                // Continuing a checksum equals checksumming the concatenation.
                let half = length / 2
                let continued = CRC32C.checksum(Array(slice[half...]), continuing: CRC32C.checksum(Array(slice[..<half])))
                #expect(continued == portable)
            }
        }
    }
}
