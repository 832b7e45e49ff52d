#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import Synchronization
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// Power loss, simulated through the system-call layer (``PowerLossSyscalls``): random
/// workloads are cut at a random system call, every byte not yet synced and every directory
/// entry not yet made durable is dropped, and the log is reopened.
///
/// What is asserted, at every reopen:
/// - the log opens (in ``PowerLossSyscalls/Writeback/torn(seed:)`` mode, a hole left by unsynced
///   pages may make it refuse with `corruptBatch`, as documented; then the hole must lie after
///   everything durable, which the check below proves after cutting it as `spool recover` would);
/// - every record that had to be durable is there at its offset with its bytes: in `.sync` mode
///   every acknowledged record; in every mode every record acknowledged before a `flush()` that
///   returned, every record in a segment that was sealed (rolled); in `.interval` mode every record
///   acknowledged before the start of a completed `fdatasync` of its segment;
/// - every record returned is intact (records describe themselves: see ``PowerLossRecord``) and
///   no record appears twice;
/// - a record returned by one reopen is returned by every later one.
///
/// Seeds: each test draws a seed (or takes `SPOOL_TEST_SEED`) and prints it with every failure;
/// the seed replays the choices (workload, cut points, torn pages), not the thread interleaving.
@Suite struct LogPowerLossTests {
    // MARK: The layer itself

    @Test func unsyncedBytesAndSizeAreDroppedAndSyncedOnesKept() throws {
        let dir = TemporaryDirectory()
        let power = PowerLossSyscalls()
        let path = dir.path + "/file"
        let fd = try power.open(path, flags: O_RDWR | O_CREAT, mode: 0o600)
        try power.fsyncDirectory(dir.path)
        try power.pwriteAll(fd, Array(repeating: 1, count: 10_000), at: 0)
        try power.fdatasync(fd)
        try power.pwriteAll(fd, Array(repeating: 2, count: 100), at: 50)      // inside: reverted to 1s
        try power.pwriteAll(fd, Array(repeating: 3, count: 5000), at: 10_000) // growth: cut off
        power.close(fd)

        let report = power.simulatePowerLoss()
        #expect(readFile(path) == Array(repeating: 1, count: 10_000))
        #expect(report.filesReverted == [path])
    }

    @Test func aFileWhoseDirectoryWasNotSyncedDisappears() throws {
        let dir = TemporaryDirectory()
        let power = PowerLossSyscalls()
        let fd = try power.open(dir.path + "/new", flags: O_RDWR | O_CREAT, mode: 0o600)
        try power.pwriteAll(fd, [1, 2, 3], at: 0)
        try power.fsync(fd)  // the file's data, not its name
        power.close(fd)

        let report = power.simulatePowerLoss()
        #expect(!fileExists(dir.path + "/new"))
        #expect(report.namesRemoved == [dir.path + "/new"])
    }

    @Test func aFileCreatedAndSyncedWithItsDirectorySurvives() throws {
        let dir = TemporaryDirectory()
        let power = PowerLossSyscalls()
        let fd = try power.open(dir.path + "/new", flags: O_RDWR | O_CREAT, mode: 0o600)
        try power.pwriteAll(fd, [1, 2, 3], at: 0)
        try power.fdatasync(fd)
        try power.fsyncDirectory(dir.path)
        power.close(fd)

        power.simulatePowerLoss()
        #expect(readFile(dir.path + "/new") == [1, 2, 3])
    }

    @Test func aRenameNotFollowedByADirectorySyncIsReverted() throws {
        let dir = TemporaryDirectory()
        writeFile(dir.path + "/target", [9, 9])  // there before the layer: durable
        let power = PowerLossSyscalls()
        let fd = try power.open(dir.path + "/target.tmp", flags: O_WRONLY | O_CREAT, mode: 0o600)
        try power.pwriteAll(fd, [1, 2, 3], at: 0)
        try power.fsync(fd)
        power.close(fd)
        try power.fsyncDirectory(dir.path)  // the temporary's name is durable
        try power.rename(dir.path + "/target.tmp", to: dir.path + "/target")
        #expect(readFile(dir.path + "/target") == [1, 2, 3])

        power.simulatePowerLoss()
        #expect(readFile(dir.path + "/target") == [9, 9])
        #expect(readFile(dir.path + "/target.tmp") == [1, 2, 3])
    }

