#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolPrimitives
import Synchronization
import SpoolLog
import SpoolToolSupport

/// `spool torture --power-loss`: the torture workload in-process, through ``PowerLossSyscalls``.
/// Each crash cuts the power at a random system call (sometimes while the log is being opened),
/// drops what was not synced, and reopens.
struct PowerLossTorture {
    let directory: String
    let durability: Durability
    let torn: Bool
    let appenders: Int
    var configuration: LogConfiguration
    var random: SplitMix64
    let power = PowerLossSyscalls()
    var report: TortureReport
    var nextId: UInt64 = 1
    /// Acknowledged records the mode did not promise yet, with when they were acknowledged.
    var undurable: [(offset: UInt64, id: UInt64, at: UInt64)] = []
    var lastCut: UInt64 = 0

    init(directory: String, seed: UInt64, durability: Durability, torn: Bool, appenders: Int, configuration: LogConfiguration) {
        self.directory = directory
        self.durability = durability
        self.torn = torn
        self.appenders = appenders
        self.configuration = configuration
        self.configuration.syscalls = power
        random = SplitMix64(seed: seed)
        report = TortureReport(mode: torn ? "power-loss, torn write-back" : "power-loss", durability: durability.description)
    }

    mutating func run(crashes: Int, progress: Bool) async {
        for round in 0..<crashes {
            if random.below(6) == 0 {
                // The power goes while the log is being opened (recovering).
                power.cutPower(atStep: power.stepCount + 1 + random.below(25))
                do {
                    let log = try Log.open(directory: directory, configuration: configuration)
                    await workload(log)
                    log.abandon()
                } catch {
                    // Refused before the cut: only a hole left by torn write-back may do that; the
                    // next round's open cuts it and verifies.
                    if !power.isPowerCut && !(torn && error.code == .corruptBatch) {
                        report.ledger.failedOpens += 1
                        report.ledger.problem("round \(round): open failed without a power cut: \(error)")
                    }
                }
                crash()
                continue
            }
            guard let log = openAndVerify(round: round) else { break }
            power.cutPower(atStep: power.stepCount + 1 + random.below(400))
            await workload(log)
            log.abandon()
            crash()
            if progress && round % 10 == 9 {
                writeStandardError("\rpower loss \(round + 1)/\(crashes): \(report.ledger.acknowledged) acknowledged, lost \(report.ledger.lost)   ")
            }
        }
        if progress { writeStandardError("\n") }
        if let log = openAndVerify(round: crashes) { try? log.close() }
        report.longestSyncMilliseconds = Double(power.longestSyncNanoseconds) / 1e6
    }

    private mutating func crash() {
        report.ledger.crashes += 1
        lastCut = power.powerCutNanoseconds ?? monotonicNanoseconds()
        power.simulatePowerLoss(torn ? .torn(seed: random.next()) : .syncedOnly)
    }

    private mutating func openAndVerify(round: Int) -> Log? {
        var log: Log
        do {
            log = try Log.open(directory: directory, configuration: configuration)
        } catch {
            // Torn write-back can leave a later batch without an earlier one, which open refuses
            // (Docs/durability.md, "Two consequences"); cut at the hole with `spool recover`'s
            // truncate repair (which also rewrites `log-manifest`: a bare cut below the active
            // segment's recorded durable extent is refused as damage). Anything promised beyond
            // it then shows as lost.
            let bases = (try? SystemCalls().listDirectory(directory))?.compactMap(segmentBase(ofLogFile:)).sorted() ?? []
            guard torn, error.code == .corruptBatch, let file = error.path, let position = error.offset,
                  let last = bases.last, file == segmentLogPath(directory, last) else {
                report.ledger.failedOpens += 1
                report.ledger.problem("round \(round): open failed: \(error)")
                return nil
            }
            do {
                let offline = try OfflineLog.open(directory: directory, writable: true)
                defer { offline.close() }
                _ = try offline.repair(.truncate, backupDirectory: nil)
            } catch {
                report.ledger.failedOpens += 1
                report.ledger.problem("round \(round): the truncate repair of the hole at byte \(position) of \(file) failed: \(error)")
                return nil
            }
            report.ledger.tornTailsCut += 1
            do { log = try Log.open(directory: directory, configuration: configuration) } catch {
                report.ledger.failedOpens += 1
                report.ledger.problem("round \(round): open failed after cutting the hole: \(error)")
                return nil
            }
        }
        report.ledger.verify(log, round: round)
        for ack in undurable where report.ledger.stable[ack.offset] != ack.id {
            report.acknowledgedButLost += 1
            // An append acknowledged just before the cut may have been recorded just after it.
            report.oldestLostMilliseconds = max(report.oldestLostMilliseconds, Double(lastCut > ack.at ? lastCut - ack.at : 0) / 1e6)
        }
        undurable = []
        return log
    }

