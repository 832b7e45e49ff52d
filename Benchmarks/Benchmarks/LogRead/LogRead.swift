// Reading a log through the public API, against the same files read raw.
//
// The fixture (built in each benchmark's setup, outside the measurement) is a log in a fresh
// temp directory: 16 MiB segments, 64 × 256-byte random records per batch (16,680 bytes on disk,
// stored raw), appended until four segments are sealed (~67 MB, 262,656 records) and then
// 64 more batches in the active segment. Everything is in the page cache: these measure the
// CPU cost of the read path (index lookup, checksum, decode), not the disk.
//
// - `Log.read(at:)` at random offsets of the sealed segments (mmapped) and of the active one
//   (pread). The baseline copies 256 bytes at a random position of the same mmapped files.
// - `LogReader` over every record from the start (records and bytes per second). The baseline
//   `pread`s the same segment files in 1 MiB chunks without verifying or splitting anything.

#if canImport(Glibc)
import Glibc
#endif
import Benchmark
import BenchmarkSupport
import SpoolLog
import Synchronization

let recordSize = 256
let recordsPerBatch = 64
let segmentBytes = 16 << 20

let benchmarks: @Sendable () -> Void = {
    let randomReads = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3)
    )
    let fullScans = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, BytesPerSecond.metric, RecordsPerSecond.metric],
        units: BytesPerSecond.units.merging([RecordsPerSecond.metric: .count]) { $1 },
        scalingFactor: .one,
        maxDuration: .seconds(5),
        maxIterations: 50
    )

    withFixture("Log.read(at:) random offset, sealed segments (mmap)", randomReads) { benchmark, fixture in
        var i = 0
        for _ in benchmark.scaledIterations {
            blackHole(try! fixture.log.read(at: fixture.sealedOffsets[i]))
            i = (i + 1) & (fixture.sealedOffsets.count - 1)
        }
    }

    withFixture("Log.read(at:) random offset, active segment (pread)", randomReads) { benchmark, fixture in
        var i = 0
        for _ in benchmark.scaledIterations {
            blackHole(try! fixture.log.read(at: fixture.activeOffsets[i]))
            i = (i + 1) & (fixture.activeOffsets.count - 1)
        }
    }

    withFixture("mmap copy of 256 B at a random position, same files (baseline)", randomReads) { benchmark, fixture in
        var i = 0
        var copy = [UInt8](repeating: 0, count: recordSize)
        copy.withUnsafeMutableBytes { destination in
            for _ in benchmark.scaledIterations {
                let (file, position) = fixture.rawPositions[i]
                memcpy(destination.baseAddress!, fixture.mappings[file].base + position, recordSize)
                blackHole(destination[0])
                i = (i + 1) & (fixture.rawPositions.count - 1)
            }
        }
        blackHole(copy)
    }

    withFixture("LogReader, every record from the start", fullScans) { benchmark, fixture in
        let start = BytesPerSecond.now()
        var reader = fixture.log.reader(from: fixture.log.startOffset)
        var records = 0
        var bytes = 0
        while let record = try! reader.next() {
            records += 1
            bytes += record.payload.count
        }
        precondition(records == fixture.recordCount)
        BytesPerSecond.record(benchmark, bytes: bytes, since: start)
        RecordsPerSecond.record(benchmark, records: records, since: start)
    }

    withFixture("pread of the segment files in 1 MiB chunks (baseline)", fullScans) { benchmark, fixture in
        let start = BytesPerSecond.now()
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { chunk.deallocate() }
        var bytes = 0
        for path in fixture.segmentPaths {
            let fd = open(path, O_RDONLY)
            precondition(fd >= 0)
            var position = 0
            while true {
                let n = pread(fd, chunk.baseAddress, chunk.count, off_t(position))
                precondition(n >= 0)
                if n == 0 { break }
                blackHole(chunk[n - 1])
                position += n
            }
            close(fd)
            bytes += position
        }
        BytesPerSecond.record(benchmark, bytes: bytes, since: start)
        RecordsPerSecond.record(benchmark, records: fixture.recordCount, since: start)
    }
}

/// Registers a benchmark that gets a freshly built log, removed again in teardown.
func withFixture(_ name: String, _ configuration: Benchmark.Configuration, _ body: @escaping (Benchmark, LogFixture) -> Void) {
    let holder = FixtureHolder()
    Benchmark(name, configuration: configuration, closure: body, setup: {
        let fixture = try await LogFixture.make()
        holder.fixture.withLock { $0 = fixture }
        return fixture
    }, teardown: {
        let fixture = holder.fixture.withLock { fixture in
            defer { fixture = nil }
            return fixture
        }
        try fixture?.remove()
    })
}

