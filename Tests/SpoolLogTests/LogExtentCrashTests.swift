#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolTestSupport
import Synchronization
import Testing
@testable import SpoolLog

/// The durable extent under crashes and failed calls: the power goes at every step around its
/// rewrites (the manifest's `.tmp` write, fsync, rename and directory fsync, the data `fdatasync`
/// before them, a roll), or one of those calls fails while the process lives on. Whatever happens:
///
/// - the recorded extent covers every acknowledged record (no acknowledgement ran ahead of it);
/// - the reopened log never refuses a directory whose only damage is the crash (an extent beyond
///   what was durable would make it refuse a healthy store), and holds every acknowledged record.
@Suite struct LogExtentCrashTests {
    /// 64 KiB segments zero-filled 8 KiB ahead: an extent rewrite every few appends, a roll every ~30.
    static func configuration(_ syscalls: (any Syscalls)? = nil, concurrentSyncs: Int = 3) -> LogConfiguration {
        var configuration = LogConfiguration(durability: .sync)
        configuration.segmentBytes = 64 << 10
        configuration.preallocationBytes = 8 << 10
        configuration.maxRecordBytes = 4096
        configuration.compressionThresholdBytes = Int.max
        configuration.concurrentSyncs = concurrentSyncs
        if let syscalls { configuration.syscalls = syscalls }
        return configuration
    }

    /// Batch `i`: 4 records of 500 bytes.
    static func batch(_ i: Int) -> [[UInt8]] { (0..<4).map { nonZeroPayload(i * 4 + $0, size: 500) } }

    /// Appends batches one call at a time until one fails or `batches` are acknowledged; returns the
    /// acknowledged records (offset i holds record i).
    static func fill(_ log: Log, batches: Int) async -> [[UInt8]] {
        var acknowledged: [[UInt8]] = []
        for i in 0..<batches {
            guard let offsets = try? await log.append(contentsOf: batch(i)) else { break }
            #expect(offsets.lowerBound == UInt64(acknowledged.count))
            acknowledged += batch(i)
        }
        return acknowledged
    }

