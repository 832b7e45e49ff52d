#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolLog
import SpoolToolSupport

/// `spool bench open`: how long opening a large log takes, after a clean close and after a crash.
struct BenchOpen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open",
        abstract: "Open time of a large log: clean reopen, and a full recovery scan, against a raw read of the same files.",
        discussion: """
        Writes --size-mb of records, closes the log, then measures (median of --repeat runs):
        a clean reopen (the clean-shutdown marker skips the scan); an unclean open after a simulated
        crash with the recovery point removed, so every batch is verified (GB/s of log scanned);
        and, as the baseline, read(2) of every segment file into a buffer, no checksums.
        """
    )

    @Option(name: .long, help: "Data directory for the bench's scratch log (removed afterwards).")
    var data = "./spool-data"

    @Option(name: .long, help: "Size of the log to build, in MiB.")
    var sizeMb = 1024

    @Option(name: .customLong("bytes"), help: "Bytes per record.")
    var recordBytes = 1024

    @Option(name: .long, help: "Runs of each measurement; the median is reported.")
    var `repeat` = 5

    @Flag(name: .long, help: "Drop the page cache before each measured open (needs root): a cold-cache figure.")
    var dropCaches = false

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard sizeMb >= 1 && sizeMb <= 1 << 20 else { throw ValidationError("--size-mb must be between 1 and 1048576 (got \(sizeMb))") }
        guard recordBytes >= 1 && recordBytes <= 1 << 20 else { throw ValidationError("--bytes must be between 1 and 1048576 (got \(recordBytes))") }
        guard `repeat` >= 1 else { throw ValidationError("--repeat must be at least 1 (got \(`repeat`))") }
    }

    func run() async throws {
        try makeDirectory(data)
        let directory = data + "/bench-open"
        removeTree(directory)
        defer { removeTree(directory) }

        // Build the log from distinct random records (a repeated record would compress to nothing).
        let total = sizeMb << 20
        let build = try Log.open(directory: directory, configuration: LogConfiguration(durability: .none))
        var state: UInt64 = 88172645463325252
        let perChunk = max(1, (256 << 10) / recordBytes)
        let chunks: [[[UInt8]]] = (0..<8).map { _ in
            (0..<perChunk).map { _ in
                (0..<recordBytes).map { _ in
                    state ^= state << 13; state ^= state >> 7; state ^= state << 17
                    return UInt8(truncatingIfNeeded: state)
                }
            }
        }
        let done = SharedCounter()
        let progress = ProgressBar(title: "building", total: total, unit: "bytes", enabled: !json) { done.value.load(ordering: .relaxed) }
        var round = 0
        while done.value.load(ordering: .relaxed) < total {
            _ = try await build.append(contentsOf: chunks[round % chunks.count])
            done.value.add(perChunk * recordBytes, ordering: .relaxed)
            round += 1
        }
        try await build.flush()
        try build.close()
        progress.finish()
        let logBytes = segmentBytes(directory)

        var clean: [Double] = []
        var unclean: [Double] = []
        var raw: [Double] = []
        var scanned = 0
        for _ in 0..<`repeat` {
            dropPageCache()
            let t0 = ContinuousClock.now
            let log = try Log.open(directory: directory)
            clean.append((ContinuousClock.now - t0).seconds)
            precondition(log.recovery.cleanShutdown, "expected a clean reopen")
            log.abandon()  // as if the process were killed: no marker
            _ = unlink(directory + "/recovery-point")  // force a scan of every segment

            dropPageCache()
            let t1 = ContinuousClock.now
            let recovered = try Log.open(directory: directory)
            unclean.append((ContinuousClock.now - t1).seconds)
            scanned = recovered.recovery.scannedBytes
            try recovered.close()

            dropPageCache()
            let t2 = ContinuousClock.now
            readEverySegment(directory)
            raw.append((ContinuousClock.now - t2).seconds)
        }
        let cleanMedian = median(clean), uncleanMedian = median(unclean), rawMedian = median(raw)
        let scanRate = Double(scanned) / uncleanMedian / 1e9
        let rawRate = Double(logBytes) / rawMedian / 1e9
        if json {
            print(JSON.object([
                ("benchmark", .string("open")), ("logBytes", .integer(logBytes)), ("recordBytes", .integer(recordBytes)),
                ("dropCaches", .bool(dropCaches)), ("repeat", .integer(`repeat`)),
                ("cleanOpenMilliseconds", .number(cleanMedian * 1000)),
                ("uncleanOpenMilliseconds", .number(uncleanMedian * 1000)), ("scannedBytes", .integer(scanned)),
                ("scanGigabytesPerSecond", .number((scanRate * 100).rounded() / 100)),
                ("rawReadGigabytesPerSecond", .number((rawRate * 100).rounded() / 100)),
                ("scanRatioToRawRead", .number((scanRate / rawRate * 100).rounded() / 100)),
            ]).text)
        } else {
            print("spool bench open: \(format(Double(logBytes) / 1e9, decimals: 2)) GB log of \(recordBytes)-byte records, "
                  + "median of \(`repeat`)\(dropCaches ? ", cold page cache" : ", warm page cache")")
            print("  clean reopen:            \(format(cleanMedian * 1000, decimals: 1)) ms")
            print("  unclean open (full scan): \(format(uncleanMedian * 1000, decimals: 1)) ms, "
                  + "\(format(scanRate, decimals: 2)) GB/s verified (\(formatCount(Double(scanned))) bytes)")
            print("  raw read(2) of the files: \(format(rawMedian * 1000, decimals: 1)) ms, \(format(rawRate, decimals: 2)) GB/s "
                  + "→ the scan runs at \(format(scanRate / rawRate, decimals: 2))× raw read speed")
        }
    }

    private func dropPageCache() {
        guard dropCaches else { return }
        sync()
        let fd = open("/proc/sys/vm/drop_caches", O_WRONLY)
        guard fd >= 0 else { return }
        _ = write(fd, "3\n", 2)
        close(fd)
    }

    private func segmentFiles(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
            if name.hasSuffix(".log") { names.append(directory + "/" + name) }
        }
        return names.sorted()
    }

    private func segmentBytes(_ directory: String) -> Int {
        segmentFiles(directory).reduce(0) { total, path in
            var info = stat()
            return total + (stat(path, &info) == 0 ? Int(info.st_size) : 0)
        }
    }

    /// The baseline: read(2) every segment into one reused buffer.
    private func readEverySegment(_ directory: String) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        for path in segmentFiles(directory) {
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { continue }
            while read(fd, buffer, 1 << 20) > 0 {}
            close(fd)
        }
    }
}
