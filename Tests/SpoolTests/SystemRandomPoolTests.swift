import SpoolPrimitives
import Testing

@Suite struct SystemRandomPoolTests {
    /// The pool holds 512 values a page: 5,000 draws cross nine refills. Each value is handed out
    /// once, so none repeats (two equal draws of 64 random bits have a chance of about 1e-12
    /// here), and a refill that kept the old page would repeat all of it.
    @Test func drawsAcrossRefillsNeverRepeat() {
        var pool = SystemRandomPool()
        var seen = Set<UInt64>()
        for _ in 0..<5_000 { seen.insert(pool.next()) }
        #expect(seen.count == 5_000)
    }

    /// Threads drawing at once share one pool: between them, no value comes out twice.
    @Test func concurrentDrawsNeverRepeat() async {
        let drawn = await withTaskGroup(of: [UInt64].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var pool = SystemRandomPool()
                    return (0..<2_000).map { _ in pool.next() }
                }
            }
            var all: [UInt64] = []
            for await values in group { all += values }
            return all
        }
        #expect(Set(drawn).count == 8_000)
    }

    /// The generator's bits are not biased to zero or one: of 64,000 bits about half are set
    /// (a fair source lands within ±1,000 of 32,000 with a chance of 1 − 1e-15).
    @Test func bitsAreBalanced() {
        var pool = SystemRandomPool()
        var ones = 0
        for _ in 0..<1_000 { ones += pool.next().nonzeroBitCount }
        #expect(abs(ones - 32_000) < 1_000)
    }
}
