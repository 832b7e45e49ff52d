import Logging
import Synchronization
import SpoolPrimitives

/// What a workflow definition is given: the run and its whole history up to the current
/// workflow task's WorkflowTaskStarted event.
public struct WorkflowContext: Sendable {
    /// The run.
    public var workflowExecution: WorkflowExecution
    /// Its type.
    public var workflowType: String
    /// Its events, from WorkflowExecutionStarted to this task's WorkflowTaskStarted.
    public var history: [HistoryEvent]
    /// The attempt of this workflow task.
    public var attempt: Int32

    /// The run's input (from WorkflowExecutionStarted).
    public var input: Payloads? {
        if case .workflowExecutionStarted(let started) = history.first?.attributes { return started.input }
        return nil
    }
}

/// A workflow definition: a deterministic function of the run's history that returns the
/// commands for this workflow task. Throwing fails the workflow task (it is retried); the run
/// does not fail. To fail the run, return ``Command/failWorkflowExecution(_:)``.
public typealias WorkflowDefinition = @Sendable (WorkflowContext) async throws -> [Command]

/// What an activity function is given: its task, and a way to heartbeat.
public struct ActivityContext: Sendable {
    /// The task: input, attempt, the last heartbeat details of an earlier attempt.
    public var task: ActivityTask
    let engine: SpoolEngine
    let identity: String

    /// Records a heartbeat with `details` (kept for the next attempt) and returns whether the
    /// workflow asked to cancel the activity; if it did, stop and throw `CancellationError`.
    /// - Throws: ``SpoolError/Code/staleTaskToken`` when this attempt already timed out.
    public func heartbeat(_ details: Payloads? = nil) async throws(SpoolError) -> Bool {
        try await engine.recordActivityTaskHeartbeat(taskToken: task.taskToken, details: details, identity: identity).cancelRequested
    }
}

/// An activity function: returns the result, or throws. A thrown ``ActivityFailure`` is reported
/// as its ``Failure``; `CancellationError` after a cancel request reports the activity canceled;
/// any other error is a retryable failure whose type is the error's type name.
public typealias ActivityFunction = @Sendable (ActivityContext) async throws -> Payloads?

/// An error an activity throws to report a specific ``Failure`` (a type for retry policies to
/// match, non-retryable, a next retry delay).
public struct ActivityFailure: Error, Sendable {
    /// The failure to report.
    public var failure: Failure
    /// An error that reports `failure`.
    public init(_ failure: Failure) { self.failure = failure }
}

/// An in-process worker: polls one task queue of an engine for workflow and activity tasks,
/// runs the registered workflow definitions and activity functions, and responds.
///
/// It polls only when it has a free slot (`maxConcurrentWorkflowTasks`,
/// `maxConcurrentActivities`), so tasks it cannot run stay on the queue for other workers; it
/// keeps up to `maxConcurrentWorkflowTaskPollers` polls of each workflow task queue and
/// `maxConcurrentActivityTaskPollers` of the activity queue outstanding at once. With
/// `stickyCacheSize > 0` it keeps the histories of recent runs and names its own sticky queue,
/// so later workflow tasks of those runs come to it with only the new events; ``stop()`` hands
/// them back to the normal queue at once.
///
/// ```swift
/// let worker = SpoolWorker(engine: engine, taskQueue: "orders", identity: "worker-1")
/// worker.registerWorkflow("order") { context in … return [.completeWorkflowExecution(.init())] }
/// worker.registerActivity("charge") { context in … return nil }
/// let running = Task { await worker.run() }
/// …
/// await worker.stop(); await running.value
/// ```
public final class SpoolWorker: Sendable {
    /// The engine the worker polls.
    public let engine: SpoolEngine
    /// The namespace of its task queue.
    public let namespace: String
    /// The task queue it polls.
    public let taskQueue: String
    /// Its identity in events and poller lists.
    public let identity: String
    /// Its own queue for workflow tasks of the runs it has cached; nil without a cache.
    public let stickyTaskQueue: String?
    private let stickyScheduleToStartTimeout: Duration
    private let eagerActivities: Bool
    private let workflowSlots: AsyncSemaphore
    private let activitySlots: AsyncSemaphore
    private let registrations = LockedValue<Registrations>(Registrations())
    private let cache: LockedValue<HistoryCache>
    private let stopping = Atomic<Bool>(false)
    private let maxConcurrentWorkflowTasks: Int
    private let maxConcurrentActivities: Int
    private let workflowTaskPollers: Int
    private let activityTaskPollers: Int
    /// The poll loops of ``run()``, cancelled by ``stop()``. The tasks they took run outside them,
    /// so stopping never cancels a workflow or activity that is running.
    private let pollLoops = LockedValue<[Task<Void, Never>]>([])
    private let logger: Logger

