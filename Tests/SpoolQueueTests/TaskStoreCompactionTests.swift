#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// What a reader of a store can see: the queues with something in them, their pending tasks in
/// delivery order, their dead letters.
struct StoreView: Equatable, CustomStringConvertible {
    struct Task: Equatable { var id: UInt64; var originalID: UInt64; var priority: Int; var attempt: Int; var payload: [UInt8] }
    var queues: [String] = []
    var pending: [String: [Task]] = [:]
    var dead: [String: [DeadLetter]] = [:]

    var description: String {
        "queues \(queues), pending \(pending.mapValues { $0.map(\.id) }), dead \(dead.mapValues { $0.map(\.id) })"
    }
}

enum CompactionFixture {
    static let queues = ["orders", "mail", "paused"]

    static func configuration(_ syscalls: any Syscalls = SystemCalls()) -> TaskStoreConfiguration {
        var configuration = testConfiguration(.none, segmentBytes: 64 << 10)
        configuration.maxAttempts = 2
        configuration.retryInitialInterval = .milliseconds(1)
        configuration.retryMaximumInterval = .milliseconds(1)
        configuration.log.syscalls = syscalls
        return configuration
    }

    /// A closed store with acknowledged tasks spread over many segments, pending tasks among them,
    /// retries, dead letters, a paused queue and a purge.
    static func build(_ directory: String) async throws {
        let store = try TaskStore.open(directory: directory, configuration: configuration())
        for i in 0..<1200 {
            let queue = queues[i % 2]
            _ = try await store.add(payload(i, size: 150), to: queue, kind: .activity, options: TaskOptions(priority: 1 + i % 3))
        }
        for queue in queues.prefix(2) {
            var i = 0
            while let task = try await store.poll(queue, kind: .activity, timeout: .zero) {
                i += 1
                switch i % 10 {
                case 3: _ = try await store.fail(task.id, reason: "flaky")   // a retry, then (second failure) a dead letter
                case 7: break                                                // left in flight: pending after reopen
                default: try store.complete(task.id)
                }
            }
        }
        // The retries come due; fail some again (dead letters), complete the rest.
        try await Task.sleep(for: .milliseconds(20))
        var j = 0
        while let retry = try await store.poll("orders", kind: .activity, timeout: .zero), retry.attempt == 2 {
            j += 1
            if j % 2 == 0 { _ = try await store.fail(retry.id, reason: "gave up") } else { try store.complete(retry.id) }
        }
        for i in 0..<50 { _ = try await store.add(payload(10_000 + i), to: "paused", kind: .workflow) }
        try await store.pause("paused", kind: .workflow)
        for i in 0..<40 { _ = try await store.add(payload(20_000 + i), to: "purged", kind: .activity) }
        _ = try await store.purge("purged", kind: .activity)
        try await store.flush()
        try await store.close()
    }

    /// Opens the store, reads everything, delivers every pending task (none completed), closes.
    static func view(_ directory: String) async throws -> StoreView {
        let store = try TaskStore.open(directory: directory, configuration: configuration())
        var view = StoreView()
        for summary in store.listQueues().sorted(by: { $0.name < $1.name })
        where summary.backlogCount + summary.inFlightCount + summary.deadLetterCount > 0 || summary.isPaused {
            view.queues.append("\(summary.name)/\(summary.kind) backlog \(summary.backlogCount) dead \(summary.deadLetterCount) paused \(summary.isPaused)")
            view.dead[summary.name] = try store.deadLetters(summary.name, kind: summary.kind, limit: 100_000)
            if summary.isPaused {
                view.pending[summary.name] = try store.peek(summary.name, kind: summary.kind, limit: 100_000).map {
                    StoreView.Task(id: $0.id, originalID: $0.id, priority: $0.priority, attempt: $0.attempt, payload: $0.payload)
                }
                continue
            }
            var tasks: [StoreView.Task] = []
            while let task = try await store.poll(summary.name, kind: summary.kind, timeout: .zero) {
                tasks.append(StoreView.Task(id: task.id, originalID: task.originalID, priority: task.priority, attempt: task.attempt, payload: task.payload))
            }
            view.pending[summary.name] = tasks
        }
        try await store.close()
        return view
    }

}

