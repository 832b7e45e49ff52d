#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import DequeModule
import SpoolLog
import SpoolQueue
import Synchronization
import SpoolToolSupport

/// `spool bench backlog`: what a backlog far larger than the memory budget costs in memory, how
/// long reopening it takes, and that every task comes back; against an in-memory queue holding
/// the same tasks as objects.
struct BenchBacklog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backlog",
        abstract: "Memory, reopen and drain of a task backlog far larger than the memory budget, against an in-memory queue of the same tasks.",
        discussion: """
            Adds --tasks tasks of --bytes bytes to one queue of a TaskStore (or round-robin over \
            --queues queues) from --producers producers, with no poller (interval durability, \
            10 ms), and closes the store. Baseline for the reopen, in a child process: a scan of \
            the same log (Log.scan: every batch's checksum verified, LZ4 batches decompressed, \
            every record visited), in GB/s of log. Then, in \
            a fresh child process (so that its memory is the store's alone): opens the store and \
            takes its resident memory (VmRSS, and RssAnon: what is not a mapped file) and the \
            backlog it restored; then 8 pollers poll and complete every task, checking that each \
            one comes back exactly once with its bytes; the peak resident memory (VmHWM) covers \
            the drain. Baseline, in another child: the same tasks as objects in an in-memory \
            queue (a Deque of byte arrays), what a queue without a log would hold.
            """
    )

    @Option(name: .long, help: "Data directory for the store (must not exist yet; kept). Default: a fresh temporary directory, removed afterwards.")
    var data: String?

    @Option(name: .long, help: "Tasks in the backlog.")
    var tasks = 10_000_000

    @Option(name: .customLong("bytes"), help: "Payload bytes per task (at least 8: the task's number is stored in its first 8).")
    var payloadBytes = 256

    @Option(name: .long, help: "Concurrent producers while building.")
    var producers = 64

    @Option(name: .long, help: "Queues the tasks are spread over, round-robin (task i goes to queue i mod N).")
    var queues = 1

    @Flag(name: .customLong("no-drain"), help: "Reopen and measure, but do not drain: the backlog stays on disk (with --data, for profiling a reopen again).")
    var noDrain = false

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Option(name: .long, help: .hidden)
    var measure: String?

    func validate() throws {
        guard (1...1_000_000_000).contains(tasks) else { throw ValidationError("--tasks must be between 1 and 1000000000 (got \(tasks))") }
        guard (8...65_536).contains(payloadBytes) else { throw ValidationError("--bytes must be between 8 and 65536 (got \(payloadBytes))") }
        guard (1...100_000).contains(producers) else { throw ValidationError("--producers must be between 1 and 100000 (got \(producers))") }
        guard (1...1_000_000).contains(queues) else { throw ValidationError("--queues must be between 1 and 1000000 (got \(queues))") }
        if let data, data.isEmpty { throw ValidationError("--data is empty") }
        if let measure, !["store", "memory", "scan"].contains(measure) { throw ValidationError("--measure must be store, memory or scan (got \(measure))") }
        if (measure == "store" || measure == "scan") && data == nil { throw ValidationError("--measure \(measure!) needs --data") }
    }

    static let queueName = "backlog"

    /// The name of queue `number` of `count`.
    static func queueName(_ number: Int, of count: Int) -> String {
        count == 1 ? queueName : "\(queueName)-\(number)"
    }

    func run() async throws {
        switch measure {
        case "store": return try await measureStore(directory: data!)
        case "memory": return measureMemory()
        case "scan": return try measureScan(directory: data!)
        default: break
        }
        let directory: String
        let scratch: String?
        if let data {
            guard !DataDirectory.isDirectory(data) else { throw ValidationError("--data \(data) already exists; give a new directory") }
            directory = data
            scratch = nil
        } else {
            let base = try makeTemporaryDirectory()
            directory = DataDirectory(base).taskStore.path
            scratch = base
        }
        defer { if let scratch { removeTree(scratch) } }
        let load = loadAverage()
        if !json {
            printLine("spool bench backlog: \(formatCount(Double(tasks))) tasks × \(payloadBytes) B over \(queues) queue\(queues == 1 ? "" : "s"), "
                      + "\(producers) producers, store \(directory); "
                      + "load average \(load.map { format($0, decimals: 2) }.joined(separator: " "))")
        }
        let (addSeconds, logBytes) = try await build(directory: directory)
        let scan = try runSelf(["bench", "backlog", "--data", directory, "--measure", "scan"], expectingNumbers: 3)
        let store = try runSelf(["bench", "backlog", "--data", directory, "--tasks", String(tasks), "--bytes", String(payloadBytes),
                                 "--queues", String(queues), "--measure", "store"] + (noDrain ? ["--no-drain"] : []), expectingNumbers: 11)
        let memory = try runSelf(["bench", "backlog", "--tasks", String(tasks), "--bytes", String(payloadBytes),
                                  "--measure", "memory"], expectingNumbers: 3)
        let result = BacklogResult(tasks: tasks, payloadBytes: payloadBytes, queues: queues, didDrain: !noDrain, addSeconds: addSeconds, logBytes: logBytes,
                                   scanSeconds: Double(scan[0]) / 1e9, scannedRecords: scan[1], scannedBytes: scan[2],
                                   openSeconds: Double(store[0]) / 1e9, rssAfterOpen: store[1], anonymousAfterOpen: store[2],
                                   restored: store[3], drainSeconds: Double(store[4]) / 1e9, drained: store[5], lost: store[6],
                                   duplicates: store[7], wrongBytes: store[8], peakRSS: store[9], closeSeconds: Double(store[10]) / 1e9,
                                   baselineBuildSeconds: Double(memory[0]) / 1e9, baselineRSS: memory[1], baselineAnonymous: memory[2])
        if json {
            printLine(result.json(loadAverage: load))
        } else {
            result.printTable()
        }
        if result.lost > 0 || result.duplicates > 0 || result.wrongBytes > 0 || result.restored != tasks || result.scannedRecords != tasks {
            printError("spool bench backlog: the scan read \(result.scannedRecords) records; the reopened store restored \(result.restored) of \(tasks) tasks; the drain lost "
                       + "\(result.lost), saw \(result.duplicates) twice and \(result.wrongBytes) with wrong bytes")
            throw ExitCode(1)
        }
    }

    // MARK: Building

    /// Adds the tasks and closes the store; returns the seconds the adds took and the log's bytes on disk.
    private func build(directory: String) async throws -> (Double, Int) {
        let store = try TaskStore.open(directory: directory, configuration: TaskStoreConfiguration(durability: .interval(milliseconds: 10)))
        let handles = try (0..<queues).map { try store.queue(Self.queueName($0, of: queues), kind: .activity) }
        let done = SharedCounter()
        let total = tasks, producerCount = producers, bytes = payloadBytes, queueCount = queues
        let progress = ProgressBar(title: "adding", total: total, unit: "tasks", enabled: !json) { done.value.load(ordering: .relaxed) }
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 0..<producerCount {
                group.addTask {
                    for index in stride(from: producer, to: total, by: producerCount) {
                        _ = try await handles[index % queueCount].add(Self.payload(index, bytes: bytes))
                        done.value.add(1, ordering: .relaxed)
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = (ContinuousClock.now - started).seconds
        progress.finish()
        try await store.close()
        return (seconds, bytesOnDisk(DataDirectory.StoreDirectory(directory).log))
    }

    /// Task `index`'s payload: the index (8 bytes, little endian), then bytes derived from it.
    static func payload(_ index: Int, bytes: Int) -> [UInt8] {
        var state = UInt64(index) &* 0x9E37_79B9_7F4A_7C15 | 1
        return [UInt8](unsafeUninitializedCapacity: bytes) { buffer, count in
            for i in 0..<8 { buffer[i] = UInt8(truncatingIfNeeded: UInt64(index) >> (8 * i)) }
            for i in 8..<bytes {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                buffer[i] = UInt8(truncatingIfNeeded: state)
            }
            count = bytes
        }
    }

    // MARK: Measuring (child processes)

    /// Opens the store, measures, drains it with 8 pollers (unless `--no-drain`), closes; prints one line:
    /// `open-ns rss anon restored drain-ns drained lost duplicates wrong-bytes peak-rss close-ns`.
    private func measureStore(directory: String) async throws {
        let started = ContinuousClock.now
        let store = try TaskStore.open(directory: directory, configuration: TaskStoreConfiguration(durability: .interval(milliseconds: 10)))
        let openNanoseconds = (ContinuousClock.now - started).nanoseconds
        let rss = residentBytes()
        let anonymous = residentBytes("RssAnon:")
        let queueCount = queues
        let expected = try (0..<queueCount).map { try store.describe(Self.queueName($0, of: queueCount), kind: .activity).backlogCount }
        let restored = expected.reduce(0, +)
        if noDrain {
            let closing = ContinuousClock.now
            try await store.close()
            let closeNanoseconds = (ContinuousClock.now - closing).nanoseconds
            printLine("\(openNanoseconds) \(rss) \(anonymous) \(restored) 0 0 0 0 0 \(residentBytes("VmHWM:")) \(closeNanoseconds)")
            return
        }
        let handles = try (0..<queueCount).map { try store.queue(Self.queueName($0, of: queueCount), kind: .activity) }

        let total = tasks, bytes = payloadBytes
        let words = (total + 63) / 64
        let seen = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: words)
        for i in 0..<words { (seen + i).initialize(to: Atomic(0)) }
        defer { seen.deinitialize(count: words); seen.deallocate() }
        let marks = UnsafeSendable(seen)
        // Tasks drained from each queue so far.
        let perQueue = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: queueCount)
        for i in 0..<queueCount { (perQueue + i).initialize(to: Atomic(0)) }
        defer { perQueue.deinitialize(count: queueCount); perQueue.deallocate() }
        let queueMarks = UnsafeSendable(perQueue)
        let drained = SharedCounter(), duplicates = SharedCounter(), foreign = SharedCounter()
        let draining = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for poller in 0..<8 {
                group.addTask {
                    // Each poller goes round the queues from its own starting point; on each, until
                    // every task it restored is back, or nothing has come for 5 s (a task lost).
                    for step in 0..<queueCount {
                        let number = (poller * queueCount / 8 + step) % queueCount
                        let queue = handles[number]
                        var idle = 0
                        while queueMarks.pointer[number].load(ordering: .relaxed) < UInt64(expected[number]) && idle < 25 {
                            guard let task = try await queue.poll(timeout: .milliseconds(200)) else { idle += 1; continue }
                            idle = 0
                            try store.complete(task.id)
                            let index = task.payload.count == bytes
                                ? task.payload.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) } : -1
                            guard index >= 0, index < total, index % queueCount == number, task.payload == Self.payload(index, bytes: bytes) else {
                                foreign.value.add(1, ordering: .relaxed)
                                continue
                            }
                            let bit = UInt64(1) << UInt64(index % 64)
                            if marks.pointer[index / 64].bitwiseOr(bit, ordering: .relaxed).oldValue & bit != 0 {
                                duplicates.value.add(1, ordering: .relaxed)
                            } else {
                                drained.value.add(1, ordering: .relaxed)
                                queueMarks.pointer[number].add(1, ordering: .relaxed)
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let drainNanoseconds = (ContinuousClock.now - draining).nanoseconds
        let peak = residentBytes("VmHWM:")
        let closing = ContinuousClock.now
        try await store.close()
        let closeNanoseconds = (ContinuousClock.now - closing).nanoseconds
        let back = drained.value.load(ordering: .relaxed)
        printLine("\(openNanoseconds) \(rss) \(anonymous) \(restored) \(drainNanoseconds) \(back) \(total - back) "
                  + "\(duplicates.value.load(ordering: .relaxed)) \(foreign.value.load(ordering: .relaxed)) \(peak) \(closeNanoseconds)")
    }

    /// The reopen's baseline: a scan of the store's log (read-only: nothing written) that
    /// verifies every batch and visits every record, as the replay's reads do, and nothing else;
    /// prints `scan-ns records bytes` (bytes: the segments' sizes on disk).
    private func measureScan(directory: String) throws {
        let path = DataDirectory.StoreDirectory(directory).log
        var configuration = LogConfiguration()
        configuration.access = .readOnly
        let log = try Log.open(directory: path, configuration: configuration)
        defer { try? log.close() }
        var records = 0
        var checksum: UInt64 = 0
        let started = ContinuousClock.now
        try log.scan(from: log.startOffset, releasingPagesBehind: true) { (_, record) throws(Never) in
            records += 1
            // One byte of each record, so that the visit cannot be optimized away.
            checksum &+= UInt64(record.first ?? 0)
        }
        let nanoseconds = (ContinuousClock.now - started).nanoseconds
        withExtendedLifetime(checksum) {}
        printLine("\(nanoseconds) \(records) \(bytesOnDisk(path))")
    }

    /// The baseline: every task's payload as its own array in a deque; prints `build-ns rss anon`.
    private func measureMemory() {
        let started = ContinuousClock.now
        var queue = Deque<[UInt8]>()
        queue.reserveCapacity(tasks)
        for index in 0..<tasks { queue.append(Self.payload(index, bytes: payloadBytes)) }
        let buildNanoseconds = (ContinuousClock.now - started).nanoseconds
        let rss = residentBytes()
        let anonymous = residentBytes("RssAnon:")
        withExtendedLifetime(queue) {}
        printLine("\(buildNanoseconds) \(rss) \(anonymous)")
    }
}

/// A pointer shared by the drain's pollers; the atomics it points to are the synchronization.
private struct UnsafeSendable: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Atomic<UInt64>>
    init(_ pointer: UnsafeMutablePointer<Atomic<UInt64>>) { self.pointer = pointer }
}

struct BacklogResult {
    var tasks: Int
    var payloadBytes: Int
    var queues: Int
    /// Whether the drain ran (not with `--no-drain`).
    var didDrain: Bool
    var addSeconds: Double
    var logBytes: Int
    /// The baseline for the reopen: a scan of the same log, in its own process.
    var scanSeconds: Double
    var scannedRecords: Int
    var scannedBytes: Int
    var openSeconds: Double
    var rssAfterOpen: Int
    var anonymousAfterOpen: Int
    var restored: Int
    var drainSeconds: Double
    var drained: Int
    var lost: Int
    var duplicates: Int
    /// Tasks whose payload was not the one added (for its number), or named no task added.
    var wrongBytes: Int
    var peakRSS: Int
    var closeSeconds: Double
    var baselineBuildSeconds: Double
    var baselineRSS: Int
    var baselineAnonymous: Int

    var bytesPerTask: Double { Double(anonymousAfterOpen) / Double(tasks) }
    /// GB/s of log (bytes on disk) read by the scan and by the reopen.
    var scanGigabytesPerSecond: Double { Double(scannedBytes) / scanSeconds / 1e9 }
    var reopenGigabytesPerSecond: Double { Double(scannedBytes) / openSeconds / 1e9 }
    var baselineBytesPerTask: Double { Double(baselineAnonymous) / Double(tasks) }

    func printTable() {
        let mb = { (bytes: Int) in format(Double(bytes) / 1e6, decimals: 1) + " MB" }
        printLine("added \(formatCount(Double(tasks))) tasks in \(format(addSeconds, decimals: 1)) s "
                  + "(\(formatCount(Double(tasks) / addSeconds)) tasks/s); log \(mb(logBytes)) on disk")
        printLine("scan (baseline): \(format(scanSeconds * 1000, decimals: 0)) ms for the same log, \(formatCount(Double(scannedRecords))) records, "
                  + "\(format(scanGigabytesPerSecond, decimals: 2)) GB/s")
        printLine("reopen: \(format(openSeconds * 1000, decimals: 0)) ms, \(formatCount(Double(restored))) tasks restored over \(queues) queue\(queues == 1 ? "" : "s"), "
                  + "\(format(reopenGigabytesPerSecond, decimals: 2)) GB/s = \(format(scanSeconds / openSeconds, decimals: 2))× the scan's speed; "
                  + "RSS \(mb(rssAfterOpen)), anonymous \(mb(anonymousAfterOpen)) = \(format(bytesPerTask, decimals: 1)) B per task")
        if didDrain { printLine("drain: \(formatCount(Double(drained))) tasks polled and completed in \(format(drainSeconds, decimals: 1)) s "
                  + "(\(formatCount(Double(drained) / drainSeconds)) tasks/s), \(lost) lost, \(duplicates) twice, \(wrongBytes) with wrong bytes; "
                  + "peak RSS \(mb(peakRSS)); close \(format(closeSeconds * 1000, decimals: 0)) ms") }
        else { printLine("no drain (--no-drain): the backlog stays on disk; peak RSS \(mb(peakRSS)); close \(format(closeSeconds * 1000, decimals: 0)) ms") }
        printLine("baseline: the same tasks in an in-memory Deque<[UInt8]>: RSS \(mb(baselineRSS)), anonymous \(mb(baselineAnonymous)) "
                  + "= \(format(baselineBytesPerTask, decimals: 1)) B per task (built in \(format(baselineBuildSeconds, decimals: 1)) s)")
        printLine("the reopened store's anonymous memory is \(format(Double(anonymousAfterOpen) / Double(baselineAnonymous), decimals: 3))× the baseline's")
    }

    func json(loadAverage: [Double]) -> String {
        JSON.object([
            ("benchmark", .string("backlog")), ("tasks", .integer(tasks)), ("payloadBytes", .integer(payloadBytes)), ("queues", .integer(queues)),
            ("loadAverage", .array(loadAverage.map { .number($0) })),
            ("addSeconds", .number(addSeconds)), ("addTasksPerSecond", .number(Double(tasks) / addSeconds)), ("logBytes", .integer(logBytes)),
            ("scanMilliseconds", .number(scanSeconds * 1000)), ("scannedRecords", .integer(scannedRecords)), ("scannedBytes", .integer(scannedBytes)),
            ("scanGigabytesPerSecond", .number(scanGigabytesPerSecond)),
            ("reopenMilliseconds", .number(openSeconds * 1000)), ("restoredTasks", .integer(restored)),
            ("reopenGigabytesPerSecond", .number(reopenGigabytesPerSecond)), ("reopenSpeedRatioToScan", .number(scanSeconds / openSeconds)),
            ("rssBytesAfterReopen", .integer(rssAfterOpen)), ("rssAnonymousBytesAfterReopen", .integer(anonymousAfterOpen)),
            ("anonymousBytesPerTask", .number(bytesPerTask)),
            ("drained", .bool(didDrain)), ("drainSeconds", .number(drainSeconds)), ("drainedTasks", .integer(drained)), ("lostTasks", .integer(lost)),
            ("duplicateTasks", .integer(duplicates)), ("wrongBytesTasks", .integer(wrongBytes)), ("peakRSSBytes", .integer(peakRSS)), ("closeMilliseconds", .number(closeSeconds * 1000)),
            ("baseline", .string("in-memory Deque<[UInt8]>")), ("baselineRSSBytes", .integer(baselineRSS)),
            ("baselineAnonymousBytes", .integer(baselineAnonymous)), ("baselineAnonymousBytesPerTask", .number(baselineBytesPerTask)),
            ("anonymousRatioToBaseline", .number(Double(anonymousAfterOpen) / Double(baselineAnonymous))),
        ]).text
    }
}