    /// `appenders` tasks with random plans (single appends, append(contentsOf:), flushes) until
    /// done or failed by the power cut; then decides which acknowledgements had to be durable.
    private mutating func workload(_ log: Log) async {
        enum Operation: Sendable { case append(UInt64), batch([UInt64]), flush }
        var plans: [[Operation]] = []
        for _ in 0..<appenders {
            var plan: [Operation] = []
            for _ in 0..<(5 + random.below(60)) {
                let roll = random.below(100)
                if roll < 3 {
                    plan.append(.flush)
                } else if roll < 18 {
                    let count = 2 + random.below(7)
                    plan.append(.batch((0..<count).map { nextId + UInt64($0) }))
                    nextId += UInt64(count)
                } else {
                    plan.append(.append(nextId))
                    nextId += 1
                }
            }
            plans.append(plan)
        }
        let ledger = Acknowledgements()
        let power = self.power
        await withTaskGroup(of: Void.self) { group in
            for plan in plans {
                group.addTask {
                    for operation in plan {
                        do {
                            switch operation {
                            case .append(let id):
                                let offset = try await log.append(TortureRecord.bytes(id))
                                ledger.add([(offset, id)], event: Self.writeEvent(log, offset, power))
                            case .batch(let ids):
                                let offsets = try await log.append(contentsOf: ids.map(TortureRecord.bytes))
                                ledger.add(Array(zip(offsets, ids)), event: Self.writeEvent(log, offsets.lowerBound, power))
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
        let state = ledger.state.withLock { $0 }
        let bases = log.segmentBaseOffsets
        let sealedBelow = bases.last ?? 0
        report.ledger.acknowledged += state.acknowledged.count
        for (i, ack) in state.acknowledged.enumerated() {
            let base = bases.last { $0 <= ack.offset } ?? 0
            let durable = durability == .sync || ack.offset < sealedBelow || i < state.flushedThrough
                || ack.event < power.lastCompletedSyncStart(path: segmentLogPath(directory, base))
            if durable {
                report.ledger.promise(offset: ack.offset, id: ack.id)
            } else {
                undurable.append((ack.offset, ack.id, ack.at))
            }
        }
    }

    /// The last write to the segment holding `offset`: the record's write happened at or before it.
    static func writeEvent(_ log: Log, _ offset: UInt64, _ power: PowerLossSyscalls) -> UInt64 {
        let base = log.segmentBaseOffsets.last { $0 <= offset } ?? 0
        return power.lastWriteEvent(path: segmentLogPath(log.directory, base))
    }
}

/// The acknowledgements of one workload, shared by its tasks.
final class Acknowledgements: Sendable {
    struct Acknowledgement: Sendable {
        var offset: UInt64
        var id: UInt64
        var event: UInt64
        var at: UInt64
    }

    struct State: Sendable {
        var acknowledged: [Acknowledgement] = []
        var flushedThrough = 0
    }

    let state = Mutex(State())

    func add(_ records: [(UInt64, UInt64)], event: UInt64) {
        let now = monotonicNanoseconds()
        state.withLock { state in
            for (offset, id) in records { state.acknowledged.append(Acknowledgement(offset: offset, id: id, event: event, at: now)) }
        }
    }

    var count: Int { state.withLock { $0.acknowledged.count } }

    func flushed(through count: Int) {
        state.withLock { $0.flushedThrough = max($0.flushedThrough, count) }
    }
}

/// `<directory>/<20-digit base>.log` (Docs/file-format.md).
func segmentLogPath(_ directory: String, _ base: UInt64) -> String {
    let digits = String(base)
    return directory + "/" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
}

/// The base offset of a segment file name, `nil` for other names.
func segmentBase(ofLogFile name: String) -> UInt64? {
    guard name.utf8.count == 24, name.hasSuffix(".log"), name.utf8.prefix(20).allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
    return UInt64(name.prefix(20))
}
