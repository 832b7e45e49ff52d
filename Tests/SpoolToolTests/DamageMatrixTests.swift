#if canImport(Glibc)
import Glibc
#endif
import Spool
import SpoolLog
import SpoolLogTesting
import SpoolQueue
import SpoolTestSupport
import Testing

/// The damage matrix of issue 25: every file of a stopped data directory (segments first, middle
/// and last, an index, the recovery point, the clean-shutdown marker, the log manifest and the
/// lock of both logs; both checkpoints; both kind markers) × every damage (`StoreDamage.Kind`:
/// a flipped byte, cut to half, cut to nothing, deleted, a directory, unreadable, swapped with
/// another store's), each on its own copy of a store holding acknowledged tasks and runs.
///
/// For every case, through the real `spool` commands:
/// - if `spool recover` (check) exits 0, `queue peek` and `workflow list` open the store and return
///   every acknowledged pending task, with its bytes, and every acknowledged run, closed ones closed;
/// - an open that does not return all of that must refuse (non-zero exit, naming the damaged file),
///   and check must then exit non-zero naming it too: never a silent loss;
/// - `spool recover --mode salvage --no-backup` either exits 0, after which the store opens and every
///   acknowledged task it does not return is named among the offsets it removed (a task's id is its
///   offset) and every run it does not return comes with history records reported removed; or it
///   exits non-zero saying why.
///
/// What is expected comes from what the store acknowledged (the ids and runs its calls returned),
/// never from what Spool prints about the damaged copy.
@Suite("damage matrix: recover check agrees with open, nothing acknowledged silently lost")
struct DamageMatrixTests {
    @Test("each file × each damage", arguments: StoreDamage.all)
    func damageCase(_ damage: StoreDamage) async throws {
        let stores = try await DamageMatrixStores.shared.stores()
        let scratch = ScratchDirectory("spool-damage")
        let verdict = try DamageMatrix.judge(damage, template: stores.clean, other: stores.other, scratch: scratch.path)
        for failure in verdict.failures { Issue.record("\(damage): \(failure)") }
    }

    /// The cases that matter after an unclean stop (no clean-shutdown marker, no recorded length of
    /// the last segment, checkpoints older than the log): the data, the files that describe it, the
    /// checkpoints.
    static let uncleanCases = StoreDamage.all.filter { damage in
        damage.file.holdsRecords || [.tasksIndex, .historyIndex, .tasksRecoveryPoint, .historyRecoveryPoint, .tasksLogManifest,
                                     .historyLogManifest, .taskCheckpoint, .engineCheckpoint].contains(damage.file)
    }

    /// Every case, the last segment cut to half included: the manifest records the active segment's
    /// durable extent before any record beyond it is acknowledged (with the template's
    /// `preallocationBytes = 0`, the data's end at each acknowledgement), so the cut segment is
    /// shorter than recorded and refused like a sealed one (`segmentShortened`), not cut as a torn
    /// tail. Cut to nothing or replaced by another store's, its recorded first batch refuses it.
    @Test("each file × each damage, after an unclean stop (the processes died)", arguments: uncleanCases)
    func damageCaseAfterAnUncleanStop(_ damage: StoreDamage) async throws {
        let stores = try await DamageMatrixStores.shared.stores()
        let scratch = ScratchDirectory("spool-damage")
        let verdict = try DamageMatrix.judge(damage, template: stores.unclean, other: stores.other, scratch: scratch.path)
        for failure in verdict.failures { Issue.record("\(damage) (unclean): \(failure)") }
    }

    /// The files every case hits must exist in the template, or the matrix tests less than it says:
    /// at least 40 cases apply, and every file kind is hit.
    @Test("the template store has every file the matrix damages")
    func templateHasEveryFile() async throws {
        let stores = try await DamageMatrixStores.shared.stores()
        let applicable = StoreDamage.all.filter { $0.file.path(in: stores.clean.data) != nil }
        #expect(applicable.count >= 40)
        for file in StoreDamage.File.allCases {
            let path = file.path(in: stores.clean.data)
            #expect(path.map(fileExists) == true, "\(file.rawValue): \(path ?? "none")")
        }
        // The unclean store stopped without a clean close: no marker, the last segment's length unrecorded.
        for log in ["/tasks/log", "/history"] {
            #expect(!fileExists(stores.unclean.data + log + "/clean-shutdown"))
            #expect(StoreDamage.segmentNames(in: stores.unclean.data + log).count >= 3)
        }
        for file in Set(Self.uncleanCases.map(\.file)) {
            #expect(file.path(in: stores.unclean.data).map(fileExists) == true, "\(file.rawValue)")
        }
    }
}

