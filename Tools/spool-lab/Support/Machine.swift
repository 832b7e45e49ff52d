#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives
import Synchronization
import SpoolToolSupport

// What the benches report about the machine they ran on: this one is shared, so every figure is
// printed with the process's CPU time and the load it was measured under.

/// User + system CPU seconds of this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

/// The 1, 5 and 15 minute load averages (`uptime`).
func loadAverage() -> [Double] {
    var values = [Double](repeating: 0, count: 3)
    let count = values.withUnsafeMutableBufferPointer { getloadavg($0.baseAddress!, 3) }
    return count == 3 ? values : []
}

/// The load averages as "1.23 0.98 0.75" for a table ("unknown" when unavailable): this
/// machine is shared, so every figure is printed with the load it was measured under.
func loadAverageText() -> String {
    let values = loadAverage()
    return values.isEmpty ? "unknown" : values.map { format($0, decimals: 2) }.joined(separator: " ")
}

/// The median time, in nanoseconds, for one cache line to go from this thread's core to another
/// thread's core and back (two threads pass a counter on one line back and forth; three rounds
/// of 100,000 round trips). On this shared VM it moved between about 90 ns and 1.5 µs with the
/// host's placement of the two vCPUs, and every hand-off between cores pays it: the dispatch
/// bench prints it beside its figures. NaN when a round takes over 500 ms (the two threads did
/// not get two cores at once: one usable core, or other processes holding them) or the thread
/// cannot be started.
func coreRoundTripNanoseconds() -> Double {
    final class Line: @unchecked Sendable {
        static let trips = 100_000
        /// 2i + 1 from the prober, 2i + 2 back from the echo thread; -1 tells the echo thread to stop.
        let cell: UnsafeMutablePointer<Atomic<Int>>
        init() {
            cell = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128).bindMemory(to: Atomic<Int>.self, capacity: 1)
            cell.initialize(to: Atomic(0))
        }
        deinit {
            cell.deinitialize(count: 1)
            UnsafeMutableRawPointer(cell).deallocate()
        }
    }
    var rounds: [Double] = []
    for _ in 0..<3 {
        let line = Line()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { raw in
            let line = Unmanaged<Line>.fromOpaque(raw!).takeRetainedValue()
            for i in 0..<Line.trips {
                while true {
                    let value = line.cell.pointee.load(ordering: .acquiring)
                    if value == 2 * i + 1 { break }
                    if value < 0 { return nil }
                }
                line.cell.pointee.store(2 * i + 2, ordering: .releasing)
            }
            return nil
        }, Unmanaged.passRetained(line).toOpaque())
        guard created == 0 else { return .nan }
        let started = monotonicNanoseconds()
        var abandoned = false
        trips: for i in 0..<Line.trips {
            line.cell.pointee.store(2 * i + 1, ordering: .releasing)
            var spins = 0
            while line.cell.pointee.load(ordering: .acquiring) != 2 * i + 2 {
                spins &+= 1
                if spins & 4095 == 0 && monotonicNanoseconds() - started > 500_000_000 {
                    abandoned = true
                    break trips
                }
            }
        }
        let elapsed = monotonicNanoseconds() - started
        if abandoned { line.cell.pointee.store(-1, ordering: .releasing) }
        pthread_join(thread, nil)
        if abandoned { return .nan }
        rounds.append(Double(elapsed) / Double(Line.trips))
    }
    return median(rounds)
}

/// The median time, in microseconds, of one 16 KiB overwrite plus `fdatasync` in a scratch file
/// under `directory` (200 of them into a zero-filled and synced file, which is how a log's
/// preallocated segment is written). A sync-durability append can be acknowledged no sooner:
/// the log bench prints it beside its figures, because on this shared VM it changes from one
/// minute to the next (here between about 130 and 300 µs).
func fdatasyncProbeMicroseconds(directory: String) throws(ValidationErrorMessage) -> Double {
    let path = directory + "/fdatasync-probe"
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw ValidationErrorMessage("cannot create \(path): \(String(cString: strerror(errno)))") }
    defer {
        close(fd)
        unlink(path)
    }
    let blockBytes = 16 << 10
    let blocks = 200
    var block = [UInt8](repeating: 0, count: blockBytes)
    var samples: [Double] = []
    samples.reserveCapacity(blocks)
    for pass in 0..<2 {
        for i in 0..<blocks {
            let started = monotonicNanoseconds()
            let written = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, blockBytes, off_t(i * blockBytes)) }
            guard written == blockBytes, pass == 0 || fdatasync(fd) == 0 else {
                throw ValidationErrorMessage("cannot write and sync \(path): \(String(cString: strerror(errno)))")
            }
            if pass == 1 { samples.append(Double(monotonicNanoseconds() - started) / 1000) }
        }
        // The first pass allocates the blocks; the second, timed, overwrites them after this sync.
        if pass == 0 {
            guard fsync(fd) == 0 else { throw ValidationErrorMessage("cannot sync \(path): \(String(cString: strerror(errno)))") }
            block = [UInt8](repeating: 0x5A, count: blockBytes)
        }
    }
    return median(samples)
}
