import SpoolLogTesting
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// Failed writes and syncs: the caller gets a typed error, the log refuses every later call
/// (it is poisoned, never retried), and a reopen finds every acknowledged record.
@Suite struct LogFaultInjectionTests {
    /// Small segments so that rolls happen; no preallocation unless asked, so that the next
    /// `pwrite` of a segment is the next batch.
    static func configuration(_ faults: FaultInjectingSyscalls, durability: Durability = .sync,
                              preallocation: Bool = false, concurrentSyncs: Int? = nil) -> LogConfiguration {
        var configuration = LogConfiguration(durability: durability)
        if let concurrentSyncs { configuration.concurrentSyncs = concurrentSyncs }
        configuration.segmentBytes = 64 << 10
        configuration.maxRecordBytes = 16 << 10
        if !preallocation { configuration.preallocationBytes = 0 }
        configuration.syscalls = faults
        return configuration
    }

    /// Appends `offsets.count` records one at a time, each awaited; returns them as acknowledged.
    static func appendAcknowledged(_ log: Log, _ offsets: Range<Int>, size: Int = 200) async throws -> [LogRecord] {
        var records: [LogRecord] = []
        for i in offsets {
            let offset = try await log.append(payload(i, size: size))
            records.append(LogRecord(offset: offset, payload: payload(i, size: size)))
        }
        return records
    }

