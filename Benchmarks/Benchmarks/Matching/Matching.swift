// SpoolMatching's hot paths, one thread at a time: add + tryPoll, the hand-off to a waiting
// poller, priority lanes, fairness keys, a queue rate limit (on a manual clock) and partitions.
// Each has a baseline in the same run: a Mutex + Deque dispatcher with the same interface (the
// one `spool bench dispatch` races against), or the same SpoolMatching path without the feature.
//
// Contention between cores is what `spool bench dispatch` measures; these cases measure the
// instruction path of one operation and its allocations.

import Benchmark
import DequeModule
import SpoolMatching
import Synchronization

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2)
    )
    let task = QueuedTask<UInt64>(id: 1, payload: 7)

    // MARK: add + tryPoll, no contention

    Benchmark("Dispatch add+tryPoll", configuration: configuration) { benchmark in
        let queue = try Dispatcher<UInt64>().queue("bench", kind: .activity)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try queue.add(task)
            blackHole(queue.tryPoll())
        }
    }

    Benchmark("Dispatch add+tryPoll Mutex+Deque (baseline)", configuration: configuration) { benchmark in
        let queue = MutexDequeDispatcher()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            queue.add(task)
            blackHole(queue.tryPoll())
        }
    }

    // MARK: hand-off to a waiting poller

    // Ping-pong between two queues: an echo task polls `ping` and adds what it gets to `pong`;
    // the benchmark adds to `ping` and polls `pong`. Each round is two hand-offs, nearly always
    // to a poller that is already suspended, and two executor hops.
    Benchmark("Dispatch add→waiting poll hand-off (ping-pong round)", configuration: configuration) { benchmark in
        let dispatcher = try Dispatcher<UInt64>()
        let ping = try dispatcher.queue("ping", kind: .activity)
        let pong = try dispatcher.queue("pong", kind: .activity)
        let rounds = benchmark.scaledIterations.count
        let echo = Task {
            for _ in 0..<rounds {
                guard let received = await ping.poll(until: nil) else { return }
                try? pong.add(received)
            }
        }
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            try ping.add(QueuedTask(id: UInt64(i), payload: 0))
            blackHole(await pong.poll(until: nil))
        }
        benchmark.stopMeasurement()
        await echo.value
    }

    Benchmark("Dispatch add→waiting poll hand-off Mutex+Deque (baseline)", configuration: configuration) { benchmark in
        let ping = MutexDequeDispatcher()
        let pong = MutexDequeDispatcher()
        let rounds = benchmark.scaledIterations.count
        let echo = Task {
            for _ in 0..<rounds {
                guard let received = await ping.poll() else { return }
                pong.add(received)
            }
        }
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            ping.add(QueuedTask(id: UInt64(i), payload: 0))
            blackHole(await pong.poll())
        }
        benchmark.stopMeasurement()
        await echo.value
    }

    // MARK: priority lanes

    // Five adds, lowest priority first, then five polls that must come out highest first.
    let byPriority = (1...5).reversed().map { QueuedTask<UInt64>(id: UInt64($0), priority: $0, payload: 0) }

    Benchmark("Priority lanes 5 adds+5 tryPolls", configuration: configuration) { benchmark in
        let queue = try Dispatcher<UInt64>().queue("bench", kind: .activity)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for task in byPriority { try queue.add(task) }
            for _ in 0..<5 { blackHole(queue.tryPoll()) }
        }
    }

    Benchmark("Priority lanes 5 adds+5 tryPolls Mutex+5 Deques (baseline)", configuration: configuration) { benchmark in
        let queue = MutexPriorityDispatcher()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for task in byPriority { queue.add(task) }
            for _ in 0..<5 { blackHole(queue.tryPoll()) }
        }
    }

    // MARK: fairness keys

    // Four tenants with weights 1…4 (stride scheduling under the lane's lock), against the
    // same four tasks without keys (the lock-free ring).
    let keyed = (1...4).map { QueuedTask<UInt64>(id: UInt64($0), fairness: FairnessKey("tenant-\($0)", weight: UInt32($0)), payload: 0) }
    let unkeyed = (1...4).map { QueuedTask<UInt64>(id: UInt64($0), payload: 0) }

    Benchmark("Fairness keys 4 adds+4 tryPolls", configuration: configuration) { benchmark in
        let queue = try Dispatcher<UInt64>().queue("bench", kind: .activity)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for task in keyed { try queue.add(task) }
            for _ in 0..<4 { blackHole(queue.tryPoll()) }
        }
    }

    Benchmark("Fairness keys 4 adds+4 tryPolls, no keys (baseline)", configuration: configuration) { benchmark in
        let queue = try Dispatcher<UInt64>().queue("bench", kind: .activity)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for task in unkeyed { try queue.add(task) }
            for _ in 0..<4 { blackHole(queue.tryPoll()) }
        }
    }

    // MARK: rate limit token take

    // A queue limited to 1M tasks/s (burst 1) on a manual clock moved 1 µs per task, so every
    // tryPoll finds one token (GCRA: one compare-and-swap on the theoretical arrival time).
    Benchmark("Rate limit token take add+tryPoll (manual clock)", configuration: configuration) { benchmark in
        let clock = ManualMatchingClock()
        let queue = try Dispatcher<UInt64>(clock: .manual(clock)).queue("bench", kind: .activity)
        try queue.setRateLimit(RateLimit(perSecond: 1_000_000, burst: 1))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            clock.advance(by: .microseconds(1))
            try queue.add(task)
            guard let polled = queue.tryPoll() else { fatalError("no token although the clock moved one interval") }
            blackHole(polled)
        }
    }

    Benchmark("Rate limit token take Mutex token bucket add+tryPoll (baseline)", configuration: configuration) { benchmark in
        let clock = ManualMatchingClock()
        let queue = try Dispatcher<UInt64>(clock: .manual(clock)).queue("bench", kind: .activity)
        let bucket = MutexTokenBucket(perSecond: 1_000_000, burst: 1)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            clock.advance(by: .microseconds(1))
            try queue.add(task)
            guard bucket.tryTake(now: clock.now().nanoseconds) else { fatalError("no token although the clock moved one interval") }
            blackHole(queue.tryPoll())
        }
    }

    // MARK: partitions

    // Four partitions: a producer looks for a partition with waiting pollers, a poll claims in
    // its home partition then the others. Against the default single partition.
    Benchmark("Partitions 4 add+tryPoll", configuration: configuration) { benchmark in
        var settings = DispatcherConfiguration()
        settings.partitions = 4
        let queue = try Dispatcher<UInt64>(configuration: settings).queue("bench", kind: .activity)
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            try queue.add(QueuedTask(id: UInt64(i), payload: 0))
            blackHole(queue.tryPoll())
        }
    }

    Benchmark("Partitions 1 add+tryPoll (baseline)", configuration: configuration) { benchmark in
        let queue = try Dispatcher<UInt64>().queue("bench", kind: .activity)
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            try queue.add(QueuedTask(id: UInt64(i), payload: 0))
            blackHole(queue.tryPoll())
        }
    }
}

