import CLZ4

/// LZ4 block compression through the system liblz4.
public enum LZ4 {
    /// The largest output `compress` can produce for `count` input bytes.
    public static func maxCompressedSize(_ count: Int) -> Int {
        Int(LZ4_compressBound(Int32(clamping: count)))
    }

    /// Compresses `source` into `destination`; returns the bytes written, or `nil`
    /// when the output would not fit (the data does not compress well enough).
    public static func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int? {
        guard let src = source.baseAddress, let dst = destination.baseAddress, source.count <= Int32.max else { return nil }
        let n = LZ4_compress_default(src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
                                     Int32(source.count), Int32(clamping: destination.count))
        return n > 0 ? Int(n) : nil
    }

    /// Compresses blocks one after another with one compression state, for a thread that
    /// compresses many (the log's writer). ``LZ4/compress(_:into:)`` sets up a fresh 16 KiB
    /// state for every block, which cost more than compressing a batch of a few records; here the
    /// state is initialized once and only reset (`LZ4_resetStream_fast`) between blocks. Each
    /// block is independent (no dictionary): ``LZ4/decompress(_:into:)`` reads it alone.
    /// Not thread-safe: one compressor per thread, or under the caller's lock.
    package final class Compressor {
        private let stream: UnsafeMutablePointer<LZ4_stream_t>

        package init() {
            stream = .allocate(capacity: 1)
            LZ4_initStream(stream, MemoryLayout<LZ4_stream_t>.size)
        }

        deinit { stream.deallocate() }

        /// As ``LZ4/compress(_:into:)``.
        package func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int? {
            guard let src = source.baseAddress, let dst = destination.baseAddress, source.count <= Int32.max else { return nil }
            LZ4_resetStream_fast(stream)
            let n = LZ4_compress_fast_continue(stream, src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
                                               Int32(source.count), Int32(clamping: destination.count), 1)
            return n > 0 ? Int(n) : nil
        }
    }

    /// Decompresses `source` into `destination`, which must be exactly the original size.
    /// Safe against malformed input: returns `nil` rather than reading or writing out of bounds.
    public static func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int? {
        guard let src = source.baseAddress, let dst = destination.baseAddress else {
            return destination.isEmpty && source.isEmpty ? 0 : nil
        }
        let n = LZ4_decompress_safe(src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
                                    Int32(clamping: source.count), Int32(clamping: destination.count))
        return n >= 0 ? Int(n) : nil
    }
}