    @Test func aRenameFollowedByADirectorySyncSurvives() throws {
        let dir = TemporaryDirectory()
        writeFile(dir.path + "/target", [9, 9])
        let power = PowerLossSyscalls()
        let fd = try power.open(dir.path + "/target.tmp", flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
        try power.pwriteAll(fd, [1, 2, 3], at: 0)
        try power.fsync(fd)
        power.close(fd)
        try power.rename(dir.path + "/target.tmp", to: dir.path + "/target")
        try power.fsyncDirectory(dir.path)

        power.simulatePowerLoss()
        #expect(readFile(dir.path + "/target") == [1, 2, 3])
        #expect(!fileExists(dir.path + "/target.tmp"))
    }

    @Test func anUnlinkNotFollowedByADirectorySyncIsUndone() throws {
        let dir = TemporaryDirectory()
        writeFile(dir.path + "/old", [4, 5, 6])
        let power = PowerLossSyscalls()
        try power.unlink(dir.path + "/old")
        #expect(!fileExists(dir.path + "/old"))

        let report = power.simulatePowerLoss()
        #expect(readFile(dir.path + "/old") == [4, 5, 6])
        #expect(report.namesRestored == [dir.path + "/old"])

        let again = PowerLossSyscalls()
        try again.unlink(dir.path + "/old")
        try again.fsyncDirectory(dir.path)
        again.simulatePowerLoss()
        #expect(!fileExists(dir.path + "/old"))
    }

    @Test func aDirectoryWhoseParentWasNotSyncedDisappearsWithItsFiles() throws {
        let dir = TemporaryDirectory()
        let power = PowerLossSyscalls()
        try power.mkdir(dir.path + "/sub", mode: 0o700)
        let fd = try power.open(dir.path + "/sub/file", flags: O_RDWR | O_CREAT, mode: 0o600)
        try power.pwriteAll(fd, [1], at: 0)
        try power.fdatasync(fd)
        try power.fsyncDirectory(dir.path + "/sub")
        power.close(fd)

        power.simulatePowerLoss()
        #expect(!fileExists(dir.path + "/sub"))
    }

    @Test func aSyncCoversOnlyWritesThatCompletedBeforeItStarted() throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let power = PowerLossSyscalls(wrapping: faults)
        let path = dir.path + "/file"
        let fd = try power.open(path, flags: O_RDWR | O_CREAT, mode: 0o600)
        try power.fsyncDirectory(dir.path)
        try power.pwriteAll(fd, [1, 1], at: 0)
        // A write that lands while the fdatasync is in progress is not covered by it.
        let second = try power.open(path, flags: O_RDWR, mode: 0)
        faults.beforeCall(.fdatasync, occurrence: .only(1)) {
            try? power.pwriteAll(second, [2, 2], at: 0)
        }
        try power.fdatasync(fd)
        #expect(readFile(path) == [2, 2])
        try power.pwriteAll(fd, [3, 3], at: 2)
        #expect(power.lastCompletedSyncStart(path: path) > 0)
        power.close(fd)
        power.close(second)

        power.simulatePowerLoss()
        #expect(readFile(path) == [1, 1])
    }

    @Test func cuttingThePowerFailsEveryLaterCallAndNothingReachesTheDisk() throws {
        let dir = TemporaryDirectory()
        let power = PowerLossSyscalls()
        let fd = try power.open(dir.path + "/file", flags: O_RDWR | O_CREAT, mode: 0o600)
        power.cutPower(atStep: power.stepCount + 2)
        try power.pwriteAll(fd, [1], at: 0)  // step 1 from now: happens
        #expect(throws: SystemError.self) { try power.fdatasync(fd) }  // step 2: the power is off
        #expect(power.isPowerCut)
        #expect(throws: SystemError.self) { try power.pwriteAll(fd, [2], at: 1) }
        #expect(fileSize(dir.path + "/file") == 1)
        power.close(fd)
        power.simulatePowerLoss()
        #expect(!fileExists(dir.path + "/file"))
        #expect(!power.isPowerCut, "the power comes back after the simulated loss")
    }

