import SpoolLogTesting
import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// In `sync` mode the writer thread keeps the zero fill and the durable extent ahead of the data
/// (`Log.keepExtentAhead`): it writes and syncs the zeros and rewrites `log-manifest` beside the
/// group commits, so no acknowledgement waits for that work while the data stays within the
/// extent already recorded. Its failures poison the log like any failed write or sync.
@Suite struct LogExtentKeeperTests {
    /// 1 MiB segments zero-filled 64 KiB at a time, records of 1000 bytes.
    static func configuration(_ faults: FaultInjectingSyscalls) -> LogConfiguration {
        var configuration = LogConfiguration(durability: .sync)
        configuration.segmentBytes = 1 << 20
        configuration.preallocationBytes = 64 << 10
        configuration.maxRecordBytes = 4096
        configuration.compressionThresholdBytes = Int.max
        configuration.syscalls = faults
        return configuration
    }

    static let recordBytes = 1000

    static func recordedExtent(_ directory: String) throws -> Int? {
        try LogManifest.read(directory: directory, syscalls: SystemCalls())?.segments.last?.extent.map { Int($0) }
    }

    /// The calling thread's name, from `/proc/thread-self/comm` (the log names its threads).
    static func currentThreadName() -> String {
        let fd = open("/proc/thread-self/comm", O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return "" }
        return String(decoding: buffer[0..<n].filter { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
    }

    /// A rewrite of `log-manifest` that raises the extent is held (whichever thread makes it):
    /// appends that fit within the extent recorded before it are still acknowledged meanwhile,
    /// and after the release everything acknowledged is read back after a reopen. (Before, the
    /// only syncer made that rewrite between two group commits, and every append waited for it.)
    @Test(.timeLimit(.minutes(10))) func appendsWithinTheRecordedExtentAreAcknowledgedWhileAnExtentRewriteIsHeld() async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults))
        var acknowledged = try await LogFaultInjectionTests.appendAcknowledged(log, 0..<1, size: Self.recordBytes)
        // The first acknowledgement recorded the first extent; hold the next rewrite of the manifest.
        let firstExtent = try #require(try Self.recordedExtent(dir.log))
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let held = Atomic<Bool>(false)
        faults.beforeCall(.rename, path: .suffix("/log-manifest.tmp")) {
            guard !held.exchange(true, ordering: .sequentiallyConsistent) else { return }
            entered.signal()
            _ = release.wait(timeout: .now() + .seconds(90))
        }
        // Appends until the data comes close enough to the extent for the next step to be filled.
        var next = 1
        while entered.wait(timeout: .now()) != .success {
            try #require(next < 200, "no extent rewrite after \(next) appends of \(Self.recordBytes) bytes")
            acknowledged += try await LogFaultInjectionTests.appendAcknowledged(log, next..<(next + 1), size: Self.recordBytes)
            next += 1
        }
        // The rewrite is held. The extent on disk is still the first; appends that end within it
        // need no rewrite and are acknowledged now.
        #expect(try Self.recordedExtent(dir.log) == firstExtent)
        let dataEnd = try #require(log.segmentLayout.last).bytes
        let fitting = (firstExtent - dataEnd) / 2 / (Self.recordBytes + 64)
        try #require(fitting >= 4, "only \(fitting) records fit below the recorded extent \(firstExtent) (data ends at \(dataEnd))")
        acknowledged += try await LogFaultInjectionTests.appendAcknowledged(log, next..<(next + fitting), size: Self.recordBytes)
        #expect(log.endOffset == UInt64(next + fitting))
        release.signal()
        try log.close()

        let reopened = try LogFaultInjectionTests.expectSurvives(acknowledged, directory: dir.log)
        #expect(reopened.endOffset == UInt64(acknowledged.count))
        try reopened.close()
    }

    /// The writer thread's zero fill fails, at its write or at its sync: the log is poisoned
    /// (later appends get ``LogError/Code/poisoned``), and a reopen holds every acknowledged record.
    @Test(arguments: [FaultInjectingSyscalls.Operation.pwrite, .fdatasync])
    func aFailedZeroFillPoisonsTheLogAndLosesNothingAcknowledged(operation: FaultInjectingSyscalls.Operation) async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults))
        let writerCall = FaultInjectingSyscalls.PathFilter.matching { path in
            path.hasSuffix(".log") && Self.currentThreadName() == "spool-writer"
        }
        faults.fail(operation, errno: EIO, path: writerCall, occurrence: .only(1))

        var acknowledged: [LogRecord] = []
        var inFlight: [LogRecord] = []
        var failure: LogError?
        for i in 0..<600 {
            do {
                acknowledged += try await LogFaultInjectionTests.appendAcknowledged(log, i..<(i + 1), size: Self.recordBytes)
            } catch {
                failure = error as? LogError
                // Written, perhaps, but never acknowledged.
                inFlight = [LogRecord(offset: UInt64(i), payload: payload(i, size: Self.recordBytes))]
                break
            }
        }
        #expect(faults.calls(operation, path: .suffix(".log")).contains { $0.injected != nil }, "the writer thread's \(operation) never failed")
        #expect(failure?.code == .poisoned, "\(String(describing: failure))")
        let later = await #expect(throws: LogError.self) { try await log.append([1]) }
        #expect(later?.code == .poisoned)
        log.abandon()

        let reopened = try LogFaultInjectionTests.expectSurvives(acknowledged, inFlight: inFlight, directory: dir.log)
        try reopened.close()
    }
}
