#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives
import SpoolLog
import SpoolMatching
import SpoolQueue
import SpoolLogTesting
import SpoolToolSupport

/// `spool torture --workload tasks`: the durable task queues under SIGKILL.
///
/// The child adds tasks whose payloads are self-describing records (their logical id inside),
/// polls them, completes most (then flushes, so the completion is durable), fails a few (retried
/// after a short backoff, dead-lettered after the last attempt), and leaves some in flight. It
/// writes one line per fact as soon as it holds: `A <id>` an add returned (durable), `D <id>` a
/// task was delivered, `P <id>` it is about to be completed (the completion may become durable
/// before the child learns it), `C <id>` its completion is durable, `X <task id>` a delivered
/// payload was not one the workload wrote.
enum TaskTorture {
    static let queue = "torture"

    /// The child's store settings; `background: false` (the parent's check) keeps checkpoints,
    /// reclamation and relocation from moving tasks while the queue is being read.
    static func configuration(background: Bool = true) -> TaskStoreConfiguration {
        var configuration = TaskStoreConfiguration(durability: .sync)
        configuration.log = TortureCommand.logConfiguration(.sync)
        configuration.memoryBudgetBytes = 64 << 10  // most of a long backlog stays on disk
        // Checkpoints and reclamation mid-run in the child; none while the parent checks.
        configuration.checkpointInterval = background ? .milliseconds(20) : .seconds(3600)
        configuration.retryInitialInterval = .milliseconds(1)
        configuration.retryMaximumInterval = .milliseconds(20)
        configuration.maxAttempts = 3
        return configuration
    }

    static func runChild(directory: String, seed: UInt64, round: Int, producers: Int) async -> Int32 {
        let store: TaskStore
        let queue: DurableTaskQueue
        do {
            store = try TaskStore.open(directory: directory, configuration: configuration())
            queue = try store.queue(Self.queue, kind: .activity)
        } catch {
            writeStandardError("spool torture child: open failed: \(error)\n")
            return 2
        }
        let deadline = monotonicNanoseconds() + 60_000_000_000
        let consumers = max(1, producers / 2)
        await withTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    var random = SplitMix64(seed: seed &+ UInt64(producer) &* 0x9E37_79B9)
                    var next = UInt64(round + 1) << 32 | UInt64(producer) << 24
                    while monotonicNanoseconds() < deadline {
                        let id = next
                        next += 1
                        do {
                            let priority = 1 + random.below(5)
                            _ = try await queue.add(TortureRecord.bytes(id), options: TaskOptions(priority: priority))
                            TortureChild.emit("A \(id)\n")
                        } catch {
                            writeStandardError("spool torture child: add failed: \(error)\n")
                            return
                        }
                    }
                }
            }
            for consumer in 0..<consumers {
                group.addTask {
                    var random = SplitMix64(seed: seed ^ 0xC0FF_EE00 &+ UInt64(consumer))
                    while monotonicNanoseconds() < deadline {
                        do {
                            guard let task = try await queue.poll(timeout: .milliseconds(20)) else { continue }
                            guard let id = TortureRecord.id(of: task.payload) else {
                                TortureChild.emit("X \(task.id)\n")
                                continue
                            }
                            TortureChild.emit("D \(id)\n")
                            let roll = random.below(100)
                            if roll < 80 {
                                TortureChild.emit("P \(id)\n")
                                try store.complete(task.id)
                                try await store.flush()
                                TortureChild.emit("C \(id)\n")
                            } else if roll < 90 {
                                _ = try await store.fail(task.id, reason: "torture")
                            }
                            // else: left in flight; the next process delivers it again.
                        } catch {
                            writeStandardError("spool torture child: poll or complete failed: \(error)\n")
                            return
                        }
                    }
                }
            }
        }
        try? await store.close()
        return 0
    }
}

/// What the task workload promised, and what every reopen must show.
struct TaskTortureLedger {
    /// Tasks that must be queued at every reopen until a durable completion: acknowledged adds, and
    /// every task a reopen showed.
    var owed: Set<UInt64> = []
    /// Tasks whose completion was durable: never delivered or queued again.
    var completed: Set<UInt64> = []
    /// Tasks a child began to complete without learning that the completion was durable: each may
    /// be queued again (the completion was lost with the process) or gone (it was not).
    var completing: Set<UInt64> = []
    /// Completions that became durable unreported (found gone at a reopen).
    var silentCompletions = 0
    var acknowledged = 0
    var deliveries = 0
    var completions = 0
    var queuedAtEnd = 0
    var deadLettersAtEnd = 0
    /// The task id (log offset) of every task the last reopen showed, by logical id: what a repair
    /// that removed it must name.
    var taskIDs: [UInt64: UInt64] = [:]

