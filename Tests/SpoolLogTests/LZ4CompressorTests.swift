import Testing
@testable import SpoolLog

/// The log's writer compresses every batch with one reused LZ4 state: each block it produces
/// must decompress alone, to exactly its input, whatever was compressed before it.
@Suite struct LZ4CompressorTests {
    /// Text-like bytes: a few words repeated in a seeded order (compressible, not uniform).
    static func text(seed: UInt64, count: Int) -> [UInt8] {
        let words: [[UInt8]] = ["workflow", "activity", "task-queue", "completed", "scheduled", " ", "\n"].map { Array($0.utf8) }
        var state = seed
        var bytes: [UInt8] = []
        while bytes.count < count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes += words[Int(state >> 33) % words.count]
        }
        return Array(bytes.prefix(count))
    }

    static func compress(_ compressor: LZ4.Compressor, _ input: [UInt8]) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: LZ4.maxCompressedSize(input.count))
        let size = input.withUnsafeBytes { source in output.withUnsafeMutableBytes { compressor.compress(source, into: $0) } }
        guard let size else { return nil }
        return Array(output.prefix(size))
    }

    static func decompress(_ block: [UInt8], size: Int) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: size)
        let n = block.withUnsafeBytes { source in output.withUnsafeMutableBytes { LZ4.decompress(source, into: $0) } }
        return n == size ? output : nil
    }

    @Test func eachBlockDecompressesAloneAfterOthersWithTheSameContent() throws {
        let compressor = LZ4.Compressor()
        let first = Self.text(seed: 1, count: 20_000)
        // The same bytes again, then a block that starts with the first's bytes: a compressor that
        // kept the previous block as its dictionary would refer back to it and need it to decode.
        let blocks = [first, first, Array(first.prefix(5_000)) + Self.text(seed: 2, count: 9_000), Self.text(seed: 3, count: 300), first]
        for (index, block) in blocks.enumerated() {
            let compressed = try #require(Self.compress(compressor, block), "block \(index)")
            #expect(compressed.count < block.count, "block \(index) compresses")
            let roundTrips = Self.decompress(compressed, size: block.count) == block
            #expect(roundTrips, "block \(index) decompresses alone to its input")
        }
    }

    @Test func aBlockThatDoesNotFitIsRefusedAndTheNextOneStillCompresses() throws {
        let compressor = LZ4.Compressor()
        let block = Self.text(seed: 4, count: 4_000)
        var tooSmall = [UInt8](repeating: 0, count: 16)
        let refused = block.withUnsafeBytes { source in tooSmall.withUnsafeMutableBytes { compressor.compress(source, into: $0) } }
        #expect(refused == nil)
        let compressed = try #require(Self.compress(compressor, block))
        let roundTrips = Self.decompress(compressed, size: block.count) == block
        #expect(roundTrips, "the block after a refused one decompresses alone to its input")
    }
}