/// A store the matrix damages copies of, and what it acknowledged.
struct AcknowledgedStore: Sendable {
    var data: String
    /// Pending (acknowledged, not completed) tasks of queue `q`: id → payload.
    var pendingTasks: [UInt64: String]
    /// Acknowledged runs: (workflow id, run id) → closed.
    var runs: [RunKey: Bool]

    struct RunKey: Hashable, Sendable, CustomStringConvertible {
        var workflowID: String
        var runID: String
        var description: String { "\(workflowID)/\(runID)" }
    }
}

/// Builds the two template stores once per test process.
actor DamageMatrixStores {
    static let shared = DamageMatrixStores()
    private var built: Task<(clean: AcknowledgedStore, unclean: AcknowledgedStore, other: AcknowledgedStore), any Error>?
    private let scratch = ScratchDirectory("spool-damage-template")

    func stores() async throws -> (clean: AcknowledgedStore, unclean: AcknowledgedStore, other: AcknowledgedStore) {
        if built == nil {
            let root = scratch.path
            built = Task {
                let clean = try await DamageMatrix.makeStore(root + "/clean", tasks: 240, workflows: 60, tag: "c")
                // Another store, unlike the first: its first 90 tasks are completed, so its checkpoint's ack
                // level lies beyond tasks the first store still owes.
                let other = try await DamageMatrix.makeStore(root + "/other", tasks: 170, workflows: 45, tag: "o", completingFirst: 90)
                // Like the first, but the processes die instead of closing (no command runs after them).
                let unclean = try await DamageMatrix.makeStore(root + "/unclean", tasks: 240, workflows: 60, tag: "u", unclean: true)
                return (clean, unclean, other)
            }
        }
        return try await built!.value
    }
}

enum DamageMatrix {
    static let queue = "q"

    /// Small segments, so that both logs have a first, middle and last segment.
    static var logConfiguration: LogConfiguration {
        var configuration = LogConfiguration(durability: .sync)
        configuration.segmentBytes = 64 << 10
        configuration.maxRecordBytes = 16 << 10
        configuration.preallocationBytes = 0
        return configuration
    }

