#if canImport(Glibc)
import Glibc
#endif
import Histogram
import Spool
import SpoolLog
import SpoolQueue
import SpoolToolSupport
import Synchronization

/// `spool bench compact --online`: a steady workload on a running engine and task store, once
/// with online compaction off and once on, in the same invocation.
extension BenchCompact {
    /// One phase's figures.
    struct OnlinePhase {
        var compacting: Bool
        var seconds = 0.0
        /// (seconds since start, segment bytes, live bytes) per sample, both logs together.
        var samples: [(t: Double, segmentBytes: Int, liveBytes: Int, directoryBytes: Int)] = []
        var addLatency: Histogram<UInt64>
        var startLatency: Histogram<UInt64>
        var tasksAdded = 0
        var workflowsStarted = 0
        var workflowsCompleted = 0
        var store = OnlineCompactionStatistics()
        var engine = OnlineCompactionStatistics()

        /// Samples after the first `warmUp` seconds (the first retention period: nothing has expired yet).
        func steady(after warmUp: Double) -> [(t: Double, segmentBytes: Int, liveBytes: Int, directoryBytes: Int)] {
            samples.filter { $0.t >= warmUp && $0.liveBytes > 0 }
        }
        func maxRatio(after warmUp: Double) -> Double {
            steady(after: warmUp).map { Double($0.segmentBytes) / Double($0.liveBytes) }.max() ?? 0
        }
        func meanRatio(after warmUp: Double) -> Double {
            let s = steady(after: warmUp)
            guard !s.isEmpty else { return 0 }
            return s.map { Double($0.segmentBytes) / Double($0.liveBytes) }.reduce(0, +) / Double(s.count)
        }
        func maxDirectoryRatio(after warmUp: Double) -> Double {
            steady(after: warmUp).map { Double($0.directoryBytes) / Double($0.liveBytes) }.max() ?? 0
        }
    }

    func runOnline() async throws {
        try makeDirectory(data)
        let directory = data + "/bench-compact-online"
        var phases: [OnlinePhase] = []
        for compacting in [false, true] {
            if !json { writeStandardError("phase: online compaction \(compacting ? "on" : "off"), \(duration) s…\n") }
            phases.append(try await onlinePhase(compacting: compacting, directory: directory))
        }
        if !keep { removeTree(directory) }
        reportOnline(phases)
    }

    /// Latency samples of one producer (nanoseconds), kept raw (see `latencyHistogram`).
    final class Samples: @unchecked Sendable {
        var values: [UInt64] = []
        init() { values.reserveCapacity(1 << 16) }
    }

    /// What the phase's tasks share.
    final class Shared: Sendable {
        let running = Atomic<Bool>(true)
        let completedWorkflows = Atomic<Int>(0)
    }