/// The baseline of `spool bench dispatch` (Tools/spool/Bench/BenchDispatch.swift), with a
/// `tryPoll`: one Synchronization.Mutex over a Deque of tasks and a Deque of waiting pollers'
/// continuations. No priorities, fairness, deadlines, cancellation or rate limits.
final class MutexDequeDispatcher: Sendable {
    private struct State: ~Copyable {
        var tasks = Deque<QueuedTask<UInt64>>()
        var waiters = Deque<UnsafeContinuation<QueuedTask<UInt64>?, Never>>()
    }

    private let state = Mutex(State())

    func add(_ task: QueuedTask<UInt64>) {
        let waiter = state.withLock { state -> UnsafeContinuation<QueuedTask<UInt64>?, Never>? in
            if let waiter = state.waiters.popFirst() { return waiter }
            state.tasks.append(task)
            return nil
        }
        waiter?.resume(returning: task)
    }

    func tryPoll() -> QueuedTask<UInt64>? {
        state.withLock { $0.tasks.popFirst() }
    }

    func poll() async -> QueuedTask<UInt64>? {
        if let task = state.withLock({ $0.tasks.popFirst() }) { return task }
        return await withUnsafeContinuation { continuation in
            let task = state.withLock { state -> QueuedTask<UInt64>? in
                if let task = state.tasks.popFirst() { return task }
                state.waiters.append(continuation)
                return nil
            }
            if let task { continuation.resume(returning: task) }
        }
    }
}

/// Five Deques (priorities 1…5) under one Mutex: the baseline of the priority-lane case.
final class MutexPriorityDispatcher: Sendable {
    private let lanes = Mutex([Deque<QueuedTask<UInt64>>](repeating: [], count: 5))

    func add(_ task: QueuedTask<UInt64>) {
        lanes.withLock { $0[task.priority - 1].append(task) }
    }

    func tryPoll() -> QueuedTask<UInt64>? {
        lanes.withLock { lanes in
            for index in lanes.indices where !lanes[index].isEmpty { return lanes[index].popFirst() }
            return nil
        }
    }
}

/// A classic token bucket under a Mutex (refill by elapsed time), the baseline of the rate-limit case.
final class MutexTokenBucket: Sendable {
    private struct State {
        var tokens: Double
        var last: UInt64?
    }

    private let perNanosecond: Double
    private let burst: Double
    private let state: Mutex<State>

    init(perSecond: Double, burst: Int) {
        perNanosecond = perSecond / 1e9
        self.burst = Double(burst)
        state = Mutex(State(tokens: Double(burst), last: nil))
    }

    func tryTake(now: UInt64) -> Bool {
        state.withLock { state in
            if let last = state.last, now > last {
                state.tokens = min(burst, state.tokens + Double(now - last) * perNanosecond)
            }
            state.last = now
            guard state.tokens >= 1 else { return false }
            state.tokens -= 1
            return true
        }
    }
}
