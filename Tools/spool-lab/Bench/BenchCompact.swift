#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spool
import SpoolLog
import SpoolQueue
import SpoolToolSupport

/// `spool bench compact`: builds a data directory where 90% of tasks are acknowledged and 90% of
/// workflow runs are closed past retention, compacts it, and compares the space left with the
/// live data and the read rate with a raw read of the same files.
struct BenchCompact: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Offline compaction: space left against live data, and MB/s read against read(2) of the same segments.",
        discussion: """
        Each run builds DATA/bench-compact from scratch, deterministically: --tasks-mb of tasks with \
        --payload-bytes payloads on one queue, delivered in order, 9 in 10 completed and the 10th left \
        in flight (pending at the next open: the ack level stays at the first one, so nothing is \
        reclaimed by the store itself); and --history-mb of workflow runs with --payload-bytes inputs, \
        9 in 10 completed (closed) and the 10th left open. Both logs use --segment-mb segments \
        (default 1 MiB: many sealed segments; the engine's default, 128, puts a store this size in \
        one segment, which compaction seals first and rewrites like the others).

        Then, per log: live bytes (the records a reopen needs: payload and length, as \
        `TaskStore.liveBytes` and `SpoolEngine.liveHistoryBytes` count them); the baseline, read(2) of \
        every segment file in 1 MiB reads; and the compaction as `spool compact` runs it (history with \
        retention 0 s, so every closed run is past its retention), timed from opening the log to its \
        close, fsyncs included; and its copy phase alone (from the first to the last progress report \
        of the copy, every 1,024 records: reading, judging and writing the records, without the plan, \
        the fsyncs and the swap). Reported: bytes of the log directory before and after (segments, \
        indexes, markers), ratio after / live, the store's checkpoint file after (reported apart: the \
        engine's holds each open run's state, its input included, and is rewritten by every close), \
        and MB/s = bytes of the sealed segments read / time. Both reads find the files in the page \
        cache (they were just written). Medians of --runs runs.

        With --online: online compaction of a running engine and task store instead. Two phases of \
        --duration seconds each on a fresh DATA/bench-compact-online, compaction off then on (the \
        stores' `onlineCompaction` policy, checked every second, --dead-percent and --min-dead-mb): \
        4 producers add --tasks-per-second tasks of --payload-bytes (2 pollers complete them) and \
        start --workflows-per-second workflows with --payload-bytes inputs (2 in-process workers \
        complete each at its first workflow task), runs kept --retention-seconds after they close. \
        Every --sample-seconds both stores are measured (segment bytes, and live bytes as their \
        compactions judge them: the engine writes a checkpoint to measure, in both phases). Reported: \
        max and mean ratio of segment bytes to live bytes after the first retention period (goal: \
        ≤ 1.5 with compaction on), and the latency of each add and each start (one durable append \
        each) at p50, p99 and max, per phase.
        """
    )

    @Option(name: .long, help: "Data directory for the bench's store (removed afterwards unless --keep).")
    var data = "./spool-data"

    @Option(name: .long, help: "MiB of task records to write.")
    var tasksMb = 200

    @Option(name: .long, help: "MiB of history to write (approximate).")
    var historyMb = 100

    @Option(name: .long, help: "Bytes of each task payload and workflow input.")
    var payloadBytes = 1024

    @Option(name: .long, help: "MiB per log segment of both logs (the engine's default is 128).")
    var segmentMb = 1

    @Option(name: .long, help: "Runs; medians are reported.")
    var runs = 3

    @Flag(name: .long, help: "Keep the last run's compacted data directory.")
    var keep = false

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Flag(name: .long, help: "Online compaction of a running engine and task store, with compaction off then on (see above).")
    var online = false

    @Option(name: .long, help: "--online: seconds per phase.")
    var duration = 300

    @Option(name: .long, help: "--online: tasks added (and completed) per second.")
    var tasksPerSecond = 500

    @Option(name: .long, help: "--online: workflows started (and completed) per second.")
    var workflowsPerSecond = 100

    @Option(name: .long, help: "--online: closed-run retention, seconds.")
    var retentionSeconds = 60

    @Option(name: .long, help: "--online: seconds between samples.")
    var sampleSeconds = 5

    @Option(name: .long, help: "--online: percent of dead bytes in the sealed segments that makes a compaction due.")
    var deadPercent = 25

    @Option(name: .long, help: "--online: MiB of dead bytes that makes a compaction due.")
    var minimumDeadMb = 1

    var deadFraction: Double { Double(deadPercent) / 100 }

    @Flag(name: .long, help: "Only build the store in DATA/bench-compact and stop, for profiling `spool compact` on copies of it.")
    var buildOnly = false

    func validate() throws {
        guard tasksMb >= 0 && tasksMb <= 1 << 16 else { throw ValidationError("--tasks-mb must be between 0 and 65536 (got \(tasksMb))") }
        guard historyMb >= 0 && historyMb <= 1 << 16 else { throw ValidationError("--history-mb must be between 0 and 65536 (got \(historyMb))") }
        guard tasksMb + historyMb > 0 else { throw ValidationError("--tasks-mb and --history-mb cannot both be 0") }
        guard payloadBytes >= 16 && payloadBytes <= 64 << 10 else { throw ValidationError("--payload-bytes must be between 16 and 65536 (got \(payloadBytes))") }
        guard segmentMb >= 1 && segmentMb <= 2047 else { throw ValidationError("--segment-mb must be between 1 and 2047 (got \(segmentMb))") }
        guard runs >= 1 && runs <= 100 else { throw ValidationError("--runs must be between 1 and 100 (got \(runs))") }
        guard duration >= 1 && duration <= 86_400 else { throw ValidationError("--duration must be between 1 and 86400 seconds (got \(duration))") }
        guard tasksPerSecond >= 1 && tasksPerSecond <= 1_000_000 else { throw ValidationError("--tasks-per-second must be between 1 and 1000000 (got \(tasksPerSecond))") }
        guard workflowsPerSecond >= 1 && workflowsPerSecond <= 1_000_000 else {
            throw ValidationError("--workflows-per-second must be between 1 and 1000000 (got \(workflowsPerSecond))")
        }
        guard retentionSeconds >= 1 && retentionSeconds <= 86_400 else { throw ValidationError("--retention-seconds must be between 1 and 86400 (got \(retentionSeconds))") }
        guard sampleSeconds >= 1 && sampleSeconds <= duration else { throw ValidationError("--sample-seconds must be between 1 and --duration (got \(sampleSeconds))") }
        guard deadPercent >= 1 && deadPercent <= 99 else { throw ValidationError("--dead-percent must be between 1 and 99 (got \(deadPercent))") }
        guard minimumDeadMb >= 0 && minimumDeadMb <= 1 << 20 else { throw ValidationError("--minimum-dead-mb must be between 0 and 1048576 (got \(minimumDeadMb))") }
    }

    struct Measure {
        var bytesBefore = 0
        var bytesAfter = 0
        var liveBytes = 0
        var bytesRead = 0
        var seconds = 0.0
        var rawSeconds = 0.0
        var rawBytes = 0
        var recordsKept = 0
        var recordsDropped = 0
        var checkpointAfter = 0
        /// The copy phase alone: sealed bytes judged and copied, and the time from the first to the last progress report.
        var copyBytes = 0.0
        var copySeconds = 0.0
        var copyMegabytesPerSecond: Double { copySeconds > 0 ? copyBytes / copySeconds / 1e6 : 0 }
        var ratio: Double { liveBytes > 0 ? Double(bytesAfter) / Double(liveBytes) : 0 }
        var megabytesPerSecond: Double { seconds > 0 ? Double(bytesRead) / seconds / 1e6 : 0 }
        var rawMegabytesPerSecond: Double { rawSeconds > 0 ? Double(rawBytes) / rawSeconds / 1e6 : 0 }
    }

    func run() async throws {
        if online { return try await runOnline() }
        try makeDirectory(data)
        let directory = data + "/bench-compact"
        var results: [String: [Measure]] = ["tasks": [], "history": [], "total": []]
        for run in 1...runs {
            removeTree(directory)
            try makeDirectory(directory)
            if !json { writeStandardError("run \(run)/\(runs): building…\n") }
            if tasksMb > 0 { try await buildTasks(DataDirectory(directory).taskStore.path) }
            if historyMb > 0 { try await buildHistory(directory) }
            if buildOnly { return }
            var total = Measure()
            let layout = DataDirectory(directory)
            if tasksMb > 0 {
                let tasks = layout.taskStore
                let m = try measure(log: tasks.log, checkpoint: tasks.checkpoint,
                                    live: { try TaskStore.liveBytes(directory: tasks.path) },
                                    compact: { try TaskStore.compact(directory: tasks.path, progress: $0) })
                results["tasks"]!.append(m)
                total = Self.add(total, m)
            }
            if historyMb > 0 {
                var configuration = SpoolEngineConfiguration()
                configuration.closedRunRetention = .zero
                let m = try measure(log: layout.history, checkpoint: layout.checkpoint,
                                    live: { try SpoolEngine.liveHistoryBytes(directory: directory, configuration: configuration) },
                                    compact: { try SpoolEngine.compactHistory(directory: directory, configuration: configuration, progress: $0).log })
                results["history"]!.append(m)
                total = Self.add(total, m)
            }
            results["total"]!.append(total)
            if !json {
                writeStandardError("run \(run)/\(runs): ratio \(format(total.ratio, decimals: 3)), \(format(total.megabytesPerSecond, decimals: 0)) MB/s "
                                   + "(raw read \(format(total.rawMegabytesPerSecond, decimals: 0)) MB/s)\n")
            }
        }
        if !keep { removeTree(directory) }
        report(results)
    }

    static func add(_ a: Measure, _ b: Measure) -> Measure {
        var sum = a
        sum.bytesBefore += b.bytesBefore; sum.bytesAfter += b.bytesAfter; sum.liveBytes += b.liveBytes
        sum.bytesRead += b.bytesRead; sum.seconds += b.seconds; sum.rawSeconds += b.rawSeconds; sum.rawBytes += b.rawBytes
        sum.copyBytes += b.copyBytes; sum.copySeconds += b.copySeconds
        sum.recordsKept += b.recordsKept; sum.recordsDropped += b.recordsDropped; sum.checkpointAfter += b.checkpointAfter
        return sum
    }

    private func measure(log: String, checkpoint: String, live: () throws -> Int,
                         compact: (@escaping CompactionProgress) throws -> CompactionSummary) throws -> Measure {
        var m = Measure()
        m.bytesBefore = bytesOnDisk(log)
        m.liveBytes = try live()
        (m.rawBytes, m.rawSeconds) = Self.rawRead(log)
        let started = ContinuousClock.now
        let phase = CopyPhase()
        let summary = try compact { done, total in phase.report(done, total) }
        m.seconds = (ContinuousClock.now - started).seconds
        m.bytesRead = summary.bytesBefore
        if let first = phase.first, let last = phase.last, phase.total > 0 {
            m.copySeconds = (last - first).seconds
            m.copyBytes = Double(summary.bytesBefore) * Double(phase.done) / Double(phase.total)
        }
        m.recordsKept = summary.recordsKept
        m.recordsDropped = summary.recordsDropped
        m.bytesAfter = bytesOnDisk(log)
        m.checkpointAfter = bytesOnDisk(log, plus: [checkpoint]) - m.bytesAfter
        return m
    }

    /// When the copy phase reported first and last (it reports every 1,024 records).
    final class CopyPhase {
        var first: ContinuousClock.Instant?
        var last: ContinuousClock.Instant?
        var done: UInt64 = 0
        var total: UInt64 = 0
        func report(_ done: UInt64, _ total: UInt64) {
            let now = ContinuousClock.now
            if first == nil { first = now }
            last = now
            self.done = done
            self.total = total
        }
    }

    /// read(2) of every segment file, 1 MiB at a time: the baseline.
    static func rawRead(_ directory: String) -> (bytes: Int, seconds: Double) {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var bytes = 0
        let started = ContinuousClock.now
        for name in directoryNames(directory) where name.hasSuffix(".log") {
            let fd = open(directory + "/" + name, O_RDONLY)
            guard fd >= 0 else { continue }
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                bytes += n
            }
            close(fd)
        }
        return (bytes, (ContinuousClock.now - started).seconds)
    }

    /// Deterministic, incompressible bytes for item `i`.
    func payload(_ i: Int) -> [UInt8] {
        var x = UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15 &+ 1
        return (0..<payloadBytes).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return UInt8(truncatingIfNeeded: x)
        }
    }

    private func buildTasks(_ directory: String) async throws {
        var configuration = TaskStoreConfiguration(durability: .none)
        configuration.log.segmentBytes = segmentMb << 20
        configuration.log.maxRecordBytes = 256 << 10
        configuration.visibilityTimeout = .seconds(3600)
        configuration.checkpointInterval = .seconds(3600)
        let store = try TaskStore.open(directory: directory, configuration: configuration)
        let count = (tasksMb << 20) / (payloadBytes + 40)
        var i = 0
        var delivered = 0
        while i < count {
            let batch = min(1024, count - i)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for j in i..<(i + batch) {
                    let bytes = payload(j)
                    group.addTask { _ = try await store.add(bytes, to: "bench", kind: .activity) }
                }
                try await group.waitForAll()
            }
            // Deliver as they come; complete 9 in 10, leave the 10th in flight.
            while let task = try await store.poll("bench", kind: .activity, timeout: .zero) {
                if delivered % 10 != 9 { try store.complete(task.id) }
                delivered += 1
            }
            i += batch
        }
        try await store.close()
    }

    private func buildHistory(_ directory: String) async throws {
        var configuration = SpoolEngineConfiguration()
        configuration.log = LogConfiguration(durability: .none)
        configuration.log.segmentBytes = segmentMb << 20
        configuration.log.maxRecordBytes = 256 << 10
        configuration.firesTimersAutomatically = false
        let engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        let count = (historyMb << 20) / (payloadBytes + 400)
        var i = 0
        while i < count {
            let batch = min(256, count - i)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for j in i..<(i + batch) {
                    let input = Payloads.binary(payload(1 << 40 + j))
                    group.addTask {
                        _ = try await engine.startWorkflowExecution(.init(workflowID: "bench-\(j)", workflowType: "bench", taskQueue: "bench", input: input))
                    }
                }
                try await group.waitForAll()
            }
            // Close 9 in 10 runs; leave the 10th open with its workflow task pending.
            for j in i..<(i + batch) where j % 10 != 9 {
                guard let task = try await engine.pollWorkflowTaskQueue(taskQueue: "bench", identity: "bench", timeout: .zero) else { break }
                try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.completeWorkflowExecution(.init())], identity: "bench")
            }
            i += batch
        }
        try await engine.close()
    }

    private func report(_ results: [String: [Measure]]) {
        let load = loadAverageText()
        let logs = ["tasks", "history", "total"].filter { !(results[$0] ?? []).isEmpty }
        if json {
            var fields: [(String, JSON)] = [("runs", .integer(runs)), ("tasksMb", .integer(tasksMb)), ("historyMb", .integer(historyMb)),
                                            ("payloadBytes", .integer(payloadBytes)), ("loadAverage", .string(load))]
            for name in logs {
                let ms = results[name]!
                fields.append((name, .object([
                    ("bytesBefore", .number(median(ms.map { Double($0.bytesBefore) }))),
                    ("bytesAfter", .number(median(ms.map { Double($0.bytesAfter) }))),
                    ("liveBytes", .number(median(ms.map { Double($0.liveBytes) }))),
                    ("ratio", .number(median(ms.map(\.ratio)))),
                    ("checkpointBytesAfter", .number(median(ms.map { Double($0.checkpointAfter) }))),
                    ("megabytesPerSecond", .number(median(ms.map(\.megabytesPerSecond)))),
                    ("copyPhaseMegabytesPerSecond", .number(median(ms.map(\.copyMegabytesPerSecond)))),
                    ("rawReadMegabytesPerSecond", .number(median(ms.map(\.rawMegabytesPerSecond)))),
                    ("seconds", .number(median(ms.map(\.seconds)))),
                    ("recordsKept", .number(median(ms.map { Double($0.recordsKept) }))),
                    ("recordsDropped", .number(median(ms.map { Double($0.recordsDropped) }))),
                ])))
            }
            print(JSON.object(fields).text)
            return
        }
        print("spool bench compact: 90% of tasks acknowledged, 90% of runs closed past retention; medians of \(runs) run\(runs == 1 ? "" : "s")")
        print("load average: \(load)")
        print(pad("log", 8, right: false) + pad("before", 13) + pad("after", 13) + pad("live", 13)
              + pad("after/live", 14) + pad("compact", 14) + pad("copy phase", 14) + pad("raw read", 14)
              + pad("kept", 11) + pad("dropped", 11) + pad("checkpoint", 13))
        for name in logs {
            let ms = results[name]!
            print(pad(name, 8, right: false)
                  + pad(formatCount(median(ms.map { Double($0.bytesBefore) })) + "B", 13)
                  + pad(formatCount(median(ms.map { Double($0.bytesAfter) })) + "B", 13)
                  + pad(formatCount(median(ms.map { Double($0.liveBytes) })) + "B", 13)
                  + pad(format(median(ms.map(\.ratio)), decimals: 3), 14)
                  + pad(format(median(ms.map(\.megabytesPerSecond)), decimals: 0) + " MB/s", 14)
                  + pad(format(median(ms.map(\.copyMegabytesPerSecond)), decimals: 0) + " MB/s", 14)
                  + pad(format(median(ms.map(\.rawMegabytesPerSecond)), decimals: 0) + " MB/s", 14)
                  + pad(formatCount(median(ms.map { Double($0.recordsKept) })), 11)
                  + pad(formatCount(median(ms.map { Double($0.recordsDropped) })), 11)
                  + pad(formatCount(median(ms.map { Double($0.checkpointAfter) })) + "B", 13))
        }
    }
}