    private struct Registrations: Sendable {
        var workflows: [String: WorkflowDefinition] = [:]
        var activities: [String: ActivityFunction] = [:]
    }

    /// A worker; nothing is polled until ``run()``.
    /// - Parameters:
    ///   - maxConcurrentWorkflowTasks: workflow tasks run at once (at least 1).
    ///   - maxConcurrentActivities: activity tasks run at once (at least 1).
    ///   - maxConcurrentWorkflowTaskPollers: workflow task polls outstanding at once, split between
    ///     the normal and the sticky queue (at least 1; at most `maxConcurrentWorkflowTasks` are
    ///     used, since a poll holds a slot: pollers idle on one queue never hold every slot the
    ///     other needs). A poll that takes a workflow task returns once its WorkflowTaskStarted
    ///     event is durable — with `.sync` durability, after an fdatasync — so one poller takes at
    ///     most one workflow task per sync; more pollers share each sync.
    ///   - maxConcurrentActivityTaskPollers: polls of the activity task queue outstanding at once
    ///     (at least 1; at most `maxConcurrentActivities` are used).
    ///   - stickyCacheSize: runs whose history the worker keeps; 0 turns sticky execution off.
    ///   - eagerActivities: ask for the activities a workflow schedules on this worker's queue to
    ///     come back started in the workflow task's response, as many as it has free activity slots
    ///     (Temporal's eager activity execution: no queue round trip, one append fewer each).
    public init(engine: SpoolEngine, namespace: String = defaultNamespace, taskQueue: String, identity: String,
                maxConcurrentWorkflowTasks: Int = 8, maxConcurrentActivities: Int = 64,
                maxConcurrentWorkflowTaskPollers: Int = 16, maxConcurrentActivityTaskPollers: Int = 16, stickyCacheSize: Int = 1000,
                stickyScheduleToStartTimeout: Duration = .seconds(5), eagerActivities: Bool = true,
                logger: Logger = Logger(label: "spool.worker")) {
        precondition(maxConcurrentWorkflowTasks >= 1 && maxConcurrentActivities >= 1, "a worker needs at least one slot of each kind")
        precondition(maxConcurrentWorkflowTaskPollers >= 1 && maxConcurrentActivityTaskPollers >= 1, "a worker needs at least one poller of each kind")
        self.engine = engine
        self.namespace = namespace
        self.taskQueue = taskQueue
        self.identity = identity
        self.stickyTaskQueue = stickyCacheSize > 0 ? "\(taskQueue)/sticky/\(identity)/\(RunID.generate())" : nil
        self.stickyScheduleToStartTimeout = stickyScheduleToStartTimeout
        self.eagerActivities = eagerActivities
        self.maxConcurrentWorkflowTasks = maxConcurrentWorkflowTasks
        self.maxConcurrentActivities = maxConcurrentActivities
        self.workflowTaskPollers = min(maxConcurrentWorkflowTaskPollers, maxConcurrentWorkflowTasks)
        self.activityTaskPollers = min(maxConcurrentActivityTaskPollers, maxConcurrentActivities)
        self.workflowSlots = AsyncSemaphore(permits: maxConcurrentWorkflowTasks)
        self.activitySlots = AsyncSemaphore(permits: maxConcurrentActivities)
        self.cache = LockedValue(HistoryCache(capacity: stickyCacheSize))
        self.logger = logger
    }

    /// Registers the definition of workflow type `type` (replacing an earlier one).
    public func registerWorkflow(_ type: String, _ definition: @escaping WorkflowDefinition) {
        registrations.withLock { $0.workflows[type] = definition }
    }

