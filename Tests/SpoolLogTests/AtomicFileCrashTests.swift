#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// `AtomicFile.replace`, the one atomic file replace under every checkpoint and table: stopped at
/// any step, or cut by a power loss at any step, it leaves the target with either its old content
/// or its new content, complete; and the error says which step failed on which file.
@Suite struct AtomicFileCrashTests {
    static let old: [UInt8] = Array(repeating: 0x0D, count: 300)
    static let new: [UInt8] = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }

    @Test func anUninterruptedReplaceWritesSyncsRenamesAndSyncsTheDirectoryInThatOrder() throws {
        let dir = TemporaryDirectory()
        writeFile(dir.path + "/target", Self.old)
        let recorder = FaultInjectingSyscalls()
        recorder.shortenWrites(to: 1000, occurrence: .only(1))  // a short write is continued
        try AtomicFile.replace("target", in: dir.path, with: Self.new, syscalls: recorder)

        #expect(readFile(dir.path + "/target") == Self.new)
        #expect(!fileExists(dir.path + "/target.tmp"))
        let mutations = recorder.trace.filter(\.isMutating).map(\.operation)
        #expect(mutations.first == .open)
        #expect(Array(mutations.dropFirst().prefix { $0 == .pwrite }).count >= 2)
        #expect(Array(mutations.suffix(3)) == [.fsync, .rename, .fsync])
        let directorySync = recorder.trace.last { $0.operation == .fsync }
        #expect(directorySync?.path == dir.path)
    }

    /// A directory `name` in `dir` holding `target` with the old content.
    static func directoryWithOldTarget(_ dir: TemporaryDirectory, _ name: String) -> String {
        let path = dir.path + "/" + name
        _ = mkdir(path, 0o700)
        writeFile(path + "/target", old)
        return path
    }

    @Test func aReplaceStoppedAtAnyStepLeavesTheOldOrTheNewFileWhole() throws {
        let dir = TemporaryDirectory()
        let recorder = FaultInjectingSyscalls()
        try AtomicFile.replace("target", in: Self.directoryWithOldTarget(dir, "reference"), with: Self.new, syscalls: recorder)
        let steps = recorder.stepCount
        try #require(steps >= 5)
        let renameStep = try #require(recorder.trace.first { $0.operation == .rename }?.step)

        for k in 1...steps {
            let work = Self.directoryWithOldTarget(dir, "work-\(k)")
            let faults = FaultInjectingSyscalls()
            faults.crash(atStep: k)
            var failure: AtomicFileError?
            do { try AtomicFile.replace("target", in: work, with: Self.new, syscalls: faults) } catch { failure = error }
            let error = try #require(failure, "step \(k) of \(steps)")
            // Stopped before the rename: the temporary file failed; at the rename or after it: the install.
            #expect(error.step == (k < renameStep ? .writing : .installing), "step \(k)")
            #expect(error.path == work + (k < renameStep ? "/target.tmp" : "/target"), "step \(k)")

            let content = readFile(work + "/target")
            #expect(content == (k <= renameStep ? Self.old : Self.new), "step \(k) of \(steps)")
        }
    }

    @Test func aPowerLossAtAnyStepLeavesTheOldOrTheNewFileWholeAndACompletedReplaceSurvives() throws {
        let dir = TemporaryDirectory()
        let recorder = PowerLossSyscalls()
        try AtomicFile.replace("target", in: Self.directoryWithOldTarget(dir, "reference"), with: Self.new, syscalls: recorder)
        let steps = recorder.stepCount
        try #require(steps >= 5)

        for k in 1...(steps + 1) {
            let work = Self.directoryWithOldTarget(dir, "work-\(k)")  // there before the layer: durable
            let power = PowerLossSyscalls()
            power.cutPower(atStep: k)
            let completed = (try? AtomicFile.replace("target", in: work, with: Self.new, syscalls: power)) != nil
            #expect(completed == (k > steps), "step \(k) of \(steps)")
            power.simulatePowerLoss()

            let content = readFile(work + "/target")
            #expect(content == Self.old || content == Self.new, "step \(k) of \(steps): a torn file")
            if completed { #expect(content == Self.new, "a completed replace was lost") }
        }
    }

    @Test func theLogsCheckpointWriteNamesTheFileItCouldNotWrite() throws {
        let dir = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        faults.fail(.fsync, errno: ENOSPC, path: .suffix("/recovery-point.tmp"), occurrence: .only(1))
        let error = try #require(throws: LogError.self) {
            try CheckpointFile.writeAtomically([1, 2, 3], directory: dir.path, name: CheckpointFile.recoveryPointName, syscalls: faults)
        }
        #expect(error.code == .io)
        #expect(error.message == "cannot write recovery-point")
        #expect(error.path == dir.path + "/recovery-point.tmp")
        #expect((error.underlying as? SystemError)?.errno == ENOSPC)
        #expect(!fileExists(dir.path + "/recovery-point"))
    }
}
