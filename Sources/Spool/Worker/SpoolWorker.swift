import Logging
import Synchronization
import SpoolPrimitives

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
    /// The ``Failure/source`` of the failures the worker reports for errors its functions throw
    /// (an SDK writes its own name there, such as `"PythonSDK"`).
    public static let failureSource = "SpoolWorker"

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
    let stickyScheduleToStartTimeout: Duration
    let eagerActivities: Bool
    /// The worker's own activity rate and the queue-wide rate it asks for (see ``init``).
    let maxActivitiesPerSecond: Double?
    let maxTaskQueueActivitiesPerSecond: Double?
    let workflowSlots: AsyncSemaphore
    let activitySlots: AsyncSemaphore
    let registrations = LockedValue<Registrations>(Registrations())
    let cache: LockedValue<HistoryCache>
    let stopping = Atomic<Bool>(false)
    /// Set by ``kill()``: the worker acts as a dead process, answering nothing more.
    private let killed = Atomic<Bool>(false)
    /// Sessions (nil: off), the worker's own session queue and its session slots.
    let sessions: SessionWorkerOptions?
    /// The queue of the activities of the sessions this worker holds; nil without sessions.
    public let sessionTaskQueue: String?
    let sessionSlots: AsyncSemaphore
    /// The sessions held here, by run id and session id: true once the workflow completed it.
    let openSessions = LockedValue<[String: Bool]>([:])
    /// The tasks that run the workflow and activity tasks taken, kept while ``run()`` runs.
    let runners = TaskRunners()
    private let maxConcurrentWorkflowTasks: Int
    private let maxConcurrentActivities: Int
    private let workflowTaskPollers: Int
    private let activityTaskPollers: Int
    /// The poll loops of ``run()``, cancelled by ``stop()``. The tasks they took run outside them,
    /// so stopping never cancels a workflow or activity that is running.
    private let pollLoops = LockedValue<[Task<Void, Never>]>([])
    let logger: Logger

    // A definition or function is held in a struct of its own: a closure stored in a dictionary
    // (or returned through a generic) is kept at the generic abstraction, and each lookup wrapped
    // it in a reabstraction thunk — an allocation, and two more async calls each time it ran.
    struct RegisteredWorkflow: Sendable { let definition: WorkflowDefinition }
    struct RegisteredActivity: Sendable { let function: ActivityFunction }

    struct Registrations: Sendable {
        var workflows: [String: RegisteredWorkflow] = [:]
        var activities: [String: RegisteredActivity] = [:]
        /// By workflow type, then query type.
        var queries: [String: [String: QueryHandler]] = [:]
        var updates: [String: [String: UpdateRegistration]] = [:]
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
    ///     Off when `maxActivitiesPerSecond` is set, so that every activity goes through the limit.
    ///   - maxActivitiesPerSecond: the most activity tasks per second this worker takes (Temporal's
    ///     worker option `MaxActivitiesPerSecond`), enforced by the engine before a task is handed
    ///     over, so a task never waits in the worker for a token; nil: no limit. Must be above 0.
    ///   - maxTaskQueueActivitiesPerSecond: the activity queue's rate across all its workers that
    ///     this worker asks for (Temporal's `MaxTaskQueueActivitiesPerSecond`; the latest poller's
    ///     value wins, a rate set with ``SpoolEngine/updateTaskQueueConfig(_:)`` takes precedence).
    ///   - sessions: run sessions (see ``Session``): take creation activities from the queue's
    ///     creation queue, at most `maxConcurrentSessions` at once, and poll this worker's own
    ///     ``sessionTaskQueue`` for the sessions' activities; nil: no sessions.
    public init(engine: SpoolEngine, namespace: String = defaultNamespace, taskQueue: String, identity: String,
                maxConcurrentWorkflowTasks: Int = 8, maxConcurrentActivities: Int = 64,
                maxConcurrentWorkflowTaskPollers: Int = 16, maxConcurrentActivityTaskPollers: Int = 16, stickyCacheSize: Int = 1000,
                stickyScheduleToStartTimeout: Duration = .seconds(5), eagerActivities: Bool = true,
                maxActivitiesPerSecond: Double? = nil, maxTaskQueueActivitiesPerSecond: Double? = nil,
                sessions: SessionWorkerOptions? = nil,
                logger: Logger = Logger(label: "spool.worker")) {
        precondition(maxConcurrentWorkflowTasks >= 1 && maxConcurrentActivities >= 1, "a worker needs at least one slot of each kind")
        precondition(maxConcurrentWorkflowTaskPollers >= 1 && maxConcurrentActivityTaskPollers >= 1, "a worker needs at least one poller of each kind")
        self.engine = engine
        self.namespace = namespace
        self.taskQueue = taskQueue
        self.identity = identity
        self.stickyTaskQueue = stickyCacheSize > 0 ? "\(taskQueue)/sticky/\(identity)/\(RunID.generate())" : nil
        self.stickyScheduleToStartTimeout = stickyScheduleToStartTimeout
        self.eagerActivities = eagerActivities && maxActivitiesPerSecond == nil
        self.maxActivitiesPerSecond = maxActivitiesPerSecond
        self.maxTaskQueueActivitiesPerSecond = maxTaskQueueActivitiesPerSecond
        self.maxConcurrentWorkflowTasks = maxConcurrentWorkflowTasks
        self.maxConcurrentActivities = maxConcurrentActivities
        self.workflowTaskPollers = min(maxConcurrentWorkflowTaskPollers, maxConcurrentWorkflowTasks)
        self.activityTaskPollers = min(maxConcurrentActivityTaskPollers, maxConcurrentActivities)
        self.workflowSlots = AsyncSemaphore(permits: maxConcurrentWorkflowTasks)
        self.activitySlots = AsyncSemaphore(permits: maxConcurrentActivities)
        self.cache = LockedValue(HistoryCache(capacity: stickyCacheSize))
        self.sessions = sessions
        self.sessionTaskQueue = sessions == nil ? nil : "\(taskQueue)@session/\(identity)/\(RunID.generate())"
        self.sessionSlots = AsyncSemaphore(permits: sessions?.maxConcurrentSessions ?? 1)
        self.logger = logger
    }

    /// Registers the definition of workflow type `type` (replacing an earlier one).
    public func registerWorkflow(_ type: String, _ definition: @escaping WorkflowDefinition) {
        registrations.withLock { $0.workflows[type] = RegisteredWorkflow(definition: definition) }
    }

    /// Registers the handler of queries of type `queryType` to runs of workflow type
    /// `workflowType` (replacing an earlier one). A query with no handler fails with a message
    /// naming the types that have one, as Temporal's SDKs answer.
    public func registerQuery(_ workflowType: String, _ queryType: String, _ handler: @escaping QueryHandler) {
        registrations.withLock { $0.queries[workflowType, default: [:]][queryType] = handler }
    }

    /// Registers the function of activity type `type` (replacing an earlier one).
    public func registerActivity(_ type: String, _ function: @escaping ActivityFunction) {
        registrations.withLock { $0.activities[type] = RegisteredActivity(function: function) }
    }

    /// Polls and runs tasks until ``stop()`` or until the calling task is cancelled; returns
    /// once every task it took has been answered.
    public func run() async {
        runners.open()
        defer { runners.close() }
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
                for _ in 0..<activityTaskPollers { group.addTask { await self.pollActivityTasks(self.taskQueue) } }
                if let sessions, let sessionTaskQueue {
                    group.addTask { await self.pollSessionCreations(sessions) }
                    for _ in 0..<max(1, min(activityTaskPollers, sessions.maxConcurrentSessions)) {
                        group.addTask { await self.pollActivityTasks(sessionTaskQueue) }
                    }
                }
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
        let sessionSlotCount = sessions?.maxConcurrentSessions ?? 0
        for _ in 0..<sessionSlotCount { await sessionSlots.acquire() }
        for _ in 0..<sessionSlotCount { sessionSlots.release() }
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

    /// Acts as if the worker's process died: polls stop at once and nothing more is answered or
    /// heartbeated (no sticky hand-back, no failed sessions): the engine finds out through its
    /// timeouts. Tests and `spool bench task-queues` use it to simulate a crash; running activity
    /// functions finish unanswered.
    package func kill() {
        killed.store(true, ordering: .releasing)
        stopping.store(true, ordering: .releasing)
        cancelPolls()
    }

    var isKilled: Bool { killed.load(ordering: .acquiring) }

    /// Cancels the poll loops (a cancelled poll returns nil and never swallows a task: the
    /// matcher hands it to the next poller).
    private func cancelPolls() {
        for loop in pollLoops.withLock({ $0 }) { loop.cancel() }
    }

    /// A poll failed: stop when the engine is closed (every poll would fail at once), else wait a
    /// little before the next one so that a failing log does not make the worker spin.
    func shouldPollAgain(after error: SpoolError) async -> Bool {
        if error.code == .closed { return false }
        logger.warning("a poll failed", metadata: ["queue": "\(taskQueue)", "error": "\(error)"])
        try? await Task.sleep(for: .milliseconds(100))
        return true
    }

    var isStopping: Bool { stopping.load(ordering: .acquiring) || Task.isCancelled }

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
            runners.submit { await self.run(task) }
        } else if eager {
            workflowSlots.release()
        }
        return response
    }
}