    /// Rule 1 as the disk shows it: every acknowledged offset in `acknowledged` that lies in the
    /// segment the manifest lists last without a length ends within the extent it records.
    static func expectExtentCovers(_ directory: String, acknowledged offsets: [UInt64], _ label: String,
                                   sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard let manifest = try LogManifest.read(directory: directory, syscalls: SystemCalls()),
              let active = manifest.segments.last, active.length == nil else { return }
        let inActive = offsets.filter { $0 >= active.base }
        guard let highest = inActive.max() else { return }
        let layout = batchLayout(segmentPath(directory, active.base))
        guard let batch = layout.first(where: { $0.offsets.contains(highest) }) else {
            Issue.record("\(label): acknowledged offset \(highest) is not in its segment", sourceLocation: sourceLocation)
            return
        }
        #expect(active.extent.map { UInt64(batch.end) <= $0 } == true,
                "\(label): offset \(highest) ends at byte \(batch.end), the recorded extent is \(String(describing: active.extent))",
                sourceLocation: sourceLocation)
    }

    /// Opens with real system calls (after the truncate repair `spool recover` would make of a hole
    /// torn write-back left, which open refuses as documented) and checks every acknowledged record.
    static func expectReopens(_ directory: String, acknowledged: [UInt64: [UInt8]], torn: Bool, _ label: String,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        var log: Log
        do {
            log = try Log.open(directory: directory, configuration: configuration())
        } catch {
            guard torn, error.code == .corruptBatch else {
                Issue.record("\(label): a directory whose only damage is the crash was refused: \(error)", sourceLocation: sourceLocation)
                return
            }
            let offline = try OfflineLog.open(directory: directory, writable: true)
            _ = try offline.repair(.truncate, backupDirectory: nil)
            offline.close()
            log = try Log.open(directory: directory, configuration: configuration())
        }
        for (offset, record) in acknowledged.sorted(by: { $0.key < $1.key }) {
            guard (try? log.read(at: offset)) == record else {
                Issue.record("\(label): acknowledged record \(offset) lost", sourceLocation: sourceLocation)
                break
            }
        }
        try log.close()
    }

    @Test(arguments: [false, true])
    func aPowerLossAtEveryStepAroundTheExtentRewritesLosesNothingAndRefusesNothing(torn: Bool) async throws {
        let batches = 45
        // A first run records the steps: where the manifest is rewritten and where segments are sealed.
        let learning = TemporaryDirectory()
        let recorder = FaultInjectingSyscalls()
        let learningLog = try Log.open(directory: learning.log, configuration: Self.configuration(PowerLossSyscalls(wrapping: recorder)))
        let start = recorder.stepCount
        #expect(await Self.fill(learningLog, batches: batches).count == batches * 4)
        learningLog.abandon()
        let steps = recorder.trace.filter { ($0.step ?? 0) > start }
        let rewrites = steps.filter { $0.operation == .rename && $0.destination?.hasSuffix("/log-manifest") == true }.map { $0.step! - start }
        let seals = steps.filter { $0.operation == .ftruncate && $0.path?.hasSuffix(".log") == true }.map { $0.step! - start }
        try #require(rewrites.count >= 6 && !seals.isEmpty, "rewrites at \(rewrites), seals at \(seals)")
        // Every step from the data sync before a rewrite to the directory fsync after it, for the first
        // five rewrites and around the first roll (which lowers and raises the extent around its cut).
        var points = Set<Int>()
        for anchor in rewrites.prefix(5) + [seals[0]] { points.formUnion(max(1, anchor - 6)...(anchor + 3)) }
        if let firstRewriteAfterSeal = rewrites.first(where: { $0 > seals[0] }) { points.formUnion(seals[0]...(firstRewriteAfterSeal + 3)) }

        for k in points.sorted() {
            let dir = TemporaryDirectory()
            let power = PowerLossSyscalls()
            let log = try Log.open(directory: dir.log, configuration: Self.configuration(power))
            power.cutPower(atStep: power.stepCount + k)
            let acknowledged = await Self.fill(log, batches: batches)
            log.abandon()
            power.simulatePowerLoss(torn ? .torn(seed: UInt64(k)) : .syncedOnly)
            let label = "power cut at step \(k)\(torn ? ", torn write-back" : "")"
            try Self.expectExtentCovers(dir.log, acknowledged: acknowledged.indices.map { UInt64($0) }, label)
            try Self.expectReopens(dir.log, acknowledged: Dictionary(uniqueKeysWithValues: acknowledged.enumerated().map { (UInt64($0), $1) }),
                                   torn: torn, label)
        }
    }

    /// Several syncers acknowledge concurrently (each may resume another's waiters): none is told
    /// before the extent covering its records is recorded. Checked at power cuts spread over the run.
    @Test func concurrentSyncersNeverAcknowledgeBeyondTheRecordedExtent() async throws {
        for k in stride(from: 40, through: 640, by: 75) {
            let dir = TemporaryDirectory()
            let power = PowerLossSyscalls()
            var configuration = Self.configuration(power, concurrentSyncs: 3)
            configuration.preallocationBytes = 4 << 10
            let log = try Log.open(directory: dir.log, configuration: configuration)
            power.cutPower(atStep: power.stepCount + k)
            let acknowledged = await withTaskGroup(of: [(UInt64, [UInt8])].self) { group in
                for appender in 0..<8 {
                    group.addTask {
                        var mine: [(UInt64, [UInt8])] = []
                        for i in 0..<60 {
                            let record = nonZeroPayload(appender * 1000 + i, size: 300 + appender * 20)
                            guard let offset = try? await log.append(record) else { break }
                            mine.append((offset, record))
                        }
                        return mine
                    }
                }
                var all: [UInt64: [UInt8]] = [:]
                for await mine in group { for (offset, record) in mine { all[offset] = record } }
                return all
            }
            log.abandon()
            power.simulatePowerLoss()
            let label = "power cut at step \(k), 8 appenders"
            try Self.expectExtentCovers(dir.log, acknowledged: Array(acknowledged.keys), label)
            try Self.expectReopens(dir.log, acknowledged: acknowledged, torn: false, label)
        }
    }

    /// One call of an extent rewrite (or the data sync before it) fails and the process lives on:
    /// the log is poisoned, the appends that needed the rewrite are not acknowledged, and the
    /// directory reopens with every acknowledged record.
    @Test(arguments: ["manifest pwrite", "manifest fsync", "manifest rename", "directory fsync", "data fdatasync"])
    func aFailedCallAroundTheExtentRewritePoisonsWithoutAcknowledgingBeyondIt(call: String) async throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        let log = try Log.open(directory: dir.log, configuration: Self.configuration(faults))
        let manifestTemporary = FaultInjectingSyscalls.PathFilter.suffix("/log-manifest.tmp")
        let directory = dir.log
        switch call {
        case "manifest pwrite": faults.fail(.pwrite, path: manifestTemporary, occurrence: .only(3))
        case "manifest fsync": faults.fail(.fsync, path: manifestTemporary, occurrence: .only(3))
        case "manifest rename": faults.fail(.rename, path: manifestTemporary, occurrence: .only(3))
        case "directory fsync":
            // The third directory fsync from here: a rewrite's (each syncs the directory once after
            // its rename), or a roll's, which fails the same way.
            faults.fail(.fsync, path: .matching { $0 == directory }, occurrence: .only(3))
        default: faults.fail(.fdatasync, path: .suffix(".log"), occurrence: .only(12))
        }
        let acknowledged = await Self.fill(log, batches: 45)
        #expect(acknowledged.count < 45 * 4, "the failed call stops the appends")
        let error = await #expect(throws: LogError.self) { try await log.append([1]) }
        #expect(error?.code == .poisoned, "\(String(describing: error))")
        log.abandon()
        try Self.expectExtentCovers(dir.log, acknowledged: acknowledged.indices.map { UInt64($0) }, call)
        try Self.expectReopens(dir.log, acknowledged: Dictionary(uniqueKeysWithValues: acknowledged.enumerated().map { (UInt64($0), $1) }),
                               torn: false, call)
    }
}