    /// A data directory with both stores, cleanly closed: `tasks` tasks of about 700 bytes (the
    /// first `completingFirst` and then every third completed, the rest pending, a few added and one polled by the `spool` commands) and
    /// `workflows` runs with 2.6 KB inputs (every fourth terminated, one started and one terminated
    /// by the commands). `unclean`: both stores are abandoned as a killed process leaves them, and
    /// the commands do not run. Returns what was acknowledged.
    static func makeStore(_ data: String, tasks: Int, workflows: Int, tag: String, completingFirst: Int = 0,
                          unclean: Bool = false) async throws -> AcknowledgedStore {
        var engineConfiguration = SpoolEngineConfiguration()
        engineConfiguration.log = logConfiguration
        engineConfiguration.firesTimersAutomatically = false
        var engine = try SpoolEngine.open(directory: data, configuration: engineConfiguration)
        var runs: [AcknowledgedStore.RunKey: Bool] = [:]
        for i in 0..<workflows {
            if unclean && i == workflows / 2 {
                // The unclean store's checkpoint is older than its log: written by a first, clean session.
                try await engine.close()
                engine = try SpoolEngine.open(directory: data, configuration: engineConfiguration)
            }
            let id = "\(tag)-wf-\(i)"
            let input = Payloads.binary(Array((id + ":" + String(repeating: "\(i % 10)", count: 2600)).utf8))
            let started = try await engine.startWorkflowExecution(
                StartWorkflowExecutionRequest(workflowID: id, workflowType: "order", taskQueue: "orders", input: input))
            let key = AcknowledgedStore.RunKey(workflowID: id, runID: started.runID)
            runs[key] = false
            if i % 4 == 1 {
                try await engine.terminateWorkflowExecution(execution: WorkflowExecution(workflowID: id, runID: started.runID), reason: "matrix")
                runs[key] = true
            }
        }
        if unclean { await engine.abandon() } else { try await engine.close() }

        var storeConfiguration = TaskStoreConfiguration(durability: .sync)
        storeConfiguration.log = logConfiguration
        storeConfiguration.checkpointInterval = .seconds(3600)
        var store = try TaskStore.open(directory: data + "/tasks", configuration: storeConfiguration)
        var queue = try store.queue(Self.queue, kind: .activity)
        var pending: [UInt64: String] = [:]
        for i in 0..<tasks {
            if unclean && i == tasks / 2 {
                try await store.close()
                store = try TaskStore.open(directory: data + "/tasks", configuration: storeConfiguration)
                queue = try store.queue(Self.queue, kind: .activity)
            }
            let payload = "\(tag)-task-\(i)-" + String(repeating: String(UnicodeScalar(UInt8(97 + i % 26))), count: 700)
            pending[try await queue.add(Array(payload.utf8))] = payload
        }
        // Every third task delivered is completed; the others are left in flight and pending again at the next open.
        var delivered = 0
        while let task = try await queue.poll(timeout: .milliseconds(0)) {
            if delivered < completingFirst || delivered % 3 == 0 {
                try store.complete(task.id)
                pending[task.id] = nil
            }
            delivered += 1
        }
        try await store.flush()
        if unclean {
            store.abandon()
            return AcknowledgedStore(data: data, pendingTasks: pending, runs: runs)
        }
        try await store.close()

        // A few tasks and runs by the commands, as a script would add them.
        let lines = (0..<5).map { "\(tag)-cli-\($0)" }
        let add = try SpoolProcess.run(["task", "add", "--data", data, "--queue", Self.queue], input: lines.joined(separator: "\n") + "\n")
        guard add.status == 0 else { throw SpoolProcess.LaunchError(description: "task add: \(add.stderr)") }
        for (id, line) in zip(add.stdout.split(separator: "\n"), lines) { pending[UInt64(id)!] = line }
        let poll = try SpoolProcess.run(["task", "poll", "--data", data, "--queue", Self.queue])
        guard poll.status == 0, let polled = poll.stdout.split(separator: "\t").first.flatMap({ UInt64($0) }) else {
            throw SpoolProcess.LaunchError(description: "task poll: \(poll.stdout)\(poll.stderr)")
        }
        pending[polled] = nil
        let start = try SpoolProcess.run(["workflow", "start", "--data", data, "--id", "\(tag)-cli", "--type", "order",
                                          "--task-queue", "orders", "--json"])
        guard start.status == 0, let runID = jsonStringField("runId", in: start.stdout) else {
            throw SpoolProcess.LaunchError(description: "workflow start: \(start.stderr)")
        }
        runs[AcknowledgedStore.RunKey(workflowID: "\(tag)-cli", runID: runID)] = false
        let victim = runs.keys.filter { runs[$0] == false && $0.workflowID.hasPrefix("\(tag)-wf-") }.min { $0.workflowID < $1.workflowID }!
        let terminate = try SpoolProcess.run(["workflow", "terminate", "--data", data, "--id", victim.workflowID, "--run-id", victim.runID])
        guard terminate.status == 0 else { throw SpoolProcess.LaunchError(description: "workflow terminate: \(terminate.stderr)") }
        runs[victim] = true
        return AcknowledgedStore(data: data, pendingTasks: pending, runs: runs)
    }

    /// What the store returned when opened by the read commands.
    enum Opened {
        /// The command refused to open it (its exit status and what it printed).
        case refused(status: Int32, message: String)
        /// It opened; what it is missing of what was acknowledged (empty: everything is there).
        case opened(missing: [String])
    }