    @Test func tornWritebackKeepsSomeUnsyncedPagesAndNothingElse() throws {
        let dir = TemporaryDirectory()
        var kept = 0, dropped = 0
        for seed in UInt64(1)...20 {
            let path = dir.path + "/file\(seed)"
            let power = PowerLossSyscalls()
            let fd = try power.open(path, flags: O_RDWR | O_CREAT, mode: 0o600)
            try power.fsyncDirectory(dir.path)
            try power.pwriteAll(fd, Array(repeating: 1, count: 8 * 4096), at: 0)
            try power.fdatasync(fd)
            try power.pwriteAll(fd, Array(repeating: 2, count: 8 * 4096), at: 0)
            power.close(fd)
            let report = power.simulatePowerLoss(.torn(seed: seed))
            let bytes = readFile(path)
            #expect(bytes.count == 8 * 4096)
            for page in 0..<8 {
                let slice = bytes[page * 4096..<(page + 1) * 4096]
                #expect(slice.allSatisfy { $0 == 1 } || slice.allSatisfy { $0 == 2 }, "page \(page) mixes old and new bytes")
            }
            kept += report.unsyncedPagesKept
            dropped += report.unsyncedPagesDropped
        }
        #expect(kept > 0 && dropped > 0)
    }

    // MARK: The log under power loss

    @Test func syncModeLosesNothingAcknowledged() async throws {
        let seed = Self.seed()
        var summary = PowerLossSummary()
        for directory in 0..<20 {
            var run = PowerLossRun(seed: seed &+ UInt64(directory), durability: .sync, writeback: .syncedOnly)
            try await run.run(rounds: 12)
            summary.add(run)
        }
        print("power loss, sync: \(summary) (seed \(seed))")
        #expect(summary.problems.isEmpty, "seed \(seed): \(summary.problems.prefix(10))")
        #expect(summary.crashes >= 200)
        #expect(summary.acknowledged > 0)
    }

    @Test func tornWritebackLosesNothingDurable() async throws {
        // Unsynced pages reach the disk in any subset: in .sync mode only the pipelined batch in
        // flight is unsynced, in the other modes much more, so holes (a later batch without an
        // earlier one) appear and open refuses until the hole is cut.
        let seed = Self.seed() &+ 1_000
        var summary = PowerLossSummary()
        let modes: [Durability] = [.sync, .sync, .sync, .sync, .sync, .sync, .interval(milliseconds: 2), .interval(milliseconds: 2),
                                   .interval(milliseconds: 2), .none, .none, .none]
        for (directory, durability) in modes.enumerated() {
            var run = PowerLossRun(seed: seed &+ UInt64(directory), durability: durability,
                                   writeback: .torn(seed: seed &+ UInt64(directory)))
            try await run.run(rounds: 10)
            summary.add(run)
        }
        print("power loss, torn write-back: \(summary) (seed \(seed))")
        #expect(summary.problems.isEmpty, "seed \(seed): \(summary.problems.prefix(10))")
        #expect(summary.acknowledged > 0)
    }

    @Test func intervalModeLosesOnlyWhatNoCompletedSyncCovered() async throws {
        let seed = Self.seed() &+ 2_000
        var summary = PowerLossSummary()
        for directory in 0..<8 {
            var run = PowerLossRun(seed: seed &+ UInt64(directory), durability: .interval(milliseconds: 2), writeback: .syncedOnly)
            try await run.run(rounds: 10)
            summary.add(run)
        }
        print("power loss, interval(2ms): \(summary) (seed \(seed))")
        #expect(summary.problems.isEmpty, "seed \(seed): \(summary.problems.prefix(10))")
        #expect(summary.durableBySync > 0, "no record was covered by an interval sync")
    }

    @Test func intervalModeSyncsWithoutBeingAsked() async throws {
        // Liveness, not timing: an acknowledged record is eventually covered by a sync the
        // log starts on its own (the interval syncer). The wait is generous for a loaded machine.
        let dir = TemporaryDirectory()
        let power = PowerLossSyscalls()
        var configuration = smallSegmentConfiguration(.interval(milliseconds: 5))
        configuration.syscalls = power
        let log = try Log.open(directory: dir.log, configuration: configuration)
        let offset = try await log.append(PowerLossRecord.bytes(1))
        let segment = segmentPath(dir.log, 0)
        let acknowledgedAt = power.lastWriteEvent(path: segment)
        var waited = 0
        while power.lastCompletedSyncStart(path: segment) <= acknowledgedAt && waited < 30_000 {
            try await Task.sleep(nanoseconds: 1_000_000)
            waited += 1
        }
        #expect(power.lastCompletedSyncStart(path: segment) > acknowledgedAt)
        log.abandon()
        power.simulatePowerLoss()
        let reopened = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(try reopened.read(at: offset) == PowerLossRecord.bytes(1))
        try reopened.close()
    }

