#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolLogTesting
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import Spool

/// An engine on a fresh directory under /tmp, with a manual clock and timers fired by hand.
final class EngineHarness {
    let directory: String
    let clock: ManualMatchingClock
    let durability: Durability
    var engine: SpoolEngine
    /// The system-call layer of the open engine's log, when the harness injects faults.
    private(set) var faults: FaultInjectingSyscalls?

    static let epoch = MatchingInstant(nanoseconds: 1_750_000_000_000_000_000)

    /// An engine on a new directory; with `injectingFaults`, its log's system calls go through a
    /// ``FaultInjectingSyscalls`` (a new one at each reopen), for ``crashAfterNextAppend()``.
    init(durability: Durability = .none, injectingFaults: Bool = false, name: String = #function) throws {
        var template = Array("/tmp/spool-engine-test-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        try #require(path != nil)
        directory = String(cString: path!)
        clock = ManualMatchingClock(start: Self.epoch)
        self.durability = durability
        faults = injectingFaults ? FaultInjectingSyscalls() : nil
        engine = try Self.open(directory, clock: clock, durability: durability, syscalls: faults)
    }

    static func open(_ directory: String, clock: ManualMatchingClock, durability: Durability,
                     syscalls: FaultInjectingSyscalls? = nil) throws -> SpoolEngine {
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(clock)
        configuration.log = LogConfiguration(durability: durability)
        if let syscalls { configuration.log.syscalls = syscalls }
        configuration.firesTimersAutomatically = false
        return try SpoolEngine.open(directory: directory + "/data", configuration: configuration)
    }

    /// Kills the engine (no clean close) and opens the directory again.
    func crashAndReopen() async throws {
        await engine.abandon()
        if faults != nil { faults = FaultInjectingSyscalls() }
        engine = try Self.open(directory, clock: clock, durability: durability, syscalls: faults)
    }

    /// Closes cleanly and opens again.
    func closeAndReopen() async throws {
        try await engine.close()
        if faults != nil { faults = FaultInjectingSyscalls() }
        engine = try Self.open(directory, clock: clock, durability: durability, syscalls: faults)
    }

    /// The next append reaches the disk and is synced, but its `fdatasync` reports failure: the
    /// engine's call fails with `storage` after the change became durable, as when the process
    /// dies between the append and acting on it. Needs `injectingFaults` and `.sync` durability.
    func crashAfterNextAppend() {
        precondition(faults != nil && durability == .sync, "crashAfterNextAppend needs injectingFaults and .sync")
        faults?.failAfterForwarding(.fdatasync, path: .suffix(".log"), occurrence: .only(1))
    }

    func advance(_ duration: Duration) async {
        clock.advance(by: duration)
        await engine.fireDueTimers()
    }

    /// The directory goes with the harness; the engine's log closes when the engine is released.
    deinit { removeTree(directory) }

    // MARK: Shortcuts

    @discardableResult
    func start(_ workflowID: String = "wf", type: String = "order", queue: String = "q", input: Payloads? = nil,
               runTimeout: Duration? = nil, reuse: WorkflowIDReusePolicy = .allowDuplicate,
               conflict: WorkflowIDConflictPolicy = .fail) async throws -> WorkflowExecution {
        let response = try await engine.startWorkflowExecution(.init(
            workflowID: workflowID, workflowType: type, taskQueue: queue, input: input, workflowRunTimeout: runTimeout,
            workflowIDReusePolicy: reuse, workflowIDConflictPolicy: conflict))
        return WorkflowExecution(workflowID: workflowID, runID: response.runID)
    }

    func pollWorkflowTask(_ queue: String = "q", identity: String = "worker") async throws -> WorkflowTask? {
        try await engine.pollWorkflowTaskQueue(taskQueue: queue, identity: identity, timeout: .zero)
    }

    func pollActivityTask(_ queue: String = "q", identity: String = "worker") async throws -> ActivityTask? {
        try await engine.pollActivityTaskQueue(taskQueue: queue, identity: identity, timeout: .zero)
    }

    /// Polls the workflow task that must be there and completes it with `commands`.
    func completeWorkflowTask(_ commands: [Command], queue: String = "q") async throws -> WorkflowTask {
        let task = try #require(try await pollWorkflowTask(queue))
        try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: commands, identity: "worker")
        return task
    }

    func history(_ execution: WorkflowExecution) async throws -> [HistoryEvent] {
        try await engine.getWorkflowExecutionHistory(execution: execution).history
    }

    func eventTypes(_ execution: WorkflowExecution) async throws -> [EventType] {
        try await history(execution).map(\.eventType)
    }

    func describe(_ execution: WorkflowExecution) throws -> DescribeWorkflowExecutionResponse {
        try engine.describeWorkflowExecution(execution: execution)
    }
}

// `engine` is replaced (reopen) only by the test that owns the harness, never while another task
// uses it; everything else is immutable.
extension EngineHarness: @unchecked Sendable {}

typealias EngineSnapshot = [String: (DescribeWorkflowExecutionResponse, [HistoryEvent])]

extension EngineHarness {
    /// Everything a reader can see of every run: their descriptions and histories.
    func snapshot() async throws -> EngineSnapshot {
        var result: [String: (DescribeWorkflowExecutionResponse, [HistoryEvent])] = [:]
        for info in engine.listWorkflowExecutions() {
            result[info.execution.description] = (try describe(info.execution), try await history(info.execution))
        }
        return result
    }
}

func expectSameState(_ before: EngineSnapshot, _ after: EngineSnapshot) {
    #expect(before.keys.sorted() == after.keys.sorted())
    for (key, value) in before {
        #expect(after[key]?.0 == value.0, "description of \(key)")
        #expect(after[key]?.1 == value.1, "history of \(key)")
    }
}

func scheduleActivity(_ id: String = "a", type: String = "charge", queue: String = "", startToClose: Duration? = .seconds(30),
                      scheduleToClose: Duration? = nil, scheduleToStart: Duration? = nil, heartbeat: Duration? = nil,
                      retry: RetryPolicy? = nil, input: Payloads? = nil) -> Command {
    .scheduleActivityTask(.init(activityID: id, activityType: type, taskQueue: queue, input: input,
                                scheduleToCloseTimeout: scheduleToClose, scheduleToStartTimeout: scheduleToStart,
                                startToCloseTimeout: startToClose, heartbeatTimeout: heartbeat, retryPolicy: retry))
}

/// Whether `error` is a ``SpoolError`` with `code`.
func isSpoolError(_ error: any Error, _ code: SpoolError.Code) -> Bool {
    (error as? SpoolError)?.code == code
}
