/// The fixed 40-byte header in front of every record batch on disk.
///
/// Layout (little-endian), see `Docs/file-format.md`:
///
/// | bytes | field |
/// |---|---|
/// | 0..<4 | magic `"SPLB"` |
/// | 4 | version (1) |
/// | 5 | flags (bit 0: payload is LZ4-compressed) |
/// | 6..<8 | reserved, zero |
/// | 8..<16 | base offset (offset of the first record) |
/// | 16..<24 | append time, milliseconds since the Unix epoch |
/// | 24..<28 | record count |
/// | 28..<32 | stored payload length (bytes that follow the header) |
/// | 32..<36 | raw payload length (after decompression) |
/// | 36..<40 | CRC32C of bytes 0..<36 and of the stored payload |
///
/// The raw payload is the records back to back, each a 4-byte length and its bytes.
public struct RecordBatchHeader: Sendable, Equatable {
    /// Header size in bytes.
    public static let size = 40
    /// `"SPLB"` read as a little-endian `UInt32`.
    public static let magic: UInt32 = 0x424C_5053
    /// The only format version this build writes and reads.
    public static let version: UInt8 = 1
    /// Flag bit: the stored payload is LZ4-compressed.
    public static let compressedFlag: UInt8 = 1

    /// Flags byte.
    public var flags: UInt8
    /// Offset of the first record.
    public var baseOffset: UInt64
    /// Append time in milliseconds since the Unix epoch.
    public var timestampMilliseconds: Int64
    /// Number of records.
    public var recordCount: UInt32
    /// Bytes of payload stored after the header.
    public var storedLength: UInt32
    /// Bytes of payload after decompression.
    public var rawLength: UInt32
    /// The stored checksum.
    public var crc: UInt32

    /// Whether the payload is LZ4-compressed.
    public var isCompressed: Bool { flags & Self.compressedFlag != 0 }
    /// Header plus stored payload: the batch's size on disk.
    public var totalLength: Int { Self.size + Int(storedLength) }
    /// One past the last record's offset.
    public var nextOffset: UInt64 { baseOffset + UInt64(recordCount) }

    /// Parses a header; `nil` when the bytes cannot be one (wrong magic or version,
    /// impossible lengths). All-zero bytes, the preallocated tail of a segment, give `nil`.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size,
              bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian == Self.magic,
              bytes[4] == Self.version
        else { return nil }
        flags = bytes[5]
        baseOffset = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
        timestampMilliseconds = bytes.loadUnaligned(fromByteOffset: 16, as: Int64.self).littleEndian
        recordCount = bytes.loadUnaligned(fromByteOffset: 24, as: UInt32.self).littleEndian
        storedLength = bytes.loadUnaligned(fromByteOffset: 28, as: UInt32.self).littleEndian
        rawLength = bytes.loadUnaligned(fromByteOffset: 32, as: UInt32.self).littleEndian
        crc = bytes.loadUnaligned(fromByteOffset: 36, as: UInt32.self).littleEndian
        // A raw payload holds at least 4 bytes per record; a count of 0 is never written.
        guard flags & ~Self.compressedFlag == 0, recordCount > 0,
              UInt64(rawLength) >= UInt64(recordCount) * 4,
              isCompressed || storedLength == rawLength
        else { return nil }
    }

    init(flags: UInt8, baseOffset: UInt64, timestampMilliseconds: Int64, recordCount: UInt32,
         storedLength: UInt32, rawLength: UInt32, crc: UInt32 = 0) {
        self.flags = flags
        self.baseOffset = baseOffset
        self.timestampMilliseconds = timestampMilliseconds
        self.recordCount = recordCount
        self.storedLength = storedLength
        self.rawLength = rawLength
        self.crc = crc
    }

    /// Writes the header, computing the CRC over its first 36 bytes and `payload`.
    func write(to destination: UnsafeMutableRawBufferPointer, payload: UnsafeRawBufferPointer) {
        precondition(destination.count >= Self.size)
        destination.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        destination[4] = Self.version
        destination[5] = flags
        destination.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
        destination.storeBytes(of: baseOffset.littleEndian, toByteOffset: 8, as: UInt64.self)
        destination.storeBytes(of: timestampMilliseconds.littleEndian, toByteOffset: 16, as: Int64.self)
        destination.storeBytes(of: recordCount.littleEndian, toByteOffset: 24, as: UInt32.self)
        destination.storeBytes(of: storedLength.littleEndian, toByteOffset: 28, as: UInt32.self)
        destination.storeBytes(of: rawLength.littleEndian, toByteOffset: 32, as: UInt32.self)
        var crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: destination[0..<36]))
        crc = CRC32C.checksum(payload, continuing: crc)
        destination.storeBytes(of: crc.littleEndian, toByteOffset: 36, as: UInt32.self)
    }

    /// Whether `batch` (header and stored payload, `totalLength` bytes) carries this header's checksum.
    public func checksumMatches(_ batch: UnsafeRawBufferPointer) -> Bool {
        guard batch.count >= totalLength else { return false }
        var computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: batch[0..<36]))
        computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: batch[Self.size..<totalLength]), continuing: computed)
        return computed == crc
    }
}