    @Test func noneModeKeepsWhatWasFlushedOrSealed() async throws {
        let seed = Self.seed() &+ 3_000
        var summary = PowerLossSummary()
        for directory in 0..<8 {
            var run = PowerLossRun(seed: seed &+ UInt64(directory), durability: .none, writeback: .syncedOnly)
            try await run.run(rounds: 10)
            summary.add(run)
        }
        print("power loss, none: \(summary) (seed \(seed))")
        #expect(summary.problems.isEmpty, "seed \(seed): \(summary.problems.prefix(10))")
        #expect(summary.durableByFlush > 0)
    }

    @Test func noneModeLosesUnflushedAppendsAtAPowerLoss() async throws {
        // The simulation is not vacuous: without a sync, acknowledged records do go.
        let dir = TemporaryDirectory()
        let power = PowerLossSyscalls()
        var configuration = smallSegmentConfiguration(.none)
        configuration.syscalls = power
        let log = try Log.open(directory: dir.log, configuration: configuration)
        for i in 0..<10 { _ = try await log.append(PowerLossRecord.bytes(UInt64(i))) }
        try await log.flush()
        for i in 10..<20 { _ = try await log.append(PowerLossRecord.bytes(UInt64(i))) }
        log.abandon()
        power.simulatePowerLoss()
        let reopened = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(reopened.endOffset == 10)
        #expect(try readAll(reopened).map(\.payload) == (0..<10).map { PowerLossRecord.bytes(UInt64($0)) })
        try reopened.close()
    }

    @Test func aRecordWrittenJustBeforeARollIsDurableWhenItsSyncRunsOnTheNextSegment() async throws {
        // A syncer syncs the segment that is active when it claims, so a group whose first batch
        // went into the old segment and whose next batch rolled to a new one is covered, for that
        // first batch, only by the roll's own fdatasync of the old segment. Arranged
        // deterministically: the only syncer is held inside a sync while B and C wait in the intake;
        // released, it takes both, writes B (a batch of its own, `maxBatchBytes`) into the old
        // segment, rolls for C, and claims on the new segment.
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let power = PowerLossSyscalls(wrapping: faults)
        var configuration = smallSegmentConfiguration(.sync)
        configuration.concurrentSyncs = 1
        configuration.maxBatchBytes = 4096
        configuration.syscalls = power
        let log = try Log.open(directory: dir.log, configuration: configuration)
        for i in 0..<16 { _ = try await log.append(payload(i, size: 4000)) }  // 64,704 of 65,536 bytes
        #expect(log.segmentBaseOffsets == [0])

        let held = Gate()
        faults.beforeCall(.fdatasync, path: .suffix(".log"), occurrence: .only(1)) {  // counted from now
            held.entered.store(true, ordering: .sequentiallyConsistent)
            while !held.released.load(ordering: .sequentiallyConsistent) { usleep(1000) }
        }
        let start = log.intake.pushCountForTesting
        let first = Task { try await log.append(payload(100, size: 10)) }
        while !held.entered.load(ordering: .sequentiallyConsistent) { try await Task.sleep(nanoseconds: 1_000_000) }
        let b = Task { try await log.append(payload(101, size: 100)) }
        while log.intake.pushCountForTesting < start + 2 { try await Task.sleep(nanoseconds: 1_000_000) }
        let c = Task { try await log.append(payload(102, size: 4000)) }
        while log.intake.pushCountForTesting < start + 3 { try await Task.sleep(nanoseconds: 1_000_000) }
        held.released.store(true, ordering: .sequentiallyConsistent)
        let offsets = [try await first.value, try await b.value, try await c.value]
        #expect(offsets == [16, 17, 18])
        #expect(log.segmentBaseOffsets == [0, 18], "B went into the old segment and C rolled")
        log.abandon()

        power.simulatePowerLoss()
        let reopened = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(try reopened.read(at: 17) == payload(101, size: 100), "B was acknowledged but lost")
        #expect(try reopened.read(at: 18) == payload(102, size: 4000))
        try reopened.close()
    }

