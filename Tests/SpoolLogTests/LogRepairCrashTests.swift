#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// A repair interrupted at any step — the process stopping before the k-th mutating system call, found
/// by recording a first run through `FaultInjectingSyscalls` — leaves a directory that the same repair,
/// run again, finishes with exactly the result of an uninterrupted run; and the backup made before the
/// interruption holds the original bytes of what had been changed by then.
@Suite struct LogRepairCrashTests {
    struct Scenario: Sendable, CustomStringConvertible {
        var damage: GeneratedDamage
        var mode: RepairMode
        var description: String { "\(mode) after \(damage)" }
    }

    static let scenarios: [Scenario] = [
        Scenario(damage: .bitFlipMidSegment, mode: .salvage),
        Scenario(damage: .bitFlipMidSegment, mode: .truncate),
        Scenario(damage: .zeroFilledRange, mode: .salvage),
        Scenario(damage: .truncatedSegment, mode: .truncate),
    ]

    @Test(arguments: scenarios)
    func aRepairInterruptedAtEveryStepIsFinishedByTheNextRun(_ scenario: Scenario) async throws {
        let dir = TemporaryDirectory()
        let original = dir.path + "/original"
        _ = try await buildMaintenanceLog(original)
        _ = scenario.damage.apply(to: original)
        let damaged = snapshot(original)

        // The uninterrupted run, recorded.
        let reference = dir.path + "/reference"
        restore(damaged, into: reference)
        let recorder = FaultInjectingSyscalls()
        let expectedReport = try repair(reference, scenario.mode, backup: dir.path + "/reference-backup", syscalls: recorder)
        let steps = recorder.stepCount
        try #require(steps > 5)
        let expected = try openAndReadAll(reference)
        #expect(expectedReport.after.problems == [])

        for k in 1...steps {
            let work = dir.path + "/work-\(k)"
            let backup = dir.path + "/backup-\(k)"
            restore(damaged, into: work)
            let faults = FaultInjectingSyscalls()
            faults.crash(atStep: k)
            #expect(throws: LogError.self, "step \(k) of \(steps)") {
                _ = try repair(work, scenario.mode, backup: backup, syscalls: faults)
            }
            // What the interrupted run backed up is the original.
            // What the interrupted run backed up is the original (a copy cut short keeps its `.tmp` name).
            for name in directoryEntries(backup) where !name.hasSuffix(".tmp") {
                let same = readFile(backup + "/" + name) == damaged[name]
                #expect(same, "step \(k): the backup of \(name) differs from the original")
            }
            let rerun = try repair(work, scenario.mode, backup: nil, syscalls: SystemCalls())
            #expect(rerun.after.problems == [], "step \(k): \(rerun.after.problems)")
            #expect(try openAndReadAll(work) == expected, "step \(k) of \(steps)")
            removeTree(work)
            removeTree(backup)
        }
    }

    private func repair(_ directory: String, _ mode: RepairMode, backup: String?, syscalls: any Syscalls) throws -> RepairReport {
        let log = try OfflineLog.open(directory: directory, writable: true, syscalls: syscalls)
        defer { log.close() }
        return try log.repair(mode, backupDirectory: backup)
    }

    private func restore(_ files: [String: [UInt8]], into directory: String) {
        removeTree(directory)
        mkdir(directory, 0o700)
        for (name, bytes) in files { writeFile(directory + "/" + name, bytes) }
    }
}