    /// Reopens `directory` with real system calls and checks that it holds every acknowledged
    /// record, followed at most by the records that were in flight when the fault hit (written
    /// or not, but never altered). Returns the reopened log.
    @discardableResult
    static func expectSurvives(_ acknowledged: [LogRecord], inFlight: [LogRecord] = [], directory: String,
                               sourceLocation: SourceLocation = #_sourceLocation) throws -> Log {
        let log = try Log.open(directory: directory, configuration: LogConfiguration(durability: .sync))
        let records = try readAll(log)
        #expect(Array(records.prefix(acknowledged.count)) == acknowledged, "an acknowledged record was lost or altered",
                sourceLocation: sourceLocation)
        let extra = Array(records.dropFirst(acknowledged.count))
        #expect(extra == Array(inFlight.prefix(extra.count)), "records after the acknowledged ones are not the ones in flight",
                sourceLocation: sourceLocation)
        #expect(log.endOffset == UInt64(records.count), sourceLocation: sourceLocation)
        return log
    }

    /// Polls `condition` every millisecond, up to `limit` times; whether it held. Polled rather than
    /// waited for: a blocked thread of the cooperative pool (two here, shared with the tests running
    /// alongside) could be the one the log needs to get there. A liveness bound, not a timing assertion.
    static func poll(upTo limit: Int, until condition: () -> Bool) async throws -> Bool {
        for _ in 0..<limit {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(1))
        }
        return condition()
    }

    /// Makes the next fdatasync of a segment fail with EIO, after holding it until the test signals
    /// `release` (or `atMost` has passed); `entered` is signalled when the sync starts.
    static func failNextSyncHeld(_ faults: FaultInjectingSyscalls, atMost: DispatchTimeInterval)
        -> (entered: DispatchSemaphore, release: DispatchSemaphore) {
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        faults.fail(.fdatasync, errno: EIO, path: .suffix(".log"), occurrence: .only(1))
        faults.beforeCall(.fdatasync, path: .suffix(".log"), occurrence: .only(1)) {
            entered.signal()
            _ = release.wait(timeout: .now() + atMost)
        }
        return (entered, release)
    }

    static func outcome<T>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    /// Asserts `error` is `.poisoned` caused by a `SystemError` with `errno`.
    static func expectPoisoned(_ error: LogError?, errno: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(error?.code == .poisoned, "\(String(describing: error))", sourceLocation: sourceLocation)
        #expect((error?.underlying as? SystemError)?.errno == errno, "\(String(describing: error))", sourceLocation: sourceLocation)
    }

    /// Every later call of a poisoned log throws `.poisoned`.
    static func expectRefusesEverything(_ log: Log, sourceLocation: SourceLocation = #_sourceLocation) async {
        let append = await #expect(throws: LogError.self, sourceLocation: sourceLocation) { try await log.append([1, 2, 3]) }
        #expect(append?.code == .poisoned, sourceLocation: sourceLocation)
        let batch = await #expect(throws: LogError.self, sourceLocation: sourceLocation) { try await log.append(contentsOf: [[1], [2]]) }
        #expect(batch?.code == .poisoned, sourceLocation: sourceLocation)
        let flush = await #expect(throws: LogError.self, sourceLocation: sourceLocation) { try await log.flush() }
        #expect(flush?.code == .poisoned, sourceLocation: sourceLocation)
        let delete = #expect(throws: LogError.self, sourceLocation: sourceLocation) { try log.deleteSegments(below: log.endOffset) }
        #expect(delete?.code == .poisoned, sourceLocation: sourceLocation)
        let compact = #expect(throws: LogError.self, sourceLocation: sourceLocation) { try log.compact { _ in true } }
        #expect(compact?.code == .poisoned, sourceLocation: sourceLocation)
    }

    // MARK: fdatasync

    @Test func failedFdatasyncPoisonsTheLogWithoutRetrying() async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults))
        let acknowledged = try await Self.appendAcknowledged(log, 0..<20)
        faults.fail(.fdatasync, errno: EIO, path: .suffix(".log"), occurrence: .only(1))

        let failed = await #expect(throws: LogError.self) { try await log.append(payload(20, size: 200)) }
        Self.expectPoisoned(failed, errno: EIO)
        #expect(failed?.path == segmentPath(dir.log, 0))
        #expect(log.endOffset == 20, "a record whose sync failed was acknowledged")
        await Self.expectRefusesEverything(log)

        // No retry: after a failed fdatasync the kernel may have dropped the dirty pages, so a
        // second one could report success for lost data.
        let trace = faults.trace
        let failedSync = try #require(trace.lastIndex { $0.operation == .fdatasync && $0.injected != nil })
        #expect(trace[(failedSync + 1)...].filter { $0.operation == .fdatasync || $0.operation == .fsync }.isEmpty)

        log.abandon()
        let reopened = try Self.expectSurvives(acknowledged, inFlight: [LogRecord(offset: 20, payload: payload(20, size: 200))],
                                               directory: dir.log)
        try reopened.close()
    }

    /// A poisoned log's writer thread sleeps until it is closed. It used to spin once it had gone
    /// round its loop after the poison (always when its own write failed), because the intake's
    /// wait returned at once while the log refused appends: a core burnt until `close()`.
    @Test(arguments: [FaultInjectingSyscalls.Operation.pwrite, .fdatasync])
    func aPoisonedLogsWriterSleepsUntilClosed(failing operation: FaultInjectingSyscalls.Operation) async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults))
        _ = try await Self.appendAcknowledged(log, 0..<5)
        faults.fail(operation, errno: EIO, path: .suffix(".log"), occurrence: .only(1))
        let failed = await #expect(throws: LogError.self) { try await log.append(payload(5, size: 200)) }
        Self.expectPoisoned(failed, errno: EIO)

        let before = log.intake.writerWakeups.load(ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(200))
        let during = log.intake.writerWakeups.load(ordering: .relaxed) - before
        // Asleep: no wake-up at all without a push. Spinning: hundreds of thousands in 200 ms,
        // and still thousands on a machine loaded enough to run it for a millisecond.
        #expect(during <= 2, "the poisoned log's writer returned from its wait \(during) times in 200 ms")
        // And the refused calls still fail fast and `close()` still stops it.
        await Self.expectRefusesEverything(log)
        #expect(throws: LogError.self) { try log.close() }
    }

    @Test func appendsInFlightWhenFdatasyncFailsAllFail() async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults))
        let acknowledged = try await Self.appendAcknowledged(log, 0..<10)
        faults.fail(.fdatasync, errno: EIO, path: .suffix(".log"), occurrence: .from(1))

        // Eight concurrent appenders: none may be acknowledged, since no fdatasync succeeds.
        let outcomes = await withTaskGroup(of: LogError?.self) { group in
            for i in 10..<18 {
                group.addTask {
                    do { _ = try await log.append(payload(i, size: 200)); return nil } catch { return error as? LogError }
                }
            }
            return await group.reduce(into: [LogError?]()) { $0.append($1) }
        }
        #expect(outcomes.count == 8)
        for error in outcomes { #expect(error?.code == .poisoned) }
        #expect(log.endOffset == 10)
        await Self.expectRefusesEverything(log)

        log.abandon()
        // The in-flight records may be on disk in any order of offsets 10..<18, but always whole.
        let reopened = try Log.open(directory: dir.log, configuration: LogConfiguration(durability: .sync))
        let records = try readAll(reopened)
        #expect(Array(records.prefix(10)) == acknowledged)
        for record in records.dropFirst(10) {
            #expect(record.offset >= 10 && record.offset < 18)
        }
        try reopened.close()
    }

    /// Overlapping syncs must not let a later, successful fdatasync acknowledge a record whose own
    /// fdatasync failed: with one open file description, Linux reports a writeback error to one
    /// fsync only, so the later one succeeds although the record's pages may be lost.
    @Test func aFailedSyncIsNotCoveredByALaterOverlappingSync() async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults, concurrentSyncs: 3))
        _ = try await Self.appendAcknowledged(log, 0..<3)

        // A log that waits for this sync's outcome gets it after a while; one that does not
        // has acknowledged the second append by then.
        let (entered, release) = Self.failNextSyncHeld(faults, atMost: .seconds(2))
        async let first = Self.outcome { try await log.append(payload(3, size: 200)) }
        // Polled without blocking: a blocking wait here would hold one of the cooperative pool's
        // threads, and with the other held by another test the append above could not even start.
        let started = try await Self.poll(upTo: 30_000) { entered.wait(timeout: .now()) == .success }
        #expect(started, "the first append's fdatasync never started")
        // Written while the first sync is held; another syncer picks it up.
        let second = await Self.outcome { try await log.append(payload(4, size: 200)) }
        release.signal()
        let firstOutcome = await first

        // Its fdatasync failed, so it must not be acknowledged — even though a later, overlapping sync
        // (which may not see the write-back error) succeeded. The later append fails with it.
        #expect(throws: LogError.self) { try firstOutcome.get() }
        #expect(throws: LogError.self) { try second.get() }
        log.abandon()
    }

    /// With several syncers, an append that arrives while a sync is in flight wakes no writer: another
    /// syncer writes it and starts its own fdatasync while the first is still held (the pipelining
    /// an append relies on to wait for about one sync, not two). It is still acknowledged only after
    /// the held sync returns, in claim order, and both land at their offsets.
    @Test func anotherSyncerWritesAndSyncsWhatArrivesDuringASync() async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults, concurrentSyncs: 3))
        let acknowledged = try await Self.appendAcknowledged(log, 0..<3)

        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        faults.beforeCall(.fdatasync, path: .suffix(".log"), occurrence: .only(1)) {
            entered.signal()
            _ = release.wait(timeout: .now() + .seconds(60))
        }
        let syncs = { faults.calls(.fdatasync, path: .suffix(".log")).count }
        let writes = { faults.calls(.pwrite, path: .suffix(".log")).count }
        async let first = Self.outcome { try await log.append(payload(3, size: 200)) }
        let started = try await Self.poll(upTo: 30_000) { entered.wait(timeout: .now()) == .success }
        #expect(started, "the first append's fdatasync never started")
        let syncsBefore = syncs()
        let writesBefore = writes()
        async let second = Self.outcome { try await log.append(payload(4, size: 200)) }
        let secondSynced = try await Self.poll(upTo: 30_000) { syncs() > syncsBefore }
        #expect(secondSynced, "no second fdatasync started while the first was held")
        #expect(writes() > writesBefore, "the second append was not written while the first sync was held")
        #expect(log.endOffset == 3, "the second append was acknowledged before the sync held ahead of it")
        release.signal()
        let outcomes = await [first, second]
        #expect(try outcomes.map { try $0.get() } == [3, 4])
        try log.close()

        let reopened = try Log.open(directory: dir.log, configuration: LogConfiguration())
        #expect(try readAll(reopened) == acknowledged + [3, 4].map { LogRecord(offset: UInt64($0), payload: payload($0, size: 200)) })
        try reopened.close()
    }

    /// A sync that acknowledges more than ``Log/callersResumedFromPool`` callers while the next
    /// appends already wait in the intake hands the callers to a task on the cooperative pool
    /// (``Log/resumesFromPool(_:)``). Each caller still gets the offset its own record was
    /// written at, none is lost or told twice, and all read back after a reopen.
    @Test func aLargeGroupOfCallersEachGetTheirOwnOffset() async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults, concurrentSyncs: 1))
        let acknowledged = try await Self.appendAcknowledged(log, 0..<3, size: 100)

        // Sync 1 covers append 3; sync 2 the large group that waited behind it.
        let entered = [DispatchSemaphore(value: 0), DispatchSemaphore(value: 0)]
        let release = [DispatchSemaphore(value: 0), DispatchSemaphore(value: 0)]
        for i in 0..<2 {
            faults.beforeCall(.fdatasync, path: .suffix(".log"), occurrence: .only(i + 1)) {
                entered[i].signal()
                _ = release[i].wait(timeout: .now() + .seconds(60))
            }
        }
        let syncEntered = { (i: Int) in try await Self.poll(upTo: 30_000) { entered[i].wait(timeout: .now()) == .success } }
        async let held = log.append(payload(3, size: 100))
        #expect(try await syncEntered(0), "the first append's fdatasync never started")
        let callers = Log.callersResumedFromPool + 72
        let pushed = log.intake.pushCountForTesting
        let group = Task {
            try await withThrowingTaskGroup(of: (Int, UInt64).self) { tasks in
                for caller in 0..<callers {
                    tasks.addTask { (caller, try await log.append(payload(1000 + caller, size: 100))) }
                }
                var offsets: [Int: UInt64] = [:]
                for try await (caller, offset) in tasks {
                    #expect(offsets.updateValue(offset, forKey: caller) == nil, "caller \(caller) was resumed twice")
                }
                return offsets
            }
        }
        #expect(try await Self.poll(upTo: 30_000) { log.intake.pushCountForTesting >= pushed + callers },
                "the appends never reached the intake")
        release[0].signal()
        #expect(try await held == 3)
        #expect(try await syncEntered(1), "the large group's fdatasync never started")
        // The next append waits in the intake when the large group is acknowledged.
        async let last = log.append(payload(9999, size: 100))
        #expect(try await Self.poll(upTo: 30_000) { log.intake.pushCountForTesting >= pushed + callers + 1 })
        release[1].signal()
        let offsets = try await group.value
        #expect(offsets.count == callers)
        #expect(Set(offsets.values) == Set(4..<UInt64(4 + callers)), "the offsets are the ones after the held append")
        for (caller, offset) in offsets {
            #expect(try log.read(at: offset) == payload(1000 + caller, size: 100), "caller \(caller) got offset \(offset)")
        }
        #expect(try await last == UInt64(4 + callers))
        try log.close()

        let reopened = try Log.open(directory: dir.log, configuration: LogConfiguration())
        let records = try readAll(reopened)
        #expect(records.prefix(4) == (acknowledged + [LogRecord(offset: 3, payload: payload(3, size: 100))])[...])
        #expect(records.count == 4 + callers + 1)
        for (caller, offset) in offsets where Int(offset) < records.count {
            #expect(records[Int(offset)].payload == payload(1000 + caller, size: 100))
        }
        try reopened.close()
    }

    /// With the only syncer inside a sync, two more appends arrive and wait for it (it writes them
    /// itself, after its sync). When the sync in flight fails, none of the three may be
    /// acknowledged: not the one it covered, not the two behind it (the failure poisons the log
    /// before any later sync could cover them), and no fdatasync may follow the failed one.
    /// (With several syncers, the appends behind a held sync are written and synced meanwhile:
    /// ``aFailedSyncIsNotCoveredByALaterOverlappingSync()``.)
    @Test func aFailedSyncFailsTheAppendsBehindIt() async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults, concurrentSyncs: 1))
        let acknowledged = try await Self.appendAcknowledged(log, 0..<3)

        let (entered, release) = Self.failNextSyncHeld(faults, atMost: .seconds(60))
        async let first = Self.outcome { try await log.append(payload(3, size: 200)) }
        let started = try await Self.poll(upTo: 30_000) { entered.wait(timeout: .now()) == .success }
        #expect(started, "the first append's fdatasync never started")
        let pushesBefore = log.intake.pushCountForTesting
        async let second = Self.outcome { try await log.append(payload(4, size: 200)) }
        async let third = Self.outcome { try await log.append(payload(5, size: 200)) }
        // Released once both wait in the intake.
        let queued = try await Self.poll(upTo: 30_000) { log.intake.pushCountForTesting >= pushesBefore + 2 }
        #expect(queued, "the appends behind the held sync never reached the intake")
        release.signal()
        let outcomes = await [first, second, third]

        for outcome in outcomes {
            let error = #expect(throws: LogError.self) { try outcome.get() }
            Self.expectPoisoned(error, errno: EIO)
        }
        #expect(log.endOffset == 3, "an append behind the failed sync was acknowledged")
        let trace = faults.trace
        let failedSync = try #require(trace.lastIndex { $0.operation == .fdatasync && $0.injected != nil })
        #expect(trace[(failedSync + 1)...].filter { $0.operation == .fdatasync || $0.operation == .fsync }.isEmpty,
                "a sync after the failed one could report success for pages the kernel dropped")
        await Self.expectRefusesEverything(log)

        log.abandon()
        let reopened = try Self.expectSurvives(acknowledged, inFlight: (3..<6).map { LogRecord(offset: UInt64($0), payload: payload($0, size: 200)) },
                                               directory: dir.log)
        try reopened.close()
    }

    // MARK: pwrite

    @Test(arguments: [EIO, ENOSPC])
    func failedPwritePoisonsTheLog(errno: Int32) async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults))
        let acknowledged = try await Self.appendAcknowledged(log, 0..<20)
        faults.fail(.pwrite, errno: errno, path: .suffix(".log"), occurrence: .only(1))

        let failed = await #expect(throws: LogError.self) { try await log.append(payload(20, size: 200)) }
        Self.expectPoisoned(failed, errno: errno)
        #expect(log.endOffset == 20)
        await Self.expectRefusesEverything(log)
        // close() reports the failure too (and still releases the directory).
        let closeError = #expect(throws: LogError.self) { try log.close() }
        #expect(closeError?.code == .poisoned)

        let reopened = try Self.expectSurvives(acknowledged, directory: dir.log)
        #expect(reopened.endOffset == 20)
        #expect(try await reopened.append([7]) == 20)
        try reopened.close()
    }

    @Test func shortWritesAreContinued() async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        // Every pwrite (segments, zero-fill, indexes' checkpoints) writes at most 97 bytes.
        faults.shortenWrites(to: 97)
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults, preallocation: true))
        var written: [LogRecord] = []
        for i in 0..<30 {
            let bytes = payload(i, size: 3000)
            written.append(LogRecord(offset: try await log.append(bytes), payload: bytes))
        }
        let range = try await log.append(contentsOf: [payload(30, size: 10), payload(31, size: 5000)])
        written.append(LogRecord(offset: range.lowerBound, payload: payload(30, size: 10)))
        written.append(LogRecord(offset: range.lowerBound + 1, payload: payload(31, size: 5000)))

        #expect(log.segmentBaseOffsets.count >= 2, "the records should span a roll")
        #expect(written.map(\.offset) == Array(0..<32))
        #expect(faults.calls(.pwrite).contains { $0.injected == .shortWrite(bytes: 97) })
        for record in written { #expect(try log.read(at: record.offset) == record.payload) }
        try log.close()

        let reopened = try Log.open(directory: dir.log, configuration: LogConfiguration())
        #expect(reopened.recovery.cleanShutdown)
        #expect(try readAll(reopened) == written)
        try reopened.close()
    }

    @Test func aShortWriteFollowedBySuccessIsAcknowledged() async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults))
        var written = try await Self.appendAcknowledged(log, 0..<5)
        faults.shortenWrites(to: 7, path: .suffix(".log"), occurrence: .only(1))
        let bytes = payload(5, size: 1000)
        #expect(try await log.append(bytes) == 5)
        written.append(LogRecord(offset: 5, payload: bytes))
        written += try await Self.appendAcknowledged(log, 6..<10)

        let pwrites = faults.calls(.pwrite, path: .suffix(".log"))
        let short = try #require(pwrites.firstIndex { $0.injected == .shortWrite(bytes: 7) })
        #expect(pwrites.count > short + 1 && pwrites[short + 1].errno == nil, "the rest of the batch was not written")
        #expect(try readAll(log) == written)
        log.abandon()

        let reopened = try Self.expectSurvives(written, directory: dir.log)
        #expect(reopened.endOffset == 10)
        try reopened.close()
    }

    @Test(arguments: [EIO, ENOSPC])
    func aShortWriteFollowedByAnErrorPoisons(errno: Int32) async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults))
        let acknowledged = try await Self.appendAcknowledged(log, 0..<5)
        faults.shortenWrites(to: 7, path: .suffix(".log"), occurrence: .only(1))
        faults.fail(.pwrite, errno: errno, path: .suffix(".log"), occurrence: .only(2))

        let failed = await #expect(throws: LogError.self) { try await log.append(payload(5, size: 1000)) }
        Self.expectPoisoned(failed, errno: errno)
        await Self.expectRefusesEverything(log)
        log.abandon()

        // The 7 bytes written are a torn tail: cut at reopen, and the next append takes offset 5.
        let reopened = try Self.expectSurvives(acknowledged, directory: dir.log)
        #expect(try readAll(reopened) == acknowledged)
        #expect(reopened.recovery.truncatedSegment == segmentPath(dir.log, 0))
        #expect(try await reopened.append([1]) == 5)
        try reopened.close()
    }

    // MARK: Segment roll

    /// A failure at one step of a segment roll.
    enum RollFault: CaseIterable, Sendable, CustomTestStringConvertible {
        /// Trimming the full segment to its written size.
        case trimSealedSegment
        /// Syncing the directory after creating the next segment.
        case syncDirectory
        /// Creating the next segment.
        case createNextSegment
        /// Installing the new recovery point.
        case installRecoveryPoint
        /// Zero-filling the next segment (a full disk).
        case preallocateNextSegment

        var testDescription: String { "\(self)" }

        var operation: FaultInjectingSyscalls.Operation {
            switch self {
            case .trimSealedSegment: .ftruncate
            case .syncDirectory: .fsync
            case .createNextSegment: .open
            case .installRecoveryPoint: .rename
            case .preallocateNextSegment: .pwrite
            }
        }

        var errno: Int32 {
            switch self {
            case .trimSealedSegment, .syncDirectory, .installRecoveryPoint: EIO
            case .createNextSegment, .preallocateNextSegment: ENOSPC
            }
        }

        func path(_ directory: String) -> FaultInjectingSyscalls.PathFilter {
            let firstSegment = segmentPath(directory, 0)
            switch self {
            case .trimSealedSegment: return .suffix(".log")
            case .syncDirectory: return .matching { $0 == directory }
            case .installRecoveryPoint: return .suffix("/recovery-point.tmp")
            case .createNextSegment, .preallocateNextSegment: return .matching { $0.hasSuffix(".log") && $0 != firstSegment }
            }
        }
    }

    @Test(arguments: RollFault.allCases)
    func aFailedRollPoisonsTheLog(fault: RollFault) async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults, preallocation: true))
        // After open, which syncs the directory and installs the first recovery point itself, and
        // after the first acknowledged append, whose manifest rewrite (the segment's first-batch
        // checksum) syncs the directory too: the fault is for the roll's.
        var acknowledged: [LogRecord] = []
        let first = payload(0, size: 1000)
        acknowledged.append(LogRecord(offset: try await log.append(first), payload: first))
        faults.fail(fault.operation, errno: fault.errno, path: fault.path(dir.log), occurrence: .only(1))

        var failure: LogError?
        for i in 1..<200 {
            let bytes = payload(i, size: 1000)
            do {
                acknowledged.append(LogRecord(offset: try await log.append(bytes), payload: bytes))
            } catch {
                // `append` throws `LogError` (typed throws).
                failure = error
                break
            }
        }
        let error = try #require(failure, "no append failed, so the fault never hit a roll")
        Self.expectPoisoned(error, errno: fault.errno)
        #expect(faults.trace.contains { $0.operation == fault.operation && $0.injected == .fail(errno: fault.errno) })
        #expect(acknowledged.count > 10, "the fault hit before the first roll")
        #expect(log.endOffset == UInt64(acknowledged.count))
        await Self.expectRefusesEverything(log)
        log.abandon()

        let reopened = try Self.expectSurvives(acknowledged, directory: dir.log)
        #expect(try readAll(reopened) == acknowledged, "the batch whose roll failed was written")
        // The reopened log goes on, across the next roll too.
        var more: [LogRecord] = []
        for i in 0..<80 {
            let bytes = payload(1000 + i, size: 1000)
            more.append(LogRecord(offset: try await reopened.append(bytes), payload: bytes))
        }
        #expect(more.map(\.offset) == Array(UInt64(acknowledged.count)..<UInt64(acknowledged.count + 80)))
        #expect(try readAll(reopened) == acknowledged + more)
        try reopened.close()
    }

    // MARK: The fault layer itself

    @Test func faultsMatchByOperationPathAndOccurrence() throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        faults.fail(.fsync, errno: ENOSPC, path: .suffix(".b"), occurrence: .only(2))
        faults.fail(.unlink, errno: EROFS, occurrence: .from(4))
        let a = try faults.open(dir.path + "/x.a", flags: O_RDWR | O_CREAT, mode: 0o600)
        let b = try faults.open(dir.path + "/x.b", flags: O_RDWR | O_CREAT, mode: 0o600)
        try faults.fsync(a)
        try faults.fsync(b)
        try faults.fsync(a)
        #expect(throws: SystemError(call: "fsync", errno: ENOSPC, path: dir.path + "/x.b")) { try faults.fsync(b) }
        try faults.fsync(b)
        faults.close(a)
        faults.close(b)
        for name in ["x.a", "x.b"] { try faults.unlink(dir.path + "/" + name) }
        #expect(throws: SystemError.self) { try faults.unlink(dir.path + "/x.c") }  // real ENOENT
        #expect(throws: SystemError(call: "unlink", errno: EROFS, path: dir.path + "/x.d")) { try faults.unlink(dir.path + "/x.d") }

        let trace = faults.trace
        #expect(trace.map(\.operation) == [.open, .open, .fsync, .fsync, .fsync, .fsync, .fsync, .close, .close,
                                           .unlink, .unlink, .unlink, .unlink])
        #expect(trace.compactMap(\.step) == Array(1...11))
        #expect(trace[9].errno == nil && trace[11].errno == ENOENT && trace[11].injected == nil)
        #expect(trace[12].injected == .fail(errno: EROFS))
        #expect(faults.calls(.fsync, path: .suffix(".b")).map(\.errno) == [nil, ENOSPC, nil])
    }

    @Test func aCrashFailsEveryCallFromItsStepOn() throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let fd = try faults.open(dir.path + "/file", flags: O_RDWR | O_CREAT, mode: 0o600)  // step 1
        faults.crash(atStep: 3)
        try [UInt8](repeating: 1, count: 10).withUnsafeBytes { _ = try faults.pwrite(fd, $0, at: 0) }  // step 2
        #expect(!faults.hasCrashed)
        #expect(throws: SystemError.self) { try faults.fsync(fd) }  // step 3: the crash
        #expect(faults.hasCrashed)
        #expect(throws: SystemError.self) { try faults.fileSize(fd) }  // not mutating, fails too
        #expect(throws: SystemError.self) { try faults.listDirectory(dir.path) }
        faults.close(fd)
        #expect(fileSize(dir.path + "/file") == 10)
        #expect(faults.stepCount == 3)
        #expect(faults.trace.last?.operation == .close && faults.trace.last?.errno == nil)
    }
}