    static func seed() -> UInt64 {
        if let text = getenv("SPOOL_TEST_SEED").map({ String(cString: $0) }), let seed = UInt64(text) { return seed }
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) &* 1_000_003 &+ UInt64(time.tv_nsec)
    }
}

// MARK: - Records that describe themselves

/// A record whose bytes follow from its id (its first 8 bytes), and whose size too, so that any
/// record read back can be checked without knowing at which offset it was expected.
/// Every fourth id is compressible, so that LZ4 batches are exercised as well.
/// The harness's records (``SelfDescribingRecord``), at most about 3 KB.
enum PowerLossRecord {
    static let largeUpTo = 3000
    static func size(_ id: UInt64) -> Int { SelfDescribingRecord.size(id, largeUpTo: largeUpTo) }
    static func bytes(_ id: UInt64) -> [UInt8] { SelfDescribingRecord.bytes(id, largeUpTo: largeUpTo) }
    static func id(of payload: [UInt8]) -> UInt64? { SelfDescribingRecord.id(of: payload, largeUpTo: largeUpTo) }
}

// MARK: - One log directory through many power losses

/// What acknowledged appends returned, shared by the workload's tasks.
final class PowerLossLedger: Sendable {
    struct Acknowledgement: Sendable {
        var offset: UInt64
        var id: UInt64
        /// ``PowerLossSyscalls/lastWriteEvent(path:)`` of the record's segment right after the
        /// append returned: the record's write happened at or before it.
        var event: UInt64
    }

    struct State {
        var acknowledged: [Acknowledgement] = []
        /// Acknowledgements before this index were made durable by a `flush()` that returned.
        var flushedThrough = 0
    }

    let state = Mutex(State())

    func acknowledge(_ offset: UInt64, id: UInt64, event: UInt64) {
        state.withLock { $0.acknowledged.append(Acknowledgement(offset: offset, id: id, event: event)) }
    }

    var count: Int { state.withLock { $0.acknowledged.count } }

    func flushed(through count: Int) {
        state.withLock { $0.flushedThrough = max($0.flushedThrough, count) }
    }
}

/// Totals over several runs.
struct PowerLossSummary: CustomStringConvertible {
    var crashes = 0
    var acknowledged = 0
    var durableBySync = 0
    var durableByFlush = 0
    var durableBySeal = 0
    var acknowledgedButLost = 0
    var failedOpens = 0
    var holesCut = 0
    var problems: [String] = []

    mutating func add(_ run: PowerLossRun) {
        crashes += run.crashes
        acknowledged += run.acknowledged
        durableBySync += run.durableBySync
        durableByFlush += run.durableByFlush
        durableBySeal += run.durableBySeal
        acknowledgedButLost += run.acknowledgedButLost
        failedOpens += run.opensCutByPowerLoss
        holesCut += run.holesCut
        problems += run.problems
    }

    var description: String {
        "\(crashes) power losses, \(acknowledged) records acknowledged (durable by sync \(durableBySync), by flush \(durableByFlush), "
            + "by segment roll \(durableBySeal)), acknowledged but lost as allowed by the mode \(acknowledgedButLost), "
            + "opens cut by a power loss \(failedOpens), holes after torn write-back cut \(holesCut), problems \(problems.count)"
    }
}

/// Rounds of: open (recovery), verify, run a random concurrent workload, cut the power at a random
/// system call, simulate the power loss.
struct PowerLossRun {
    let seed: UInt64
    let durability: Durability
    let writeback: PowerLossSyscalls.Writeback
    let directory = TemporaryDirectory("spool-powerloss")
    var random: SplitMix64
    let power = PowerLossSyscalls()
    var configuration: LogConfiguration
    var nextId: UInt64 = 1
    /// Offset → id of every record that must be found at every later open.
    var stable: [UInt64: UInt64] = [:]

    var crashes = 0
    var acknowledged = 0
    var durableBySync = 0
    var durableByFlush = 0
    var durableBySeal = 0
    var acknowledgedButLost = 0
    var opensCutByPowerLoss = 0
    var holesCut = 0
    var problems: [String] = []

