import Synchronization
import SpoolLog
import SpoolMatching
import SpoolPrimitives
import SpoolTestSupport
import Testing
@testable import SpoolQueue
import SpoolLogTesting

/// Many producers and pollers at once, on several queues, with failures, visibility timeouts,
/// a memory budget far below the backlog and background checkpoints: every task is completed,
/// and after a flush and a crash nothing comes back.
@Suite struct TaskStoreConcurrencyTests {
    @Test func everyTaskIsCompletedUnderConcurrentAddsPollsFailuresAndTimeouts() async throws {
        let dir = TemporaryDirectory()
        var configuration = testConfiguration(.sync, segmentBytes: 64 << 10)
        configuration.ackBucketShift = 6
        configuration.memoryBudgetBytes = 16 << 10
        configuration.refillBatchSize = 8
        configuration.visibilityTimeout = .milliseconds(100)
        configuration.retryInitialInterval = .milliseconds(5)
        configuration.retryMaximumInterval = .milliseconds(20)
        configuration.maxAttempts = 1000
        configuration.checkpointInterval = .milliseconds(20)
        configuration.relocationSegmentThreshold = 3
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        let queues = ["a", "b", "c", "d"]
        let producers = 8, perProducer = 250
        let total = producers * perProducer
        let completed = LockedValue<Set<Int>>([])
        let problems = LockedValue<[String]>([])

        await withTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    for i in 0..<perProducer {
                        let tag = producer * perProducer + i
                        do {
                            _ = try await store.add(TaskStoreCrashTests.tagged(tag), to: queues[tag % 4], kind: .activity,
                                                    options: TaskOptions(priority: 1 + tag % 5))
                        } catch {
                            problems.withLock { $0.append("add \(tag): \(error)") }
                        }
                    }
                }
            }
            for poller in 0..<6 {
                group.addTask {
                    var random = SplitMix64(seed: UInt64(poller + 1))
                    var idle = 0
                    while completed.withLock({ $0.count }) < total && idle < 400 {
                        let queue = queues[random.below(4)]
                        guard let task = try? await store.poll(queue, kind: .activity, timeout: .milliseconds(20)) else {
                            idle += 1
                            continue
                        }
                        idle = 0
                        guard let tag = TaskStoreCrashTests.tag(of: task.payload) else {
                            problems.withLock { $0.append("foreign payload in \(task.id)") }
                            continue
                        }
                        switch random.below(10) {
                        case 0:
                            // Fails: delivered again after a backoff. Its visibility timeout may
                            // have fired first: then the fail is refused, which is fine.
                            _ = try? await store.fail(task.id, reason: "random failure")
                        case 1:
                            break  // abandoned: its visibility timeout redelivers it
                        default:
                            do {
                                try store.complete(task.id)
                                completed.withLock { _ = $0.insert(tag) }
                            } catch let error as QueueError where error.code == .unknownTask {
                                // Redelivered meanwhile (visibility timeout): the new delivery counts.
                            } catch {
                                problems.withLock { $0.append("complete \(task.id): \(error)") }
                            }
                        }
                    }
                }
            }
        }
        #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { $0.prefix(5) })")
        #expect(completed.withLock { $0.count } == total)
        // Every delivery has ended in a completion: nothing is queued, in flight or dead.
        for queue in queues {
            let description = try store.describe(queue, kind: .activity)
            #expect(description.backlogCount == 0 && description.deadLetterCount == 0, "\(queue): \(description.backlogCount) queued")
        }
        try await store.flush()
        store.abandon()

        configuration.checkpointInterval = .seconds(3600)
        let reopened = try TaskStore.open(directory: dir.store, configuration: configuration)
        for queue in queues { #expect(try await reopened.drainNow(queue).isEmpty) }
        try await reopened.close()
    }
}
