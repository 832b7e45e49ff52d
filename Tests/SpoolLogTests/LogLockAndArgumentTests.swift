#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// One owner per directory, and a typed error for every argument or state a call cannot accept.
@Suite struct LogLockAndArgumentTests {
    /// 64 KiB segments, so that a few hundred records span several.
    static var smallSegments: LogConfiguration {
        var configuration = LogConfiguration()
        configuration.segmentBytes = 64 << 10
        configuration.maxRecordBytes = 16 << 10
        return configuration
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// The exit status of `/usr/bin/flock -n <path> true`, run as another process: 0 when it
    /// got the lock, 1 when another process (or open file description) holds it.
    static func flockInAnotherProcess(_ path: String) -> Int32 {
        let status = system("/usr/bin/flock -n '\(path)' true")
        return (status >> 8) & 0xff  // WEXITSTATUS
    }

    // MARK: The directory lock

    @Test func aSecondOpenInTheSameProcessIsRefusedUntilClose() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log)
        _ = try await log.append([1])

        let error = #expect(throws: LogError.self) { try Log.open(directory: dir.log) }
        #expect(error?.code == .directoryLocked)
        #expect(error?.path == dir.log)
        #expect(error?.description.contains(dir.log) == true)
        // The refused open changed nothing: the first log goes on.
        #expect(try await log.append([2]) == 1)