    /// Registers the function of activity type `type` (replacing an earlier one).
    public func registerActivity(_ type: String, _ function: @escaping ActivityFunction) {
        registrations.withLock { $0.activities[type] = function }
    }

    /// Polls and runs tasks until ``stop()`` or until the calling task is cancelled; returns
    /// once every task it took has been answered.
    public func run() async {
        let loops = Task {
            await withTaskGroup(of: Void.self) { group in
                // With a sticky queue, half the pollers each (one at least: a single slot is then
                // shared by two pollers, and a sticky task waiting for it falls back to the normal
                // queue after its schedule-to-start timeout).
                let queues = [(taskQueue, stickyTaskQueue == nil ? workflowTaskPollers : max(1, (workflowTaskPollers + 1) / 2))]
                    + (stickyTaskQueue.map { [($0, max(1, workflowTaskPollers / 2))] } ?? [])
                for (queue, pollers) in queues {
                    for _ in 0..<pollers { group.addTask { await self.pollWorkflowTasks(queue) } }
                }
                for _ in 0..<activityTaskPollers { group.addTask { await self.pollActivityTasks() } }
            }
        }
        pollLoops.withLock { $0.append(loops) }
        if stopping.load(ordering: .acquiring) { loops.cancel() }
        await withTaskCancellationHandler { await loops.value } onCancel: { loops.cancel() }
        // Every slot free again means every task taken has been answered.
        for _ in 0..<maxConcurrentWorkflowTasks { await workflowSlots.acquire() }
        for _ in 0..<maxConcurrentWorkflowTasks { workflowSlots.release() }
        for _ in 0..<maxConcurrentActivities { await activitySlots.acquire() }
        for _ in 0..<maxConcurrentActivities { activitySlots.release() }
    }

