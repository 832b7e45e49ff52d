@testable import SpoolLog

/// Any bytes as each checkpoint file (`recovery-point`, `clean-shutdown`, `swap-manifest`):
/// decoding returns a value or `nil`, never traps. The first byte picks the file; when its low
/// bit is set the CRC is recomputed so that the field parsing (the manifest's counts) is reached.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let selector = data[0]
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let magic: UInt32 = [CheckpointFile.recoveryPointMagic, CheckpointFile.cleanShutdownMagic, SegmentSwap.magic][Int(selector >> 1) % 3]
    if selector & 1 == 1 && bytes.count >= 12 {
        withUnsafeBytes(of: magic.littleEndian) { for i in 0..<4 { bytes[i] = $0[i] } }
        bytes[4] = CheckpointFile.version
        let crc = CRC32C.checksum(Array(bytes[0..<(bytes.count - 4)]))
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { bytes[bytes.count - 4 + i] = $0[i] } }
    }
    switch magic {
    case CheckpointFile.recoveryPointMagic:
        _ = CheckpointFile.decode(bytes, magic: magic, fieldCount: 1)
    case CheckpointFile.cleanShutdownMagic:
        _ = CheckpointFile.decode(bytes, magic: magic, fieldCount: 3)
    default:
        // As SegmentSwap.resolve reads a manifest.
        let fieldCount = max(0, (bytes.count - 12) / 8)
        if let file = CheckpointFile.decode(bytes, magic: magic, fieldCount: fieldCount) { _ = SegmentSwap(fields: file.fields) }
    }
    return 0
}