        try log.close()
        let reopened = try Log.open(directory: dir.log)
        #expect(try reopened.read(at: 1) == [2])
        try reopened.close()
    }

    @Test func anotherProcessCannotLockTheDirectoryWhileTheLogIsOpen() throws {
        let dir = TemporaryDirectory()
        let lockPath = dir.log + "/" + Log.lockFileName
        let log = try Log.open(directory: dir.log)
        #expect(Self.flockInAnotherProcess(lockPath) == 1)
        try log.close()
        #expect(Self.flockInAnotherProcess(lockPath) == 0)

        // abandon() releases it too, as a killed process would.
        let again = try Log.open(directory: dir.log)
        #expect(Self.flockInAnotherProcess(lockPath) == 1)
        again.abandon()
        #expect(Self.flockInAnotherProcess(lockPath) == 0)
    }

    // MARK: Configuration

    /// A configuration with one field out of range.
    struct BadConfiguration: Sendable, CustomTestStringConvertible {
        var field: String
        var value: String
        var apply: @Sendable (inout LogConfiguration) -> Void

        var testDescription: String { "\(field) = \(value)" }

        static let all: [BadConfiguration] = [
            .init(field: "segmentBytes", value: "0") { $0.segmentBytes = 0 },
            .init(field: "segmentBytes", value: "65535") { $0.segmentBytes = 65535 },
            .init(field: "segmentBytes", value: "2^31") { $0.segmentBytes = Int(Int32.max) + 1 },
            .init(field: "durability", value: "interval(0)") { $0.durability = .interval(milliseconds: 0) },
            .init(field: "durability", value: "interval(-5)") { $0.durability = .interval(milliseconds: -5) },
            .init(field: "indexIntervalBytes", value: "0") { $0.indexIntervalBytes = 0 },
            .init(field: "maxRecordBytes", value: "segmentBytes") {
                $0.segmentBytes = 64 << 10
                $0.maxRecordBytes = 64 << 10
            },
            .init(field: "maxRecordBytes", value: "0") { $0.maxRecordBytes = 0 },
            .init(field: "concurrentSyncs", value: "0") { $0.concurrentSyncs = 0 },
            .init(field: "segmentMaxAgeMilliseconds", value: "0") { $0.segmentMaxAgeMilliseconds = 0 },
            .init(field: "maxBatchBytes", value: "0") { $0.maxBatchBytes = 0 },
            .init(field: "preallocationBytes", value: "-1") { $0.preallocationBytes = -1 },
        ]
    }

    @Test(arguments: BadConfiguration.all)
    func anInvalidConfigurationIsRefusedBeforeTouchingTheDisk(bad: BadConfiguration) {
        let dir = TemporaryDirectory()
        var configuration = LogConfiguration()
        bad.apply(&configuration)
        let error = #expect(throws: LogError.self) { try Log.open(directory: dir.log, configuration: configuration) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.hasPrefix(bad.field + " = ") == true, "\(String(describing: error))")
        #expect(!Self.exists(dir.log), "the log directory was created")
    }

    // MARK: Appends

    @Test func anOversizedRecordIsRefusedAndNothingIsWritten() async throws {
        let dir = TemporaryDirectory()
        var configuration = LogConfiguration()
        configuration.segmentBytes = 64 << 10
        configuration.maxRecordBytes = 1000
        let log = try Log.open(directory: dir.log, configuration: configuration)
        _ = try await log.append(payload(0, size: 1000))  // exactly the limit is accepted
        let bytesWritten = log.statistics.bytesWritten

        let single = await #expect(throws: LogError.self) { try await log.append(payload(1, size: 1001)) }
        #expect(single?.code == .recordTooLarge)
        // One oversized record refuses the whole call: the small one is not written either.
        let batch = await #expect(throws: LogError.self) { try await log.append(contentsOf: [[1, 2], payload(2, size: 5000)]) }
        #expect(batch?.code == .recordTooLarge)
        // Records within the limit whose sum does not fit in one segment (they share one batch).
        let tooMany = await #expect(throws: LogError.self) {
            try await log.append(contentsOf: (0..<70).map { payload($0, size: 1000) })
        }
        #expect(tooMany?.code == .recordTooLarge)
        #expect(log.endOffset == 1)
        #expect(log.statistics.bytesWritten == bytesWritten)
        #expect(try readAll(log).map(\.offset) == [0])
        // The log is not poisoned by it.
        #expect(try await log.append([9]) == 1)
        try log.close()
    }

    @Test func anEmptyBatchIsAnInvalidArgument() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log)
        let error = await #expect(throws: LogError.self) { try await log.append(contentsOf: []) }
        #expect(error?.code == .invalidArgument)
        #expect(log.endOffset == 0)
        #expect(try await log.append([1]) == 0)
        try log.close()
    }

    // MARK: Reads

    @Test func readsOutsideTheLogAreOutOfRange() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: Self.smallSegments)
        for i in 0..<200 { _ = try await log.append(payload(i, size: 1000)) }
        let bases = log.segmentBaseOffsets
        try #require(bases.count >= 3)

        for offset: UInt64 in [200, 201, 10_000, .max] {
            let error = #expect(throws: LogError.self, "offset \(offset)") { try log.read(at: offset) }
            #expect(error?.code == .offsetOutOfRange)
        }
        let past = #expect(throws: LogError.self) { try log.read(from: 201) }
        #expect(past?.code == .offsetOutOfRange)
        #expect(try log.read(from: 200).isEmpty, "reading from the end returns nothing")

        try log.deleteSegments(below: bases[1])
        for offset in [0, bases[1] - 1] {
            let error = #expect(throws: LogError.self, "offset \(offset)") { try log.read(at: offset) }
            #expect(error?.code == .offsetOutOfRange)
            let from = #expect(throws: LogError.self, "offset \(offset)") { try log.read(from: offset) }
            #expect(from?.code == .offsetOutOfRange)
        }
        #expect(try log.read(at: bases[1]) == payload(Int(bases[1]), size: 1000))
        try log.close()
    }

    @Test(arguments: [0, -1])
    func readingZeroRecordsIsAnInvalidArgument(maxRecords: Int) async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log)
        _ = try await log.append([1])
        let error = #expect(throws: LogError.self) { try log.read(from: 0, maxRecords: maxRecords) }
        #expect(error?.code == .invalidArgument)
        try log.close()
    }

    // MARK: Paths

    @Test func openingARegularFileFailsAndLeavesItAlone() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/not-a-directory"
        writeFile(path, [1, 2, 3])
        let error = #expect(throws: LogError.self) { try Log.open(directory: path) }
        #expect(error?.path?.hasPrefix(path) == true, "\(String(describing: error))")
        #expect(readFile(path) == [1, 2, 3])
    }

    @Test func openingADirectoryOfForeignFilesIsNotALogDirectory() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/photos"
        #expect(mkdir(path, 0o700) == 0)
        writeFile(path + "/holiday.jpg", [0xff, 0xd8, 0xff])
        writeFile(path + "/notes.txt", Array("remember".utf8))
        let error = #expect(throws: LogError.self) { try Log.open(directory: path) }
        #expect(error?.code == .notALogDirectory)
        #expect(error?.path == path)
        #expect(readFile(path + "/holiday.jpg") == [0xff, 0xd8, 0xff])
        #expect(readFile(path + "/notes.txt") == Array("remember".utf8))
        // Nothing was created in it, not even the lock file.
        #expect(try SystemCalls().listDirectory(path).sorted() == ["holiday.jpg", "notes.txt"])
    }

    @Test func anEmptyPathIsAnInvalidArgument() {
        let error = #expect(throws: LogError.self) { try Log.open(directory: "") }
        #expect(error?.code == .invalidArgument)
    }

    // MARK: After close

    @Test(arguments: [false, true])
    func everyCallAfterCloseThrowsClosed(abandoned: Bool) async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: Self.smallSegments)
        for i in 0..<100 { _ = try await log.append(payload(i, size: 1000)) }
        if abandoned { log.abandon() } else { try log.close() }

        func expectClosed(_ error: LogError?, _ call: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(error?.code == .closed, "\(call): \(String(describing: error))", sourceLocation: sourceLocation)
        }
        expectClosed(await #expect(throws: LogError.self) { try await log.append([1]) }, "append")
        expectClosed(await #expect(throws: LogError.self) { try await log.append(contentsOf: [[1]]) }, "append(contentsOf:)")
        expectClosed(await #expect(throws: LogError.self) { try await log.flush() }, "flush")
        expectClosed(#expect(throws: LogError.self) { try log.read(at: 0) }, "read(at:)")
        expectClosed(#expect(throws: LogError.self) { try log.read(from: 0) }, "read(from:)")
        var reader = log.reader(from: 0)
        expectClosed(#expect(throws: LogError.self) { try reader.next() }, "reader")
        expectClosed(#expect(throws: LogError.self) { try log.deleteSegments(below: 50) }, "deleteSegments")
        expectClosed(#expect(throws: LogError.self) { try log.compact { _ in true } }, "compact")
        // A second close is harmless.
        try log.close()
        #expect(log.endOffset == 100)
    }
}
