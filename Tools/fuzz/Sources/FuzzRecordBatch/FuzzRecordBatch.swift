@testable import SpoolLog

/// Any bytes as a record batch: the header parser, the checksum, and the decoder (LZ4 included,
/// since the CRC is recomputed so that damaged payloads get past it half the time) must return
/// or throw, never trap or read out of bounds.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecordBatch(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if bytes.count >= RecordBatchHeader.size && bytes[0] & 1 == 1 {
        // Make the CRC match, so the decoder itself is reached with arbitrary lengths and payloads.
        bytes[0] = 0x53; bytes[1] = 0x50; bytes[2] = 0x4C; bytes[3] = 0x42; bytes[4] = 1
        let crc = bytes.withUnsafeBytes { raw -> UInt32 in
            var crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<36]))
            crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[40...]), continuing: crc)
            return crc
        }
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[36 + i] = $0[i] } }
    }
    bytes.withUnsafeBytes { raw in
        guard let header = RecordBatchHeader(raw) else { return }
        guard header.totalLength <= raw.count, header.checksumMatches(raw) else { return }
        if let records = try? RecordBatch.decode(header, UnsafeRawBufferPointer(rebasing: raw[0..<header.totalLength])) {
            precondition(records.count == Int(header.recordCount), "decode returned \(records.count) records for \(header.recordCount)")
        }
    }
    return 0
}