    /// Stops polling, lets running tasks finish, and hands the runs cached here back to the
    /// normal queue at once (instead of after the sticky timeout).
    public func stop() async {
        stopping.store(true, ordering: .releasing)
        cancelPolls()
        if let stickyTaskQueue {
            do {
                try await engine.shutdownWorker(namespace: namespace, stickyTaskQueue: stickyTaskQueue)
            } catch {
                logger.warning("could not hand the sticky runs back", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Cancels the poll loops (a cancelled poll returns nil and never swallows a task: the
    /// matcher hands it to the next poller).
    private func cancelPolls() {
        for loop in pollLoops.withLock({ $0 }) { loop.cancel() }
    }

    /// A poll failed: stop when the engine is closed (every poll would fail at once), else wait a
    /// little before the next one so that a failing log does not make the worker spin.
    private func shouldPollAgain(after error: SpoolError) async -> Bool {
        if error.code == .closed { return false }
        logger.warning("a poll failed", metadata: ["queue": "\(taskQueue)", "error": "\(error)"])
        try? await Task.sleep(for: .milliseconds(100))
        return true
    }

    private var isStopping: Bool { stopping.load(ordering: .acquiring) || Task.isCancelled }

    /// Starts a run and, when it is on this worker's queue and a workflow task slot is free,
    /// runs its first workflow task here at once (eager workflow start: the start and the task's
    /// start are one append, and the task never goes through the queue).
    /// - Throws: as ``SpoolEngine/startWorkflowExecution(_:)``.
    @discardableResult
    public func startWorkflow(_ request: StartWorkflowExecutionRequest) async throws(SpoolError) -> StartWorkflowExecutionResponse {
        var request = request
        let eager = request.namespace == namespace && request.taskQueue == taskQueue && !isStopping && workflowSlots.tryAcquire()
        request.requestEagerExecution = eager
        if eager { request.identity = identity }
        let response: StartWorkflowExecutionResponse
        do {
            response = try await engine.startWorkflowExecution(request)
        } catch {
            if eager { workflowSlots.release() }
            throw error
        }
        if let task = response.eagerWorkflowTask {
            Task { await self.run(task) }
        } else if eager {
            workflowSlots.release()
        }
        return response
    }

    // MARK: Workflow tasks

    private func pollWorkflowTasks(_ queue: String) async {
        while !isStopping {
            await workflowSlots.acquire()
            if isStopping {
                workflowSlots.release()
                break
            }
            let polled: WorkflowTask?
            do {
                polled = try await engine.pollWorkflowTaskQueue(namespace: namespace, taskQueue: queue, identity: identity,
                                                                timeout: .seconds(30))
            } catch {
                workflowSlots.release()
                guard await shouldPollAgain(after: error) else { break }
                continue
            }
            guard let task = polled else {
                workflowSlots.release()
                continue
            }
            // Not a child of the loop: stopping the loop must not cancel a task being run.
            Task { await self.run(task) }
        }
    }

    /// Runs a workflow task whose slot is held, frees the slot, then runs the activities the
    /// engine started eagerly for it (their slots are held): the last in this same task, the
    /// others each in its own — one task fewer per workflow task that schedules activities.
    private func run(_ task: WorkflowTask) async {
        let activities = await handle(task)
        workflowSlots.release()
        for (index, activity) in activities.enumerated() {
            if index == activities.count - 1 {
                await handle(activity)
                activitySlots.release()
            } else {
                Task {
                    await self.handle(activity)
                    self.activitySlots.release()
                }
            }
        }
    }

    /// Runs a workflow task and responds; returns the activities the engine started for it
    /// eagerly, each holding an activity slot the caller must release once it is answered.
    private func handle(_ task: WorkflowTask) async -> [ActivityTask] {
        let runID = task.workflowExecution.runID
        do {
            let history = try await fullHistory(of: task)
            guard let definition = registrations.withLock({ $0.workflows[task.workflowType] }) else {
                cache.withLock { $0.remove(runID) }
                try await engine.respondWorkflowTaskFailed(
                    taskToken: task.taskToken, cause: .workflowWorkerUnhandledFailure,
                    failure: Failure(message: "workflow type '\(task.workflowType)' is not registered with worker '\(identity)'",
                                     type: "NotFoundError"),
                    identity: identity)
                return []
            }
            let context = WorkflowContext(workflowExecution: task.workflowExecution, workflowType: task.workflowType,
                                          history: history, attempt: task.attempt)
            let commands: [Command]
            do {
                commands = try await definition(context)
            } catch {
                cache.withLock { $0.remove(runID) }
                try await engine.respondWorkflowTaskFailed(
                    taskToken: task.taskToken, cause: .workflowWorkerUnhandledFailure,
                    failure: Failure(message: "\(error)", type: String(describing: type(of: error))), identity: identity)
                return []
            }
            let closes = commands.contains { $0.isClosing }
            let sticky = closes ? nil : stickyTaskQueue.map {
                StickyExecutionAttributes(workerTaskQueue: $0, scheduleToStartTimeout: stickyScheduleToStartTimeout)
            }
            if sticky != nil { cache.withLock { $0.store(runID, history) } } else { cache.withLock { $0.remove(runID) } }
            let (marked, reservedSlots) = requestEagerExecution(commands, workflowTaskQueue: task.workflowExecutionTaskQueue)
            var reserved = reservedSlots
            // Slots reserved for eager activities the engine did not start go back.
            defer { for _ in 0..<reserved { activitySlots.release() } }
            let response = try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: marked,
                                                                         identity: identity, stickyAttributes: sticky)
            let started = Array(response.activityTasks.prefix(reserved))
            reserved -= started.count     // these slots now belong to the activities, released when they are answered
            return started
        } catch {
            cache.withLock { $0.remove(runID) }
            logger.info("a workflow task could not be answered", metadata: ["run": "\(task.workflowExecution)", "error": "\(error)"])
            return []
        }
    }

    /// Marks for eager execution as many of `commands`' activities on the workflow's queue as
    /// there are free activity slots, and takes those slots; returns the commands and how many.
    private func requestEagerExecution(_ commands: [Command], workflowTaskQueue: String) -> ([Command], Int) {
        guard eagerActivities, workflowTaskQueue == taskQueue else { return (commands, 0) }
        var reserved = 0
        let marked = commands.map { command -> Command in
            guard case .scheduleActivityTask(var attributes) = command,
                  attributes.taskQueue.isEmpty || attributes.taskQueue == taskQueue,
                  activitySlots.tryAcquire() else { return command }
            reserved += 1
            attributes.requestEagerExecution = true
            return .scheduleActivityTask(attributes)
        }
        return (marked, reserved)
    }

    /// The task's whole history: the cached events plus the new ones of a sticky task, or the
    /// full history read from the engine when the cache does not have the run.
    private func fullHistory(of task: WorkflowTask) async throws(SpoolError) -> [HistoryEvent] {
        if task.history.first?.eventID == 1 { return task.history }
        let runID = task.workflowExecution.runID
        if let cached = cache.withLock({ $0.history(runID) }), cached.last?.eventID == (task.history.first?.eventID ?? 1) - 1 {
            return cached + task.history
        }
        var events: [HistoryEvent] = []
        var token: [UInt8]? = nil
        repeat {
            let page = try await engine.getWorkflowExecutionHistory(namespace: namespace, execution: task.workflowExecution,
                                                                     nextPageToken: token)
            events += page.history
            token = page.nextPageToken
        } while token != nil && (events.last?.eventID ?? 0) < task.startedEventID
        return events.filter { $0.eventID <= task.startedEventID }
    }

    // MARK: Activity tasks

    private func pollActivityTasks() async {
        while !isStopping {
            await activitySlots.acquire()
            if isStopping {
                activitySlots.release()
                break
            }
            let polled: ActivityTask?
            do {
                polled = try await engine.pollActivityTaskQueue(namespace: namespace, taskQueue: taskQueue, identity: identity,
                                                                timeout: .seconds(30))
            } catch {
                activitySlots.release()
                guard await shouldPollAgain(after: error) else { break }
                continue
            }
            guard let task = polled else {
                activitySlots.release()
                continue
            }
            Task {
                await self.handle(task)
                self.activitySlots.release()
            }
        }
    }

    private func handle(_ task: ActivityTask) async {
        let token = task.taskToken
        do {
            guard let function = registrations.withLock({ $0.activities[task.activityType] }) else {
                try await engine.respondActivityTaskFailed(
                    taskToken: token,
                    failure: Failure(message: "activity type '\(task.activityType)' is not registered with worker '\(identity)'",
                                     type: "NotFoundError"),
                    identity: identity)
                return
            }
            let context = ActivityContext(task: task, engine: engine, identity: identity)
            do {
                let result = try await function(context)
                try await engine.respondActivityTaskCompleted(taskToken: token, result: result, identity: identity)
            } catch let failure as ActivityFailure {
                try await engine.respondActivityTaskFailed(taskToken: token, failure: failure.failure, identity: identity)
            } catch is CancellationError {
                try await engine.respondActivityTaskCanceled(taskToken: token, identity: identity)
            } catch {
                try await engine.respondActivityTaskFailed(
                    taskToken: token, failure: Failure(message: "\(error)", type: String(describing: type(of: error))), identity: identity)
            }
        } catch {
            logger.info("an activity task could not be answered", metadata: ["activity": "\(task.activityID)", "error": "\(error)"])
        }
    }
}

/// The histories of the runs a worker ran last, least recently used evicted first.
struct HistoryCache: Sendable {
    let capacity: Int
    private var entries: [String: (history: [HistoryEvent], use: UInt64)] = [:]
    private var clock: UInt64 = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func history(_ runID: String) -> [HistoryEvent]? {
        guard let entry = entries[runID] else { return nil }
        clock &+= 1
        entries[runID] = (entry.history, clock)
        return entry.history
    }

    mutating func store(_ runID: String, _ history: [HistoryEvent]) {
        guard capacity > 0 else { return }
        clock &+= 1
        entries[runID] = (history, clock)
        // Evict in batches (the least recently used tenth), so a store costs O(log n) amortized.
        if entries.count > capacity + max(1, capacity / 10) {
            let oldest = entries.sorted { $0.value.use < $1.value.use }.prefix(entries.count - capacity)
            for (key, _) in oldest { entries[key] = nil }
        }
    }

    mutating func remove(_ runID: String) { entries[runID] = nil }
}
