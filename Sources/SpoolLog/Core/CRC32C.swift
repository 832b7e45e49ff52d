import CCRC32C

/// CRC32C (Castagnoli), the checksum on every record batch and checkpoint.
///
/// Uses the SSE4.2 `crc32` instruction when the CPU has it (several GB/s per core)
/// and slicing-by-8 tables otherwise.
public enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc` (0 to start).
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return spool_crc32c_extend(crc, base, bytes.count)
    }

    /// The checksum of `bytes`, continuing from `crc` (0 to start).
    @inlinable
    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The checksum through the portable tables only; for tests and benchmarks.
    public static func portableChecksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return spool_crc32c_extend_portable(crc, base, bytes.count)
    }

    /// Whether the hardware instruction is in use on this machine.
    public static var isHardwareAccelerated: Bool { spool_crc32c_is_hardware() != 0 }
}