@Suite struct TaskStoreCompactionTests {
    @Test func aCompactedStoreRestoresTheSameTasks() async throws {
        let dir = TemporaryDirectory()
        try await CompactionFixture.build(dir.store)
        let before = try await CompactionFixture.view(dir.store)
        #expect(before.pending["orders"]?.isEmpty == false)
        #expect(before.dead["orders"]?.isEmpty == false)
        #expect(before.pending["paused"]?.count == 50)
        #expect(try await CompactionFixture.view(dir.store) == before, "viewing changes nothing")

        let summary = try TaskStore.compact(directory: dir.store, configuration: CompactionFixture.configuration())
        #expect(summary.recordsDropped > summary.recordsKept)
        #expect(summary.bytesAfter < summary.bytesBefore / 2)
        let after = try await CompactionFixture.view(dir.store)
        #expect(after == before)

        // Idempotent: a second compaction drops nothing and changes nothing a reader sees.
        let again = try TaskStore.compact(directory: dir.store, configuration: CompactionFixture.configuration())
        #expect(again.recordsDropped == 0)
        #expect(again.recordsKept == summary.recordsKept)
        #expect(try await CompactionFixture.view(dir.store) == before)
    }

    @Test func aDryRunWritesNothingAndPredictsTheCompaction() async throws {
        let dir = TemporaryDirectory()
        try await CompactionFixture.build(dir.store)
        let files = fileTree(dir.store)
        let planned = try TaskStore.compact(directory: dir.store, configuration: CompactionFixture.configuration(), dryRun: true)
        #expect(fileTree(dir.store) == files)
        let done = try TaskStore.compact(directory: dir.store, configuration: CompactionFixture.configuration())
        #expect(planned.recordsKept == done.recordsKept)
        #expect(planned.recordsDropped == done.recordsDropped)
        #expect(planned.segmentsRewritten == done.segmentsRewritten)
        #expect(planned.bytesBefore == done.bytesBefore)
    }

    @Test func compactionRefusesAStoreThatIsOpen() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: CompactionFixture.configuration())
        _ = try await store.add([1], to: "q", kind: .activity)
        let error = #expect(throws: QueueError.self) { try TaskStore.compact(directory: dir.store, configuration: CompactionFixture.configuration()) }
        #expect(error?.description.contains("directoryLocked") == true, "\(String(describing: error))")
        try await store.close()
    }
}

/// A store smaller than one segment: everything is in the active segment, which an offline
/// compaction now seals and rewrites too (issue 23, point 4). Before, it reported 0 records
/// dropped and the store never shrank.
@Suite struct TaskStoreActiveSegmentCompactionTests {
    /// Bytes of the segment files (`*.log`) of the store's log.
    static func segmentBytes(_ store: String) -> Int {
        fileTree(store + "/log").filter { $0.key.hasSuffix(".log") }.reduce(0) { $0 + $1.value.count }
    }

    @Test func aStoreInOneSegmentShrinksToItsLiveDataAndKeepsItsPendingTasks() async throws {
        let dir = TemporaryDirectory()
        // The default 128 MiB segments: 2,000 tasks of 220 bytes never fill one.
        let configuration = testConfiguration(.none)
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        for i in 0..<2000 { _ = try await store.add(payload(i, size: 220), to: "q", kind: .activity) }
        var pending: [[UInt8]] = []
        var i = 0
        while let task = try await store.poll("q", kind: .activity, timeout: .zero) {
            // Nine in ten completed; the tenth stays pending (in flight, delivered again after reopen).
            if i % 10 == 0 { pending.append(task.payload) } else { try store.complete(task.id) }
            i += 1
        }
        try await store.close()
        #expect(fileTree(dir.store + "/log").keys.filter { $0.hasSuffix(".log") }.count == 1)
        let before = Self.segmentBytes(dir.store)

        let summary = try TaskStore.compact(directory: dir.store, configuration: configuration)
        #expect(summary.segmentsRewritten == 1)
        #expect(summary.recordsDropped > 0)
        let live = try TaskStore.liveBytes(directory: dir.store, configuration: configuration)
        let after = Self.segmentBytes(dir.store)
        #expect(after < before / 5, "\(before) bytes before, \(after) after")
        #expect(Double(after) <= 1.2 * Double(live), "\(after) bytes of segments for \(live) bytes of live records")

        // The same 200 tasks come back, in order, bytes equal.
        let reopened = try TaskStore.open(directory: dir.store, configuration: configuration)
        var delivered: [[UInt8]] = []
        while let task = try await reopened.poll("q", kind: .activity, timeout: .zero) { delivered.append(task.payload) }
        #expect(delivered == pending)
        // Appends after the compaction go on in the new active segment.
        let next = try await reopened.add([7, 7], to: "q", kind: .activity)
        #expect(try await reopened.poll("q", kind: .activity, timeout: .zero)?.id == next)
        try await reopened.close()
    }
}