    private func onlinePhase(compacting: Bool, directory: String) async throws -> OnlinePhase {
        removeTree(directory)
        try makeDirectory(directory)
        var policy = OnlineCompactionPolicy()
        policy.isEnabled = compacting
        policy.checkInterval = .seconds(1)
        policy.minimumDeadBytes = minimumDeadMb << 20
        policy.minimumDeadFraction = deadFraction
        var engineConfiguration = SpoolEngineConfiguration()
        engineConfiguration.closedRunRetention = .seconds(retentionSeconds)
        engineConfiguration.log.segmentBytes = segmentMb << 20
        engineConfiguration.log.maxRecordBytes = min(engineConfiguration.log.maxRecordBytes, (segmentMb << 20) / 2)
        engineConfiguration.onlineCompaction = policy
        // Checkpoints as often as a sample measures; the same in both phases.
        var storeConfiguration = TaskStoreConfiguration()
        storeConfiguration.log.segmentBytes = segmentMb << 20
        storeConfiguration.log.maxRecordBytes = min(storeConfiguration.log.maxRecordBytes, (segmentMb << 20) / 2)
        storeConfiguration.onlineCompaction = policy
        let engine = try SpoolEngine.open(directory: directory, configuration: engineConfiguration)
        let store = try TaskStore.open(directory: DataDirectory(directory).taskStore.path, configuration: storeConfiguration)

        let shared = Shared()
        let started = ContinuousClock.now
        let producers = 4
        let taskRate = Double(tasksPerSecond) / Double(producers)
        let workflowRate = Double(workflowsPerSecond) / Double(producers)
        let addSamples = (0..<producers).map { _ in Samples() }
        let startSamples = (0..<producers).map { _ in Samples() }
        // Incompressible, so that the log's LZ4 does not shrink the segments below the live bytes.
        let size = payloadBytes
        var phase = OnlinePhase(compacting: compacting, addLatency: latencyHistogram([]), startLatency: latencyHistogram([]))

        try await withThrowingTaskGroup(of: Void.self) { group in
            // Paced producers: the i-th operation of a producer is due at i / rate.
            for p in 0..<producers {
                group.addTask {
                    var i = 0
                    while shared.running.load(ordering: .relaxed) {
                        let due = started + .nanoseconds(Int64(Double(i) / taskRate * 1e9))
                        if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
                        let payload = Self.incompressible(p << 40 | i, size: size)
                        let t0 = ContinuousClock.now
                        _ = try await store.add(payload, to: "bench", kind: .activity)
                        addSamples[p].values.append(UInt64((ContinuousClock.now - t0).nanoseconds))
                        i += 1
                    }
                }
                group.addTask {
                    var i = 0
                    while shared.running.load(ordering: .relaxed) {
                        let due = started + .nanoseconds(Int64(Double(i) / workflowRate * 1e9))
                        if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
                        let input = Payloads.binary(Self.incompressible(1 << 50 | p << 40 | i, size: size))
                        let t0 = ContinuousClock.now
                        _ = try await engine.startWorkflowExecution(.init(workflowID: "wf-\(p)-\(i)", workflowType: "bench", taskQueue: "bench", input: input))
                        startSamples[p].values.append(UInt64((ContinuousClock.now - t0).nanoseconds))
                        i += 1
                    }
                }
            }
            // Consumers: tasks completed at once; workflow tasks answered by completing the run.
            for _ in 0..<2 {
                group.addTask {
                    while shared.running.load(ordering: .relaxed) {
                        if let task = try await store.poll("bench", kind: .activity, timeout: .milliseconds(200)) { try store.complete(task.id) }
                    }
                }
                group.addTask {
                    while shared.running.load(ordering: .relaxed) {
                        guard let task = try await engine.pollWorkflowTaskQueue(taskQueue: "bench", identity: "bench", timeout: .milliseconds(200)) else { continue }
                        try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.completeWorkflowExecution(.init(result: nil))],
                                                                     identity: "bench")
                        shared.completedWorkflows.add(1, ordering: .relaxed)
                    }
                }
            }
            // The sampler, which also ends the phase.
            let end = started + .seconds(duration)
            var next = started + .seconds(sampleSeconds)
            while next <= end {
                try await Task.sleep(until: next, clock: .continuous)
                next = next + .seconds(sampleSeconds)
                let t = (ContinuousClock.now - started).seconds
                let storeMeasure = try await store.measureLog()
                let engineMeasure = try await engine.measureHistory()
                guard case .notDue(let storeBytes, let storeLive?) = storeMeasure,
                      case .notDue(let historyBytes, let historyLive?) = engineMeasure else { continue }
                let layout = DataDirectory(directory)
                let directoryBytes = bytesOnDisk(layout.history) + bytesOnDisk(layout.taskStore.log)
                phase.samples.append((t, storeBytes + historyBytes, storeLive + historyLive, directoryBytes))
                if !json {
                    writeStandardError("  \(pad(format(t, decimals: 0) + " s", 6)) segments \(pad(format(Double(storeBytes + historyBytes) / 1e6, decimals: 1), 7)) MB"
                                       + " live \(pad(format(Double(storeLive + historyLive) / 1e6, decimals: 1), 7)) MB"
                                       + " ratio \(format(Double(storeBytes + historyBytes) / Double(max(1, storeLive + historyLive)), decimals: 2))"
                                       + " (tasks \(format(Double(storeBytes) / 1e6, decimals: 1))/\(format(Double(storeLive) / 1e6, decimals: 1)),"
                                       + " history \(format(Double(historyBytes) / 1e6, decimals: 1))/\(format(Double(historyLive) / 1e6, decimals: 1)) MB)\n")
                }
            }
            shared.running.store(false, ordering: .relaxed)
            try await group.waitForAll()
        }
        phase.seconds = (ContinuousClock.now - started).seconds
        phase.addLatency = latencyHistogram(addSamples.map(\.values))
        phase.startLatency = latencyHistogram(startSamples.map(\.values))
        phase.tasksAdded = addSamples.reduce(0) { $0 + $1.values.count }
        phase.workflowsStarted = startSamples.reduce(0) { $0 + $1.values.count }
        phase.workflowsCompleted = shared.completedWorkflows.load(ordering: .relaxed)
        phase.store = store.onlineCompactionStatistics
        phase.engine = engine.onlineCompactionStatistics
        try await store.close()
        try await engine.close()
        return phase
    }

    /// Deterministic, incompressible bytes for item `i`.
    static func incompressible(_ i: Int, size: Int) -> [UInt8] {
        var x = UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15 &+ 1
        return (0..<size).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }

    private func reportOnline(_ phases: [OnlinePhase]) {
        let warmUp = Double(retentionSeconds) + Double(sampleSeconds)
        func micros(_ h: Histogram<UInt64>, _ p: Double) -> Double { Double(h.valueAtPercentile(p)) / 1000 }
        if json {
            var objects: [(String, JSON)] = []
            for phase in phases {
                objects.append((phase.compacting ? "compactionOn" : "compactionOff", .object([
                    ("seconds", .number(phase.seconds)),
                    ("tasksAdded", .number(Double(phase.tasksAdded))), ("workflowsStarted", .number(Double(phase.workflowsStarted))),
                    ("maxRatio", .number(phase.maxRatio(after: warmUp))), ("meanRatio", .number(phase.meanRatio(after: warmUp))),
                    ("maxDirectoryRatio", .number(phase.maxDirectoryRatio(after: warmUp))),
                    ("addLatencyMicroseconds", .object([("p50", .number(micros(phase.addLatency, 50))), ("p99", .number(micros(phase.addLatency, 99))),
                                                        ("max", .number(Double(phase.addLatency.max) / 1000))])),
                    ("startLatencyMicroseconds", .object([("p50", .number(micros(phase.startLatency, 50))), ("p99", .number(micros(phase.startLatency, 99))),
                                                          ("max", .number(Double(phase.startLatency.max) / 1000))])),
                    ("storeCompactions", .number(Double(phase.store.compactions))), ("historyCompactions", .number(Double(phase.engine.compactions))),
                ])))
            }
            print(JSON.object(objects).text)
            return
        }
        print("spool bench compact --online: \(duration) s per phase, \(tasksPerSecond) tasks/s (\(payloadBytes) B) added and completed, "
              + "\(workflowsPerSecond) workflows/s started and completed, retention \(retentionSeconds) s, \(segmentMb) MiB segments; "
              + "policy: \(format(deadFraction * 100, decimals: 0))% and \(minimumDeadMb) MiB dead, checked every 1 s")
        print("ratios: segment bytes of both logs / live bytes (the records a reopen needs), sampled every \(sampleSeconds) s after \(format(warmUp, decimals: 0)) s; "
              + "'dir' counts indexes, markers and the active segment's preallocation too")
        print(pad("compaction", 11, right: false) + pad("max ratio", 10) + pad("mean", 7) + pad("max dir", 8) + pad("last MB", 9) + pad("live MB", 9)
              + pad("add p50 µs", 11) + pad("add p99 µs", 11) + pad("add max µs", 11) + pad("start p50", 10) + pad("start p99", 10) + pad("start max", 10)
              + pad("rewrites", 9) + pad("longest ms", 11))
        for phase in phases {
            let last = phase.samples.last
            let longest = max(phase.store.longestCompactionNanoseconds, phase.engine.longestCompactionNanoseconds)
            print(pad(phase.compacting ? "on" : "off", 11, right: false)
                  + pad(format(phase.maxRatio(after: warmUp), decimals: 2), 10) + pad(format(phase.meanRatio(after: warmUp), decimals: 2), 7)
                  + pad(format(phase.maxDirectoryRatio(after: warmUp), decimals: 2), 8)
                  + pad(format(Double(last?.segmentBytes ?? 0) / 1e6, decimals: 1), 9) + pad(format(Double(last?.liveBytes ?? 0) / 1e6, decimals: 1), 9)
                  + pad(format(micros(phase.addLatency, 50), decimals: 0), 11) + pad(format(micros(phase.addLatency, 99), decimals: 0), 11)
                  + pad(format(Double(phase.addLatency.max) / 1000, decimals: 0), 11)
                  + pad(format(micros(phase.startLatency, 50), decimals: 0), 10) + pad(format(micros(phase.startLatency, 99), decimals: 0), 10)
                  + pad(format(Double(phase.startLatency.max) / 1000, decimals: 0), 10)
                  + pad("\(phase.store.compactions)+\(phase.engine.compactions)", 9) + pad(format(Double(longest) / 1e6, decimals: 0), 11))
        }
        for phase in phases {
            print("compaction \(phase.compacting ? "on" : "off"): \(phase.tasksAdded) tasks added, \(phase.workflowsStarted) workflows started, "
                  + "\(phase.workflowsCompleted) completed in \(format(phase.seconds, decimals: 0)) s; rewrites: task store \(phase.store.compactions) "
                  + "(\(format(Double(phase.store.bytesBefore) / 1e6, decimals: 1)) → \(format(Double(phase.store.bytesAfter) / 1e6, decimals: 1)) MB, "
                  + "\(phase.store.rollsRequested) rolls), history \(phase.engine.compactions) (\(format(Double(phase.engine.bytesBefore) / 1e6, decimals: 1)) → "
                  + "\(format(Double(phase.engine.bytesAfter) / 1e6, decimals: 1)) MB, \(phase.engine.rollsRequested) rolls)")
        }
    }
}
