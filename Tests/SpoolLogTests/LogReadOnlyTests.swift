#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// A log opened with `access: .readOnly` writes nothing at all, reads every record, and refuses
/// every call that would write.
@Suite struct LogReadOnlyTests {
    /// Every file of `directory` with its bytes (and mode), to compare before and after.
    static func snapshot(_ directory: String) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for name in try SystemCalls().listDirectory(directory) {
            let path = directory + "/" + name
            var info = stat()
            #expect(stat(path, &info) == 0)
            files[name] = (info.st_mode & S_IFMT) == S_IFDIR ? [] : readFile(path)
        }
        return files
    }

    /// The syscalls of a read-only file system: every call that could change the disk fails with
    /// EROFS, including an `open` for writing (which ``FaultInjectingSyscalls`` does not tell apart).
    struct ReadOnlyFileSystem: Syscalls {
        let faults: FaultInjectingSyscalls

        init() {
            faults = FaultInjectingSyscalls()
            for operation: FaultInjectingSyscalls.Operation in [.pwrite, .fdatasync, .fsync, .ftruncate, .rename, .unlink, .mkdir] {
                faults.fail(operation, errno: EROFS)
            }
        }

        func open(_ path: String, flags: Int32, mode: mode_t) throws(SystemError) -> Int32 {
            if flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC) != 0 { throw SystemError(call: "open", errno: EROFS, path: path) }
            return try faults.open(path, flags: flags, mode: mode)
        }
        func close(_ fd: Int32) { faults.close(fd) }
        func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at position: Int64) throws(SystemError) -> Int {
            try faults.pwrite(fd, buffer, at: position)
        }
        func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws(SystemError) -> Int {
            try faults.pread(fd, into: buffer, at: position)
        }
        func fdatasync(_ fd: Int32) throws(SystemError) { try faults.fdatasync(fd) }
        func fsync(_ fd: Int32) throws(SystemError) { try faults.fsync(fd) }
        func ftruncate(_ fd: Int32, to size: Int64) throws(SystemError) { try faults.ftruncate(fd, to: size) }
        func fileSize(_ fd: Int32) throws(SystemError) -> Int64 { try faults.fileSize(fd) }
        func rename(_ from: String, to: String) throws(SystemError) { try faults.rename(from, to: to) }
        func unlink(_ path: String) throws(SystemError) { try faults.unlink(path) }
        func mkdir(_ path: String, mode: mode_t) throws(SystemError) { try faults.mkdir(path, mode: mode) }
        func tryLock(_ fd: Int32) throws(SystemError) -> Bool { try faults.tryLock(fd) }
        func listDirectory(_ path: String) throws(SystemError) -> [String] { try faults.listDirectory(path) }
    }

    /// A log left by a killed process, with a torn tail and a sealed segment's index missing: what
    /// a read-write open would repair on disk.
    static func makeUncleanLog(_ directory: String) async throws -> (records: Int, bases: [UInt64]) {
        let log = try Log.open(directory: directory, configuration: smallSegmentConfiguration())
        for i in stride(from: 0, to: 2000, by: 20) { _ = try await log.append(contentsOf: (i..<i + 20).map { payload($0) }) }
        try await log.flush()
        let bases = log.segmentBaseOffsets
        log.abandon()
        let last = segmentPath(directory, bases[bases.count - 1])
        overwrite(last, at: fileSize(last), with: Array(repeating: 0xAB, count: 300))  // a torn tail
        removeFile(segmentPath(directory, bases[0], ".index"))
        return (2000, bases)
    }

    static func readOnly(_ syscalls: any Syscalls = SystemCalls()) -> LogConfiguration {
        var configuration = smallSegmentConfiguration()
        configuration.access = .readOnly
        configuration.syscalls = syscalls
        return configuration
    }

    @Test func aReadOnlyOpenWritesNothingReadsEverythingAndRefusesWrites() async throws {
        let dir = TemporaryDirectory()
        let (count, _) = try await Self.makeUncleanLog(dir.log)
        let before = try Self.snapshot(dir.log)
        let fileSystem = ReadOnlyFileSystem()

        let log = try Log.open(directory: dir.log, configuration: Self.readOnly(fileSystem))
        #expect(log.recovery.tornTailIgnored)
        let records = try readAll(log)
        #expect(records.count == count)
        #expect(records.allSatisfy { $0.payload == payload(Int($0.offset)) })
        #expect(log.endOffset == UInt64(count))

        var error = await #expect(throws: LogError.self) { _ = try await log.append([1, 2, 3]) }
        #expect(error?.code == .readOnly)
        error = await #expect(throws: LogError.self) { try await log.flush() }
        #expect(error?.code == .readOnly)
        #expect(throws: LogError.self) { _ = try log.compactByOffset { _ in false } }
        error = #expect(throws: LogError.self) { _ = try log.deleteSegments(below: 1000) }
        #expect(error?.code == .readOnly)
        try log.close()

        #expect(fileSystem.faults.trace.filter(\.isMutating).isEmpty, "\(fileSystem.faults.trace.filter(\.isMutating))")
        #expect(try Self.snapshot(dir.log) == before, "the directory is byte for byte as it was")

        // A read-write open afterwards still does the repairs.
        let writer = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        #expect(writer.recovery.truncatedBytes == 300)
        #expect(try readAll(writer).count == count)
        try writer.close()
    }

    @Test func aReadOnlyOpenOfAReadOnlyDirectoryWithoutALockFile() async throws {
        let dir = TemporaryDirectory()
        let (count, _) = try await Self.makeUncleanLog(dir.log)
        removeFile(dir.log + "/" + Log.lockFileName)
        for name in try SystemCalls().listDirectory(dir.log) { #expect(chmod(dir.log + "/" + name, 0o400) == 0) }
        #expect(chmod(dir.log, 0o500) == 0)
        defer { _ = chmod(dir.log, 0o700) }
        let before = try Self.snapshot(dir.log)

        let log = try Log.open(directory: dir.log, configuration: Self.readOnly(ReadOnlyFileSystem()))
        #expect(try readAll(log).count == count)
        try log.close()
        #expect(!fileExists(dir.log + "/" + Log.lockFileName), "no lock file is created")
        #expect(try Self.snapshot(dir.log) == before)
    }

    @Test func readersAndAWriterExcludeEachOther() async throws {
        let dir = TemporaryDirectory()
        let writer = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        _ = try await writer.append(payload(0))
        var error = #expect(throws: LogError.self) { try Log.open(directory: dir.log, configuration: Self.readOnly()) }
        #expect(error?.code == .directoryLocked)
        try writer.close()

        let first = try Log.open(directory: dir.log, configuration: Self.readOnly())
        let second = try Log.open(directory: dir.log, configuration: Self.readOnly())
        #expect(try second.read(at: 0) == payload(0))
        error = #expect(throws: LogError.self) { try Log.open(directory: dir.log, configuration: smallSegmentConfiguration()) }
        #expect(error?.code == .directoryLocked)
        try first.close()
        try second.close()
        try Log.open(directory: dir.log, configuration: smallSegmentConfiguration()).close()
    }

    @Test func aReadOnlyOpenCreatesNoDirectory() {
        let dir = TemporaryDirectory()
        let error = #expect(throws: LogError.self) { try Log.open(directory: dir.log, configuration: Self.readOnly()) }
        #expect(error?.code == .logDirectoryMissing)
        #expect(!fileExists(dir.log))
    }

    @Test func aReadOnlyOpenStillRefusesAMissingSegment() async throws {
        let dir = TemporaryDirectory()
        let bases = try await LogManifestTests.makeLog(dir.log)
        removeFile(segmentPath(dir.log, bases[1]))
        let error = #expect(throws: LogError.self) { try Log.open(directory: dir.log, configuration: Self.readOnly()) }
        #expect(error?.code == .missingSegment)
    }
}
