import Testing
@testable import SpoolMatching

@Suite("Dispatcher bad input")
struct DispatcherArgumentTests {
    func code(_ body: () throws -> Void) -> MatchingError.Code? {
        do {
            try body()
            return nil
        } catch let error as MatchingError {
            return error.code
        } catch {
            return nil
        }
    }

    @Test("empty and oversized queue names are rejected")
    func queueNames() {
        let dispatcher = makeDispatcher()
        #expect(code { _ = try dispatcher.queue("", kind: .activity) } == .invalidQueueName)
        #expect(code { _ = try dispatcher.queue(String(repeating: "x", count: 1001), kind: .workflow) } == .invalidQueueName)
        #expect(code { _ = try dispatcher.queue(String(repeating: "x", count: 1000), kind: .workflow) } == nil)
        #expect(code { try dispatcher.add(task(1), to: "", kind: .activity) } == .invalidQueueName)
        #expect(dispatcher.queueNameCount == 1)
    }

    @Test("priorities 0 and 6 are rejected and nothing is queued", arguments: [0, 6, -1, 100])
    func priorities(priority: Int) throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        let failure: MatchingError? = {
            do { try queue.add(task(42, priority: priority)); return nil } catch { return error as? MatchingError }
        }()
        #expect(failure?.code == .invalidPriority)
        #expect(failure?.queue == "q")
        #expect(failure?.taskID == 42)
        #expect(queue.describe().added == 0)
        #expect(queue.tryPoll() == nil)
    }

    @Test("negative, non-finite and zero-burst rates are rejected")
    func rates() throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        #expect(code { try queue.setRateLimit(RateLimit(perSecond: -1)) } == .invalidRateLimit)
        #expect(code { try queue.setRateLimit(RateLimit(perSecond: .nan)) } == .invalidRateLimit)
        #expect(code { try queue.setRateLimit(RateLimit(perSecond: .infinity)) } == .invalidRateLimit)
        #expect(code { try queue.setRateLimit(RateLimit(perSecond: 10, burst: 0)) } == .invalidRateLimit)
        #expect(code { _ = try queue.poller(identity: "w", maxTasksPerSecond: -5) } == .invalidRateLimit)
        #expect(code { _ = try queue.poller(identity: "w", maxTasksPerSecond: 0) } == .invalidRateLimit)
        #expect(code { _ = try queue.poller(identity: "") } == .invalidPollerIdentity)
        #expect(queue.rateLimit == nil)
        #expect(!queue.isPaused)
    }

    @Test("bad fairness keys are rejected")
    func fairnessKeys() throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        #expect(code { try queue.add(task(1, key: "")) } == .invalidFairnessKey)
        #expect(code { try queue.add(task(1, key: "tenant", weight: 0)) } == .invalidFairnessKey)
        #expect(code { try queue.add(task(1, key: String(repeating: "k", count: 257))) } == .invalidFairnessKey)
        #expect(queue.backlogCount == 0)
    }

    @Test("bad configurations are rejected")
    func configurations() {
        var configuration = DispatcherConfiguration()
        configuration.partitions = 0
        #expect(code { _ = try Dispatcher<UInt64>(configuration: configuration) } == .invalidConfiguration)
        configuration = DispatcherConfiguration()
        configuration.registryShards = 3
        #expect(code { _ = try Dispatcher<UInt64>(configuration: configuration) } == .invalidConfiguration)
        configuration = DispatcherConfiguration()
        configuration.ringCapacity = 1
        #expect(code { _ = try Dispatcher<UInt64>(configuration: configuration) } == .invalidConfiguration)
    }
}