    init(seed: UInt64, durability: Durability, writeback: PowerLossSyscalls.Writeback) {
        self.seed = seed
        self.durability = durability
        self.writeback = writeback
        random = SplitMix64(seed: seed)
        configuration = LogConfiguration(durability: durability)
        configuration.segmentBytes = 64 << 10
        configuration.maxRecordBytes = 4096
        configuration.indexIntervalBytes = [64, 512, 4096][Int(random.next() % 3)]
        configuration.preallocationBytes = [0, 4096, 65536, 1 << 20][Int(random.next() % 4)]
        configuration.concurrentSyncs = 1 + Int(random.next() % 3)
        configuration.compressionThresholdBytes = random.next() % 2 == 0 ? 256 : Int.max
        configuration.maxGroupCommitDelayMicroseconds = [0, 100][Int(random.next() % 2)]
        configuration.syscalls = power
    }

    var path: String { directory.log }

    mutating func problem(_ round: Int, _ text: String) {
        problems.append("seed \(seed) round \(round): \(text)")
    }

    mutating func run(rounds: Int) async throws {
        for round in 0..<rounds {
            if problems.count > 20 { return }
            // Sometimes the power goes while the log is being opened (recovering).
            if random.next() % 6 == 0 {
                power.cutPower(atStep: power.stepCount + 1 + Int(random.next() % 25))
                do {
                    let log = try Log.open(directory: path, configuration: configuration)
                    await workload(log, round: round)
                    log.abandon()
                } catch {
                    opensCutByPowerLoss += 1
                    // Refused before the cut: only a hole left by torn write-back may do that; the
                    // next round's open cuts it and verifies.
                    let hole: Bool = if case .torn = writeback { error.code == .corruptBatch } else { false }
                    if !power.isPowerCut && !hole { problem(round, "open failed without a power cut: \(error)") }
                }
                crashes += 1
                power.simulatePowerLoss(writeback)
                continue
            }
            guard let log = openAndVerify(round: round) else { return }
            power.cutPower(atStep: power.stepCount + 1 + Int(random.next() % 400))
            await workload(log, round: round)
            if random.next() % 10 == 0 {
                // A clean close before the power goes: everything acknowledged stays.
                do { try log.close() } catch { if !power.isPowerCut { problem(round, "close failed: \(error)") } }
            } else {
                log.abandon()
            }
            crashes += 1
            power.simulatePowerLoss(writeback)
        }
        if let log = openAndVerify(round: rounds) { try? log.close() }
    }

    /// Opens the log (with the power on) and checks it against `stable`; every record it returns
    /// joins `stable`.
    mutating func openAndVerify(round: Int) -> Log? {
        var log: Log
        do {
            log = try Log.open(directory: path, configuration: configuration)
        } catch {
            // Torn write-back may leave a later batch on disk without an earlier one: open refuses
            // (durability.md, "Two consequences"). Cut at the hole with `spool recover`'s truncate
            // repair (a bare `truncate` below the active segment's recorded durable extent would be
            // refused as damage: it is one); if anything durable lay beyond it, the check below
            // reports it lost.
            guard case .torn = writeback, error.code == .corruptBatch, let file = error.path, let position = error.offset,
                  file == lastSegmentPath() else {
                problem(round, "open failed: \(error)")
                return nil
            }
            do {
                let offline = try OfflineLog.open(directory: path, writable: true)
                defer { offline.close() }
                _ = try offline.repair(.truncate, backupDirectory: nil)
            } catch {
                problem(round, "the truncate repair of the hole at byte \(position) of \(file) failed: \(error)")
                return nil
            }
            holesCut += 1
            do { log = try Log.open(directory: path, configuration: configuration) } catch {
                problem(round, "open failed after cutting the hole: \(error)")
                return nil
            }
        }
        var seen: [UInt64: UInt64] = [:]
        var ids: Set<UInt64> = []
        var expectedOffset: UInt64 = 0
        var reader = log.reader(from: 0)
        do {
            while let record = try reader.next() {
                if record.offset != expectedOffset { problem(round, "offset \(record.offset) follows \(expectedOffset)") }
                expectedOffset = record.offset + 1
                guard let id = PowerLossRecord.id(of: record.payload) else {
                    problem(round, "offset \(record.offset): \(record.payload.count) bytes that no append wrote")
                    continue
                }
                if !ids.insert(id).inserted { problem(round, "record \(id) appears twice (again at offset \(record.offset))") }
                seen[record.offset] = id
            }
        } catch {
            problem(round, "reading the log threw \(error)")
        }
        if log.endOffset != expectedOffset { problem(round, "endOffset \(log.endOffset) but records end at \(expectedOffset)") }
        for (offset, id) in stable.sorted(by: { $0.key < $1.key }) where seen[offset] != id {
            problem(round, "record \(id) at offset \(offset) was durable and is "
                    + (seen[offset].map { "replaced by record \($0)" } ?? "gone") + " (\(log.recovery))")
            if problems.count > 20 { break }
        }
        stable = seen
        return log
    }