/// Encoding and decoding of record batches (see ``RecordBatchHeader`` for the layout).
public enum RecordBatch {
    /// Encodes `records` as one batch starting at `baseOffset`.
    ///
    /// The payload is LZ4-compressed when its raw size is at least `compressionThreshold`
    /// bytes and compression saves at least an eighth; otherwise it is stored raw.
    public static func encode(_ records: [[UInt8]], baseOffset: UInt64, timestampMilliseconds: Int64 = 0,
                              compressionThreshold: Int = 4096) -> [UInt8] {
        var buffer = PendingBatchBuffer()
        for record in records { record.withUnsafeBytes { buffer.append($0) } }
        return buffer.finish(baseOffset: baseOffset, recordCount: records.count, timestampMilliseconds: timestampMilliseconds,
                             compressionThreshold: compressionThreshold, compressor: LZ4.Compressor())
    }

    /// Decodes the records of a verified batch.
    ///
    /// - Parameter batch: the whole batch, header included; its checksum must already have been checked.
    /// - Throws: ``LogError/Code/decompressionFailed`` or ``LogError/Code/corruptBatch`` when the payload does not
    ///   parse as the header says.
    public static func decode(_ header: RecordBatchHeader, _ batch: UnsafeRawBufferPointer) throws(LogError) -> [[UInt8]] {
        let stored = UnsafeRawBufferPointer(rebasing: batch[RecordBatchHeader.size..<header.totalLength])
        if !header.isCompressed { return try splitRecords(stored, header) }
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(header.rawLength), alignment: 8)
        defer { raw.deallocate() }
        guard LZ4.decompress(stored, into: raw) == Int(header.rawLength) else {
            throw LogError(.decompressionFailed, "batch at offset \(header.baseOffset) does not decompress to \(header.rawLength) bytes")
        }
        return try splitRecords(UnsafeRawBufferPointer(raw), header)
    }

    static func splitRecords(_ raw: UnsafeRawBufferPointer, _ header: RecordBatchHeader) throws(LogError) -> [[UInt8]] {
        var records: [[UInt8]] = []
        records.reserveCapacity(Int(header.recordCount))
        var position = 0
        for _ in 0..<header.recordCount {
            guard position + 4 <= raw.count else { break }
            let length = Int(raw.loadUnaligned(fromByteOffset: position, as: UInt32.self).littleEndian)
            position += 4
            guard length <= raw.count - position else { break }
            records.append(Array(UnsafeRawBufferPointer(rebasing: raw[position..<position + length])))
            position += length
        }
        guard records.count == Int(header.recordCount), position == raw.count else {
            throw LogError(.corruptBatch, "batch at offset \(header.baseOffset): payload does not hold \(header.recordCount) records")
        }
        return records
    }
}

