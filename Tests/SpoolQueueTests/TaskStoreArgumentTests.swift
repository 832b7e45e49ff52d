import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// Bad input gets the exact typed error and writes nothing (the log's end does not move).
@Suite struct TaskStoreArgumentTests {
    func expectNothingWritten(_ store: TaskStore, code: QueueError.Code, _ body: () async throws -> Void,
                              sourceLocation: SourceLocation = #_sourceLocation) async {
        let end = store.logEnd
        do {
            try await body()
            Issue.record("no error; expected \(code)", sourceLocation: sourceLocation)
        } catch let error as QueueError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error) is not a QueueError", sourceLocation: sourceLocation)
        }
        #expect(store.logEnd == end, sourceLocation: sourceLocation)
    }

    @Test func badInputIsRefusedBeforeAnythingIsWritten() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        _ = try await store.add([0], to: "q", kind: .activity)
        let long = String(repeating: "n", count: 1001)
        await expectNothingWritten(store, code: .invalidQueueName) { _ = try await store.add([1], to: "", kind: .activity) }
        await expectNothingWritten(store, code: .invalidQueueName) { _ = try await store.add([1], to: long, kind: .activity) }
        await expectNothingWritten(store, code: .invalidPriority) { _ = try await store.add([1], to: "q", kind: .activity, options: TaskOptions(priority: 0)) }
        await expectNothingWritten(store, code: .invalidPriority) { _ = try await store.add([1], to: "q", kind: .activity, options: TaskOptions(priority: 6)) }
        await expectNothingWritten(store, code: .invalidFairnessKey) {
            _ = try await store.add([1], to: "q", kind: .activity, options: TaskOptions(fairness: FairnessKey("")))
        }
        await expectNothingWritten(store, code: .invalidFairnessKey) {
            _ = try await store.add([1], to: "q", kind: .activity, options: TaskOptions(fairness: FairnessKey("k", weight: 0)))
        }
        await expectNothingWritten(store, code: .payloadTooLarge) {
            _ = try await store.add([UInt8](repeating: 1, count: store.configuration.log.maxRecordBytes), to: "q", kind: .activity)
        }
        await expectNothingWritten(store, code: .unknownTask) { try store.complete(424242) }
        await expectNothingWritten(store, code: .unknownTask) { try await store.fail(424242, reason: "x") }
        await expectNothingWritten(store, code: .invalidRateLimit) { try await store.setRateLimit(RateLimit(perSecond: -1), for: "q", kind: .activity) }
        await expectNothingWritten(store, code: .invalidQueueName) { try await store.pause("", kind: .activity) }
        await expectNothingWritten(store, code: .invalidQueueName) { try await store.purge(long, kind: .activity) }
        await expectNothingWritten(store, code: .invalidArgument) { _ = try await store.poll("q", kind: .activity, timeout: .seconds(-1)) }
        await expectNothingWritten(store, code: .invalidArgument) { _ = try store.peek("q", kind: .activity, limit: 0) }
        // The queue still works and holds just the one task.
        let task = try #require(try await store.poll("q", kind: .activity, timeout: .zero))
        #expect(task.payload == [0])
        try store.complete(task.id)
        await expectNothingWritten(store, code: .unknownTask) { try store.complete(task.id) }
        try await store.close()
        await expectNothingWritten(store, code: .closed) { _ = try await store.add([1], to: "q", kind: .activity) }
    }

    @Test func aSecondOpenOfTheSameDirectoryIsRefused() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration())
        #expect { _ = try TaskStore.open(directory: dir.store, configuration: testConfiguration()) } throws: {
            ($0 as? QueueError)?.code == .directoryLocked
        }
        try await store.close()
    }

    @Test func aMissingParentDirectoryIsRefused() throws {
        let dir = TemporaryDirectory()
        #expect { _ = try TaskStore.open(directory: dir.path + "/missing/tasks", configuration: testConfiguration()) } throws: {
            ($0 as? QueueError)?.code == .directoryMissing
        }
        #expect(fileNames(dir.path).isEmpty)
    }

    @Test func badConfigurationIsRefused() throws {
        let dir = TemporaryDirectory()
        var configuration = testConfiguration()
        configuration.maxAttempts = 0
        #expect { _ = try TaskStore.open(directory: dir.store, configuration: configuration) } throws: {
            ($0 as? QueueError)?.code == .invalidConfiguration
        }
        #expect(fileNames(dir.path).isEmpty)
    }

    @Test func tasksRecordedElsewhereAreDeliveredButNeverWritten() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        let end = store.logEnd
        let id = try store.addRecordedElsewhere([5, 5], to: "engine", kind: .activity, reference: 77)
        let task = try #require(try await store.poll("engine", kind: .activity, timeout: .zero))
        #expect(task.id == id && task.isRecordedElsewhere && task.payload == [5, 5])
        try store.complete(task.id)
        try await store.flush()
        #expect(store.logEnd == end)
        #expect { try store.addRecordedElsewhere([1], to: "engine", kind: .activity, reference: 1 << 63) } throws: {
            ($0 as? QueueError)?.code == .invalidArgument
        }
        try await store.close()
    }
}