    func lastSegmentPath() -> String? {
        let bases = directoryEntries(path).compactMap { Segment.baseOffset(ofLogFile: $0) }.sorted()
        return bases.last.map { segmentPath(path, $0) }
    }

    /// Concurrent appenders, each with its own random list of operations, until they are done
    /// or the power cut makes them fail.
    mutating func workload(_ log: Log, round: Int) async {
        enum Operation: Sendable { case append(UInt64), batch([UInt64]), flush }
        let workers = 1 + Int(random.next() % 6)
        var plans: [[Operation]] = []
        for _ in 0..<workers {
            var plan: [Operation] = []
            for _ in 0..<(5 + Int(random.next() % 40)) {
                let roll = random.next() % 20
                if roll == 0 {
                    plan.append(.flush)
                } else if roll < 5 {
                    let count = 1 + Int(random.next() % 6)
                    plan.append(.batch((0..<count).map { nextId + UInt64($0) }))
                    nextId += UInt64(count)
                } else {
                    plan.append(.append(nextId))
                    nextId += 1
                }
            }
            plans.append(plan)
        }
        let ledger = PowerLossLedger()
        let power = self.power
        await withTaskGroup(of: Void.self) { group in
            for plan in plans {
                group.addTask {
                    for operation in plan {
                        do {
                            switch operation {
                            case .append(let id):
                                let offset = try await log.append(PowerLossRecord.bytes(id))
                                ledger.acknowledge(offset, id: id, event: Self.writeEvent(log, offset, power))
                            case .batch(let ids):
                                let offsets = try await log.append(contentsOf: ids.map(PowerLossRecord.bytes))
                                let event = Self.writeEvent(log, offsets.lowerBound, power)
                                for (offset, id) in zip(offsets, ids) { ledger.acknowledge(offset, id: id, event: event) }
                            case .flush:
                                let before = ledger.count
                                try await log.flush()
                                ledger.flushed(through: before)
                            }
                        } catch {
                            return
                        }
                    }
                }
            }
        }
        classify(ledger, log: log, round: round)
    }

    /// An upper bound of the event at which the record at `offset` was written: the last write to
    /// its segment so far.
    static func writeEvent(_ log: Log, _ offset: UInt64, _ power: PowerLossSyscalls) -> UInt64 {
        let base = log.segmentBaseOffsets.last { $0 <= offset } ?? 0
        return power.lastWriteEvent(path: segmentPath(log.directory, base))
    }

    /// Decides which acknowledged records had to be durable when the power went; they join `stable`.
    private mutating func classify(_ ledger: PowerLossLedger, log: Log, round: Int) {
        let state = ledger.state.withLock { $0 }
        let bases = log.segmentBaseOffsets
        let sealedBelow = bases.last ?? 0
        acknowledged += state.acknowledged.count
        for (i, ack) in state.acknowledged.enumerated() {
            let base = bases.last { $0 <= ack.offset } ?? 0
            let coveredBySync = ack.event < power.lastCompletedSyncStart(path: segmentPath(path, base))
            let durable: Bool
            if durability == .sync {
                durable = true
                durableBySync += 1
            } else if ack.offset < sealedBelow {
                durable = true
                durableBySeal += 1
            } else if i < state.flushedThrough {
                durable = true
                durableByFlush += 1
            } else if coveredBySync {
                durable = true
                durableBySync += 1
            } else {
                durable = false
                acknowledgedButLost += 1  // at most; counted before the loss
            }
            if durable {
                if let other = stable[ack.offset], other != ack.id {
                    problem(round, "offset \(ack.offset) acknowledged for record \(ack.id) but held record \(other)")
                }
                stable[ack.offset] = ack.id
            }
        }
    }
}

private final class Gate: Sendable {
    let entered = Atomic<Bool>(false)
    let released = Atomic<Bool>(false)
}
