import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// Failures, backoff, dead letters and visibility timeouts, on a manual clock: nothing sleeps.
@Suite struct TaskStoreRetryTests {
    func configuration() -> TaskStoreConfiguration {
        var configuration = testConfiguration(.sync)
        configuration.maxAttempts = 3
        configuration.retryInitialInterval = .seconds(2)
        configuration.retryBackoffCoefficient = 3
        configuration.retryMaximumInterval = .seconds(100)
        configuration.visibilityTimeout = .seconds(30)
        return configuration
    }

    @Test func backoffIsExponentialAndCapped() {
        var configuration = configuration()
        configuration.retryMaximumInterval = .seconds(10)
        #expect(configuration.retryDelay(afterAttempt: 1) == .seconds(2))
        #expect(configuration.retryDelay(afterAttempt: 2) == .seconds(6))
        #expect(configuration.retryDelay(afterAttempt: 3) == .seconds(10))
        #expect(configuration.retryDelay(afterAttempt: 40) == .seconds(10))
    }

    @Test func aFailedTaskComesBackAfterItsBackoffThenGoesToTheDeadLetterQueue() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualMatchingClock()
        let store = try TaskStore.open(directory: dir.store, configuration: configuration(), clock: .manual(clock))
        let id = try await store.add(Array("flaky".utf8), to: "q", kind: .activity, options: TaskOptions(priority: 2))

        let first = try #require(try await store.poll("q", kind: .activity, timeout: .zero))
        #expect(first.id == id && first.attempt == 1)
        let outcome = try await store.fail(first.id, reason: "boom")
        guard case .retrying(let secondID, 2, let notBefore) = outcome else { Issue.record("got \(outcome)"); return }
        #expect(notBefore == clock.now().advanced(by: .seconds(2)))
        #expect(secondID != id)
        // Not before the backoff…
        clock.advance(by: .milliseconds(1999))
        #expect(try await store.poll("q", kind: .activity, timeout: .zero) == nil)
        #expect(try store.describe("q", kind: .activity).delayedCount == 1)
        // …then as attempt 2, same bytes, same original id.
        clock.advance(by: .milliseconds(1))
        let second = try #require(try await store.poll("q", kind: .activity, timeout: .zero))
        #expect(second.id == secondID && second.attempt == 2 && second.originalID == id && second.payload == Array("flaky".utf8))
        #expect(second.priority == 2)

        guard case .retrying(let thirdID, 3, _) = try await store.fail(second.id, reason: "boom again") else { Issue.record("no third attempt"); return }
        clock.advance(by: .seconds(6))
        let third = try #require(try await store.poll("q", kind: .activity, timeout: .zero))
        #expect(third.id == thirdID && third.attempt == 3)

        guard case .deadLettered(let deadID) = try await store.fail(third.id, reason: "gave up") else { Issue.record("not dead-lettered"); return }
        clock.advance(by: .seconds(1000))
        #expect(try await store.poll("q", kind: .activity, timeout: .zero) == nil)
        let dead = try store.deadLetters("q", kind: .activity)
        #expect(dead == [DeadLetter(id: deadID, originalID: id, attempts: 3, reason: "gave up", payload: Array("flaky".utf8), priority: 2)])
        #expect(try store.describe("q", kind: .activity).deadLetterCount == 1)
        // An old id of the task is no longer in flight.
        #expect(throws: QueueError.self) { try store.complete(first.id) }
        try await store.close()

        // The dead letter is durable; the task is not delivered again.
        let reopened = try TaskStore.open(directory: dir.store, configuration: configuration(), clock: .manual(clock))
        #expect(try reopened.deadLetters("q", kind: .activity).map(\.id) == [deadID])
        #expect(try await reopened.poll("q", kind: .activity, timeout: .zero) == nil)
        try await reopened.close()
    }

    @Test func aRetryWaitingOutItsBackoffSurvivesAReopen() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualMatchingClock()
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: configuration(), clock: .manual(clock))
            _ = try await store.add([1, 2, 3], to: "q", kind: .workflow)
            let task = try #require(try await store.poll("q", kind: .workflow, timeout: .zero))
            try await store.fail(task.id, reason: "later")
            try await store.close()
        }
        let reopened = try TaskStore.open(directory: dir.store, configuration: configuration(), clock: .manual(clock))
        #expect(try await reopened.poll("q", kind: .workflow, timeout: .zero) == nil)
        clock.advance(by: .seconds(2))
        let again = try #require(try await reopened.poll("q", kind: .workflow, timeout: .zero))
        #expect(again.attempt == 2 && again.payload == [1, 2, 3])
        try await reopened.close()
    }

    @Test func aTaskNotCompletedWithinTheVisibilityTimeoutIsDeliveredAgain() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualMatchingClock()
        let store = try TaskStore.open(directory: dir.store, configuration: configuration(), clock: .manual(clock))
        let id = try await store.add(Array("slow".utf8), to: "q", kind: .activity)
        let first = try #require(try await store.poll("q", kind: .activity, timeout: .zero))
        #expect(first.id == id)
        clock.advance(by: .seconds(29))
        #expect(try await store.poll("q", kind: .activity, timeout: .zero) == nil)
        clock.advance(by: .seconds(1))
        // Either the poll or the background task handles the timeout; the poll waits for it.
        let second = try #require(try await store.poll("q", kind: .activity, timeout: nil))
        #expect(second.originalID == id && second.attempt == 2 && second.payload == Array("slow".utf8))
        // The first delivery can no longer be completed; the second can.
        #expect(throws: QueueError.self) { try store.complete(first.id) }
        try store.complete(second.id)
        try await store.close()
    }

    @Test func repeatedVisibilityTimeoutsEndInTheDeadLetterQueue() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualMatchingClock()
        let store = try TaskStore.open(directory: dir.store, configuration: configuration(), clock: .manual(clock))
        _ = try await store.add([7], to: "q", kind: .activity)
        for attempt in 1...3 {
            let task = try #require(try await store.poll("q", kind: .activity, timeout: attempt == 1 ? .zero : nil))
            #expect(task.attempt == attempt)
            clock.advance(by: .seconds(31))
        }
        while try store.describe("q", kind: .activity).deadLetterCount == 0 {
            await store.runDueWork()
            await Task.yield()
        }
        let dead = try store.deadLetters("q", kind: .activity)
        #expect(dead.count == 1 && dead[0].reason == "visibility timeout" && dead[0].attempts == 3)
        try await store.close()
    }

    @Test func failOfATaskNotInFlightIsATypedErrorAndWritesNothing() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: configuration())
        let id = try await store.add([1], to: "q", kind: .activity)
        let end = store.logEnd
        await #expect { try await store.fail(id, reason: "never delivered") } throws: { ($0 as? QueueError)?.code == .unknownTask }
        await #expect { try await store.fail(12345, reason: "no such task") } throws: { ($0 as? QueueError)?.code == .unknownTask }
        #expect(store.logEnd == end)
        try await store.close()
    }
}