    /// Opens the task store with `spool queue peek` and compares with what was acknowledged.
    static func openTasks(_ data: String, expected: AcknowledgedStore) throws -> (Opened, missingIDs: [UInt64]) {
        let peek = try SpoolProcess.run(["queue", "peek", "--data", data, "--queue", queue, "--max", "100000"])
        guard peek.status == 0 else { return (.refused(status: peek.status, message: peek.stderr + peek.stdout), []) }
        var found: [UInt64: String] = [:]
        for line in peek.stdout.split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false)
            if fields.count == 4, let id = UInt64(fields[0]) { found[id] = String(fields[3]) }
        }
        var missing: [String] = [], missingIDs: [UInt64] = []
        for (id, payload) in expected.pendingTasks.sorted(by: { $0.key < $1.key }) where found[id] != payload {
            missing.append(found[id] == nil ? "task \(id) missing" : "task \(id) has other bytes")
            missingIDs.append(id)
        }
        return (.opened(missing: missing), missingIDs)
    }

    /// Opens the engine with `spool workflow list` and compares with what was acknowledged.
    static func openRuns(_ data: String, expected: AcknowledgedStore) throws -> Opened {
        let list = try SpoolProcess.run(["workflow", "list", "--data", data, "--json"])
        guard list.status == 0 else { return .refused(status: list.status, message: list.stderr + list.stdout) }
        var found: [AcknowledgedStore.RunKey: String] = [:]
        for line in list.stdout.split(separator: "\n") {
            let text = String(line)
            if let workflowID = jsonStringField("workflowId", in: text), let runID = jsonStringField("runId", in: text) {
                found[AcknowledgedStore.RunKey(workflowID: workflowID, runID: runID)] = jsonStringField("status", in: text) ?? ""
            }
        }
        var missing: [String] = []
        for (run, closed) in expected.runs.sorted(by: { $0.key.workflowID < $1.key.workflowID }) {
            guard let status = found[run] else { missing.append("run \(run) missing"); continue }
            if closed && status == "running" { missing.append("run \(run) closed but shown running") }
        }
        return .opened(missing: missing)
    }

    struct Verdict {
        var applied: Bool
        var checkStatus: Int32 = -1
        var refused = false
        var salvageStatus: Int32 = -1
        var failures: [String] = []
    }

    /// Applies `damage` to two copies of `template` (one for check and open, one for salvage) and
    /// judges the property.
    static func judge(_ damage: StoreDamage, template: AcknowledgedStore, other: AcknowledgedStore, scratch: String) throws -> Verdict {
        let data = scratch + "/data"
        StoreDamage.copyStore(template.data, to: data)
        guard case .damaged(let path) = damage.apply(to: data, other: other.data) else { return Verdict(applied: false) }
        let name = String(path.split(separator: "/").last!)
        var verdict = Verdict(applied: true)

        let check = try SpoolProcess.run(["recover", "--data", data])
        verdict.checkStatus = check.status
        let (tasks, _) = try openTasks(data, expected: template)
        let runs = try openRuns(data, expected: template)
        for (store, opened) in [("task store", tasks), ("engine", runs)] {
            switch opened {
            case .opened(let missing) where !missing.isEmpty:
                verdict.failures.append("silent loss: the \(store) opened without \(missing.count) acknowledged item(s) "
                                        + "(\(missing.prefix(3).joined(separator: "; "))); check exited \(check.status)")
            case .refused(let status, let message):
                verdict.refused = true
                if check.status == 0 {
                    verdict.failures.append("check exited 0, but the \(store) refused to open (\(status)): \(message)")
                }
                if !message.contains(name) {
                    verdict.failures.append("the \(store) refused to open without naming \(name): \(message)")
                }
                if !(check.stdout + check.stderr).contains(name) {
                    verdict.failures.append("the \(store) refused to open, but check does not name \(name): \(check.stdout)\(check.stderr)")
                }
            default:
                break
            }
        }

        // Salvage, on a second copy damaged the same way.
        let salvaged = scratch + "/salvaged"
        StoreDamage.copyStore(template.data, to: salvaged)
        damage.apply(to: salvaged, other: other.data)
        let salvage = try SpoolProcess.run(["recover", "--data", salvaged, "--mode", "salvage", "--no-backup"])
        verdict.salvageStatus = salvage.status
        if salvage.status == 0 {
            let removed = StoreDamage.offsetsRemoved(byRepairReport: salvage.stdout, log: "tasks/log")
            let (tasksAfter, missingIDs) = try openTasks(salvaged, expected: template)
            switch tasksAfter {
            case .refused(let status, let message):
                verdict.failures.append("salvage exited 0, but the task store does not open (\(status)): \(message)")
            case .opened:
                let unnamed = missingIDs.filter { id in !removed.contains { $0.contains(id) } }
                if !unnamed.isEmpty {
                    verdict.failures.append("salvage lost tasks \(unnamed.prefix(5)) without naming them among the offsets removed: \(salvage.stdout)")
                }
            }
            switch try openRuns(salvaged, expected: template) {
            case .refused(let status, let message):
                verdict.failures.append("salvage exited 0, but the engine does not open (\(status)): \(message)")
            case .opened(let missing) where !missing.isEmpty:
                if StoreDamage.offsetsRemoved(byRepairReport: salvage.stdout, log: "history").isEmpty {
                    verdict.failures.append("salvage lost runs (\(missing.prefix(3).joined(separator: "; "))) but reports no history record removed: \(salvage.stdout)")
                }
            default:
                break
            }
        } else if !salvage.stderr.contains("spool recover") && !salvage.stdout.contains("damaged") {
            verdict.failures.append("salvage exited \(salvage.status) without saying why: \(salvage.stdout)\(salvage.stderr)")
        }
        return verdict
    }
}

/// The string value of `"name":"…"` in a line of JSON (values without escapes).
func jsonStringField(_ name: String, in line: String) -> String? {
    guard let start = line.firstRange(of: "\"\(name)\":\"") else { return nil }
    let rest = line[start.upperBound...]
    return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
}