final class FixtureHolder: Sendable {
    let fixture = Mutex<LogFixture?>(nil)
}

/// A populated log in a temp directory, plus precomputed random read positions.
final class LogFixture: Sendable {
    let directory: String
    let log: Log
    let recordCount: Int
    /// 4096 random offsets each (a power of two: the loops wrap with a mask).
    let sealedOffsets: [UInt64]
    let activeOffsets: [UInt64]
    let segmentPaths: [String]
    let mappings: [Mapping]
    let rawPositions: [(file: Int, position: Int)]

    struct Mapping: @unchecked Sendable {  // read-only mapping, unmapped in `remove()`
        let base: UnsafeRawPointer
        let size: Int
    }

    private init(directory: String, log: Log, recordCount: Int, sealedOffsets: [UInt64], activeOffsets: [UInt64],
                 segmentPaths: [String], mappings: [Mapping], rawPositions: [(file: Int, position: Int)]) {
        self.directory = directory
        self.log = log
        self.recordCount = recordCount
        self.sealedOffsets = sealedOffsets
        self.activeOffsets = activeOffsets
        self.segmentPaths = segmentPaths
        self.mappings = mappings
        self.rawPositions = rawPositions
    }

    static func make() async throws -> LogFixture {
        var template = Array("/tmp/spool-bench-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            fatalError("mkdtemp failed")
        }
        let directory = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
        var configuration = LogConfiguration(durability: .none)
        configuration.segmentBytes = segmentBytes
        let log = try Log.open(directory: directory + "/log", configuration: configuration)

        // A pool of distinct random records, appended 64 at a time: one call is one batch.
        let pool = (0..<4096).map { randomBytes(count: recordSize, seed: UInt64($0)) }
        var next = 0
        func appendBatch() async throws {
            let records = (0..<recordsPerBatch).map { pool[(next + $0) & 4095] }
            next += recordsPerBatch
            _ = try await log.append(contentsOf: records)
        }
        while log.segmentBaseOffsets.count < 5 { try await appendBatch() }
        for _ in 0..<64 { try await appendBatch() }
        try await log.flush()

        let bases = log.segmentBaseOffsets
        let activeBase = bases[bases.count - 1]
        let end = log.endOffset
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func random(_ bound: UInt64) -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state % bound
        }
        let sealedOffsets = (0..<4096).map { _ in random(activeBase) }
        let activeOffsets = (0..<4096).map { _ in activeBase + random(end - activeBase) }

        let segmentPaths = bases.map { base -> String in
            let digits = String(base)
            return directory + "/log/" + String(repeating: "0", count: 20 - digits.count) + digits + ".log"
        }
        var mappings: [Mapping] = []
        for path in segmentPaths.dropLast() {
            let fd = open(path, O_RDONLY)
            precondition(fd >= 0)
            var info = stat()
            fstat(fd, &info)
            let size = Int(info.st_size)
            let base = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)!
            precondition(base != MAP_FAILED)
            close(fd)
            mappings.append(Mapping(base: UnsafeRawPointer(base), size: size))
        }
        let rawPositions = (0..<4096).map { _ -> (file: Int, position: Int) in
            let file = Int(random(UInt64(mappings.count)))
            return (file, Int(random(UInt64(mappings[file].size - recordSize))))
        }
        return LogFixture(directory: directory, log: log, recordCount: Int(end), sealedOffsets: sealedOffsets,
                          activeOffsets: activeOffsets, segmentPaths: segmentPaths, mappings: mappings,
                          rawPositions: rawPositions)
    }

    func remove() throws {
        for mapping in mappings { munmap(UnsafeMutableRawPointer(mutating: mapping.base), mapping.size) }
        try log.close()
        _ = system("rm -rf '\(directory)'")
    }
}

/// Records per second, timed around one iteration.
enum RecordsPerSecond {
    static var metric: BenchmarkMetric { BenchmarkMetric.custom("Records (K/s)", polarity: .prefersLarger, useScalingFactor: false) }

    static func record(_ benchmark: Benchmark, records: Int, since start: UInt64) {
        let elapsed = max(BytesPerSecond.now() - start, 1)
        benchmark.measurement(metric, Int(Double(records) * 1_000_000 / Double(elapsed)))
    }
}
