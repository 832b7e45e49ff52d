#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import Synchronization
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// `close()` and `abandon()` called while an `fdatasync` is in flight, with several syncers:
/// every syncer must stop, so that the call returns. Found by the power-loss workloads
/// (`LogPowerLossTests`): the syncer that finished the last sync exited without waking the
/// others, which then waited forever for work, and `close()` for them in `pthread_join`.
@Suite struct LogCloseWhileSyncingTests {
    @Test(arguments: [false, true])
    func stoppingWhileASyncIsInFlightReturns(abandoning: Bool) async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        var configuration = LogConfiguration(durability: .sync)
        configuration.concurrentSyncs = 3
        configuration.syscalls = faults
        let log = try Log.open(directory: dir.log, configuration: configuration)

        // Hold the first fdatasync of the segment until the log is stopping.
        let gate = Gate()
        faults.beforeCall(.fdatasync, path: .suffix(".log"), occurrence: .only(1)) {
            gate.entered.store(true, ordering: .sequentiallyConsistent)
            while !gate.released.load(ordering: .sequentiallyConsistent) { usleep(1000) }
        }
        let append = Task { try await log.append([1, 2, 3]) }
        while !gate.entered.load(ordering: .sequentiallyConsistent) { try await Task.sleep(nanoseconds: 1_000_000) }

        let stopped = Gate()
        startDetachedThread {
            if abandoning { log.abandon() } else { try? log.close() }
            stopped.released.store(true, ordering: .sequentiallyConsistent)
        }
        // Let the writer finish and the idle syncers go back to waiting, then let the sync return.
        while !log.pipelineLock.withLock({ log.writerDone }) { try await Task.sleep(nanoseconds: 1_000_000) }
        try await Task.sleep(nanoseconds: 50_000_000)
        gate.released.store(true, ordering: .sequentiallyConsistent)

        var waited = 0
        while !stopped.released.load(ordering: .sequentiallyConsistent) && waited < 10_000 {
            try await Task.sleep(nanoseconds: 1_000_000)
            waited += 1
        }
        let returned = stopped.released.load(ordering: .sequentiallyConsistent)
        #expect(returned, "\(abandoning ? "abandon()" : "close()") did not return")
        guard returned else { return }
        if abandoning {
            _ = try? await append.value
        } else {
            #expect(try await append.value == 0, "close() completes the appends that were waiting")
        }
    }
}

private final class Gate: Sendable {
    let entered = Atomic<Bool>(false)
    let released = Atomic<Bool>(false)
}