/// A batch being filled by appenders: header space, then length-prefixed records.
///
/// Filling it in place means the writer thread only has to write the header (and,
/// when it pays, compress) before handing the bytes to `pwrite`.
struct PendingBatchBuffer {
    private(set) var bytes: [UInt8]

    init(reservingCapacity capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(RecordBatchHeader.size + capacity)
        bytes.append(contentsOf: repeatElement(0, count: RecordBatchHeader.size))
    }

    /// Raw payload bytes so far.
    var payloadCount: Int { bytes.count - RecordBatchHeader.size }

    mutating func append(_ record: UnsafeRawBufferPointer) {
        withUnsafeBytes(of: UInt32(record.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: record)
    }

    /// Bytes of a large payload compressed first, to see whether compressing all of it may pay.
    static let compressionSampleBytes = 4096

    /// Whether the payload's first ``compressionSampleBytes`` shrink by an eighth, for a payload at
    /// least four times that long (shorter ones are always tried whole). Trying LZ4 on a whole
    /// incompressible batch costs as much as compressing it: 3.4% of all CPU at 512 producers of
    /// random records (perf, `spool bench log`), even with ``CompressionGovernor`` skipping most
    /// batches. A payload whose start does not compress but whose rest would is stored raw.
    private func samplePromisesCompression(_ compressor: LZ4.Compressor) -> Bool {
        let sample = Self.compressionSampleBytes
        guard payloadCount >= 4 * sample else { return true }
        return bytes.withUnsafeBytes { source in
            withUnsafeTemporaryAllocation(byteCount: sample, alignment: 16) { scratch in
                compressor.compress(UnsafeRawBufferPointer(rebasing: source[RecordBatchHeader.size..<RecordBatchHeader.size + sample]),
                                    into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<(sample - sample / 8)])) != nil
            }
        }
    }

    /// Completes the header (compressing with `compressor` when that pays) and returns the batch
    /// as stored on disk.
    consuming func finish(baseOffset: UInt64, recordCount: Int, timestampMilliseconds: Int64, compressionThreshold: Int,
                          compressor: LZ4.Compressor) -> [UInt8] {
        let rawLength = payloadCount
        if rawLength >= compressionThreshold && samplePromisesCompression(compressor) {
            // Keep the compressed form only if it saves at least an eighth.
            let limit = min(LZ4.maxCompressedSize(rawLength), rawLength - rawLength / 8)
            var size: Int?
            let compressed = [UInt8](unsafeUninitializedCapacity: RecordBatchHeader.size + limit) { all, initialized in
                let destination = UnsafeMutableRawBufferPointer(all)
                size = bytes.withUnsafeBytes { source in
                    compressor.compress(UnsafeRawBufferPointer(rebasing: source[RecordBatchHeader.size...]),
                                        into: UnsafeMutableRawBufferPointer(rebasing: destination[RecordBatchHeader.size..<RecordBatchHeader.size + limit]))
                }
                guard let size else {
                    initialized = 0
                    return
                }
                let header = RecordBatchHeader(flags: RecordBatchHeader.compressedFlag, baseOffset: baseOffset,
                                               timestampMilliseconds: timestampMilliseconds, recordCount: UInt32(recordCount),
                                               storedLength: UInt32(size), rawLength: UInt32(rawLength))
                let batch = UnsafeMutableRawBufferPointer(rebasing: destination[0..<RecordBatchHeader.size + size])
                header.write(to: batch, payload: UnsafeRawBufferPointer(rebasing: batch[RecordBatchHeader.size...]))
                initialized = RecordBatchHeader.size + size
            }
            if size != nil { return compressed }
        }
        let header = RecordBatchHeader(flags: 0, baseOffset: baseOffset, timestampMilliseconds: timestampMilliseconds,
                                       recordCount: UInt32(recordCount), storedLength: UInt32(rawLength), rawLength: UInt32(rawLength))
        var result = bytes
        bytes = []  // drop our reference so `result` is unique and is written in place
        result.withUnsafeMutableBytes { all in
            header.write(to: all, payload: UnsafeRawBufferPointer(rebasing: all[RecordBatchHeader.size...]))
        }
        return result
    }
}