    /// Applies one child's output lines, in order. The child's threads write their own lines, so
    /// a task's completion ("C") can precede its add's acknowledgement ("A") when a worker
    /// completes the task before the adding thread reports it: such an "A" is not a duplicate.
    mutating func apply(_ lines: [String], round: Int, into ledger: inout TortureLedger) {
        var completedThisRound: Set<UInt64> = []
        for line in lines {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let value = UInt64(parts[1]) else {
                ledger.problem("round \(round): unreadable child line '\(line)'")
                continue
            }
            switch parts[0] {
            case "A":
                acknowledged += 1
                if completedThisRound.contains(value) { continue }
                if completed.contains(value) {
                    ledger.duplicated += 1
                    ledger.problem("round \(round): task \(value) acknowledged after its completion")
                }
                owed.insert(value)
            case "P":
                completing.insert(value)
            case "D":
                deliveries += 1
                if completed.contains(value) {
                    ledger.duplicated += 1
                    ledger.problem("round \(round): task \(value) delivered again after a durable completion")
                }
            case "C":
                completions += 1
                completedThisRound.insert(value)
                if !completed.insert(value).inserted {
                    ledger.duplicated += 1
                    ledger.problem("round \(round): task \(value) completed twice")
                }
                owed.remove(value)
                completing.remove(value)
            case "X":
                ledger.corrupt += 1
                ledger.problem("round \(round): task id \(value) was delivered with a payload no add wrote")
            default:
                ledger.problem("round \(round): unknown child line '\(line)'")
            }
        }
    }

    /// Reopens the store and checks its queue and dead letters against the ledger. Returns the
    /// store (the caller closes or abandons it) or nil when it did not open.
    mutating func verify(directory: String, round: Int, into ledger: inout TortureLedger) async -> TaskStore? {
        let store: TaskStore
        var present: [UInt64: Int] = [:]
        do {
            store = try TaskStore.open(directory: directory, configuration: TaskTorture.configuration(background: false))
        } catch {
            ledger.failedOpens += 1
            ledger.problem("round \(round): the task store did not open: \(error)")
            return nil
        }
        do {
            let queued = try store.peek(TaskTorture.queue, kind: .activity, limit: Int.max)
            let dead = try store.deadLetters(TaskTorture.queue, kind: .activity, limit: Int.max)
            queuedAtEnd = queued.count
            deadLettersAtEnd = dead.count
            taskIDs = [:]
            for (taskID, payload) in queued.map({ ($0.id, $0.payload) }) + dead.map({ ($0.id, $0.payload) }) {
                guard let id = TortureRecord.id(of: payload) else {
                    ledger.corrupt += 1
                    ledger.problem("round \(round): a queued task holds \(payload.count) bytes no add wrote")
                    continue
                }
                present[id, default: 0] += 1
                taskIDs[id] = taskID
            }
        } catch {
            ledger.corrupt += 1
            ledger.problem("round \(round): reading the queue threw \(error)")
        }
        for id in owed where present[id] == nil {
            if completing.remove(id) != nil {
                // Its completion reached the log before the kill: it is completed.
                silentCompletions += 1
                completed.insert(id)
                owed.remove(id)
                continue
            }
            ledger.lost += 1
            ledger.problem("round \(round): task \(id) was acknowledged (or queued at an earlier open) and is gone")
            owed.remove(id)
        }
        // A completion in progress at the kill that did not reach the log: the task is owed again.
        completing.subtract(present.keys)
        for (id, count) in present {
            if count > 1 {
                ledger.duplicated += 1
                ledger.problem("round \(round): task \(id) is queued \(count) times")
            }
            if completed.contains(id) {
                ledger.duplicated += 1
                ledger.problem("round \(round): task \(id) is queued again after a durable completion")
            }
            owed.insert(id)
        }
        ledger.records = present.count
        return store
    }
}

extension TaskTortureLedger: KillLoopLedger {
    mutating func check(directory: String, round: Int, closingCleanly: Bool, into ledger: inout TortureLedger) async -> Bool {
        guard let store = await verify(directory: directory, round: round, into: &ledger) else { return false }
        if closingCleanly { try? await store.close() } else { store.abandon() }
        return true
    }

    func progress(_ ledger: TortureLedger) -> String {
        "\(acknowledged) adds, \(completions) completions, \(ledger.records) queued, lost \(ledger.lost)"
    }
}

extension TaskTortureLedger: DamageProbing {
    var storeSubdirectory: String { "tasks" }
    var logName: String { "tasks/log" }

    /// Opens the task store of a damaged copy: every task owed (acknowledged, or shown by the last
    /// reopen, and not durably completed) must be queued or dead-lettered.
    func probe(data: String) async -> DamageProbe {
        let store: TaskStore
        do {
            store = try TaskStore.open(directory: data + "/tasks", configuration: TaskTorture.configuration(background: false))
        } catch {
            return .refused("\(error)")
        }
        var present: Set<UInt64> = []
        do {
            let queued = try store.peek(TaskTorture.queue, kind: .activity, limit: Int.max)
            let dead = try store.deadLetters(TaskTorture.queue, kind: .activity, limit: Int.max)
            for payload in queued.map(\.payload) + dead.map(\.payload) {
                if let id = TortureRecord.id(of: payload) { present.insert(id) }
            }
        } catch {
            store.abandon()
            return .refused("the store opened but reading the queue threw \(error)")
        }
        try? await store.close()
        // A completion in progress at the kill may or may not have reached the log: such a task may be gone.
        let missing = owed.subtracting(present).subtracting(completing).sorted()
        return .opened(missing: missing.map { "task \($0)" }, missingOffsets: missing.compactMap { taskIDs[$0] })
    }
}
