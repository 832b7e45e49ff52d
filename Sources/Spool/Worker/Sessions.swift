import Logging
import SpoolPrimitives

/// Sessions, as in Temporal's Go SDK (`internal/session.go`): activities that must all run on
/// one worker, a limit on the sessions a worker runs at once, and detection of a worker that
/// died.
///
/// A workflow creates a session with ``WorkflowContext/createSession(_:taskQueue:heartbeatTimeout:creationTimeout:executionTimeout:)``:
/// an activity of type ``creationActivityType`` on the task queue's creation queue
/// (``creationTaskQueue(_:)``), taken only by a worker with sessions enabled and a free session
/// slot. That worker signals the run (``createdSignalName``) with its own session task queue and
/// then keeps the creation activity open, heartbeating it. The workflow schedules the session's
/// activities on that queue (``WorkflowContext/scheduleActivity(inSession:_:)``), which only this
/// worker polls; ``WorkflowContext/completeSession(_:)`` schedules a ``completionActivityType``
/// activity there, on which the worker completes the creation activity and frees the slot. A
/// worker that dies stops heartbeating: the creation activity times out after its heartbeat
/// timeout, and ``WorkflowContext/session(_:)`` is ``SessionState/failed(_:)``.
public enum Session {
    /// The creation activity's type (the Go SDK's name).
    public static let creationActivityType = "internalSessionCreationActivity"
    /// The completion activity's type (the Go SDK's name).
    public static let completionActivityType = "internalSessionCompletionActivity"
    /// The signal a worker sends the run once it holds the session: the session id, the
    /// session's task queue and the worker's identity, one binary payload each.
    public static let createdSignalName = "__spool_session_created"

    /// The queue creation activities of workflows on `taskQueue` go to (the Go SDK's suffix).
    public static func creationTaskQueue(_ taskQueue: String) -> String { taskQueue + "__internal_session_creation" }
    /// The activity id of session `sessionID`'s creation activity.
    public static func creationActivityID(_ sessionID: String) -> String { "__session_creation/" + sessionID }
    /// The activity id of session `sessionID`'s completion activity.
    public static func completionActivityID(_ sessionID: String) -> String { "__session_completion/" + sessionID }
}

/// What a worker with sessions enabled allows (the `sessions` argument of ``SpoolWorker``'s initializer).
public struct SessionWorkerOptions: Sendable {
    /// Sessions open on the worker at once (the Go SDK's `MaxConcurrentSessionExecutionSize`);
    /// the worker takes no creation activity while all are in use.
    public var maxConcurrentSessions: Int
    /// How often the worker heartbeats a session's creation activity; nil: a third of the
    /// heartbeat timeout the workflow gave the session (one second when it gave none).
    public var heartbeatInterval: Duration?

    /// Options allowing `maxConcurrentSessions` (at least 1) sessions at once.
    public init(maxConcurrentSessions: Int = 1000, heartbeatInterval: Duration? = nil) {
        precondition(maxConcurrentSessions >= 1, "a worker with sessions needs at least one session slot")
        self.maxConcurrentSessions = maxConcurrentSessions
        self.heartbeatInterval = heartbeatInterval
    }
}

/// A session's state, read from the run's history by ``WorkflowContext/session(_:)``.
public enum SessionState: Hashable, Sendable {
    /// No creation activity with this session id was scheduled.
    case none
    /// Its creation activity is scheduled; no worker holds it yet.
    case pending
    /// A worker holds it: schedule its activities on `taskQueue`.
    case open(taskQueue: String, workerIdentity: String)
    /// Its creation activity failed, timed out (the worker stopped heartbeating: it died) or was
    /// canceled; the failure says which.
    case failed(Failure)
    /// The workflow completed it.
    case completed
}

extension WorkflowContext {
    /// Session `sessionID`'s state as of this workflow task.
    public func session(_ sessionID: String) -> SessionState {
        let creationID = Session.creationActivityID(sessionID)
        let completionID = Session.completionActivityID(sessionID)
        var creationEventID: Int64?
        var state = SessionState.none
        for event in history {
            switch event.attributes {
            case .activityTaskScheduled(let a) where a.activityID == creationID:
                creationEventID = event.eventID
                state = .pending
            case .activityTaskScheduled(let a) where a.activityID == completionID:
                state = .completed
            case .workflowExecutionSignaled(let s) where s.signalName == Session.createdSignalName:
                guard case .pending = state, let input = s.input, input.count == 3,
                      String(decoding: input[0].data, as: UTF8.self) == sessionID else { continue }
                state = .open(taskQueue: String(decoding: input[1].data, as: UTF8.self),
                              workerIdentity: String(decoding: input[2].data, as: UTF8.self))
            case .activityTaskFailed(let a) where a.scheduledEventID == creationEventID:
                if state != .completed { state = .failed(a.failure) }
            case .activityTaskTimedOut(let a) where a.scheduledEventID == creationEventID:
                if state != .completed { state = .failed(a.failure) }
            case .activityTaskCanceled(let a) where a.scheduledEventID == creationEventID:
                if state != .completed { state = .failed(.application("session \(sessionID) was canceled", type: "SessionCanceled")) }
            case .activityTaskCompleted(let a) where a.scheduledEventID == creationEventID:
                if case .failed = state { continue }
                state = .completed
            default:
                continue
            }
        }
        return state
    }

    /// The command that creates session `sessionID`: its creation activity, on the creation
    /// queue of `taskQueue` (the run's own task queue when nil), taken by a worker with
    /// sessions enabled and a free slot.
    /// - Parameters:
    ///   - heartbeatTimeout: how long after its last heartbeat a session's worker is taken for
    ///     dead and the session fails (the Go SDK's `SessionOptions.HeartbeatTimeout`, 20 s).
    ///   - creationTimeout: how long the session may wait for a worker (schedule-to-start);
    ///     nil: no limit.
    ///   - executionTimeout: how long the session may last (start-to-close).
    /// - Throws: ``SpoolError/Code/invalidArgument`` when `sessionID` is empty or a session of
    ///   that id was already created in this run.
    public func createSession(_ sessionID: String, taskQueue: String? = nil, heartbeatTimeout: Duration = .seconds(20),
                              creationTimeout: Duration? = nil,
                              executionTimeout: Duration = .seconds(86_400)) throws(SpoolError) -> Command {
        guard !sessionID.isEmpty else { throw SpoolError(.invalidArgument, "a session id must not be empty") }
        guard session(sessionID) == .none else {
            throw SpoolError(.invalidArgument, "session '\(sessionID)' was already created in this run")
        }
        let queue = taskQueue ?? started?.taskQueue ?? ""
        return .scheduleActivityTask(.init(activityID: Session.creationActivityID(sessionID), activityType: Session.creationActivityType,
                                           taskQueue: Session.creationTaskQueue(queue), input: .binary(sessionID),
                                           scheduleToStartTimeout: creationTimeout, startToCloseTimeout: executionTimeout,
                                           heartbeatTimeout: heartbeatTimeout, retryPolicy: RetryPolicy(maximumAttempts: 1)))
    }

    /// `attributes` as a command scheduling the activity on session `sessionID`'s worker.
    /// - Throws: ``SpoolError/Code/invalidArgument`` naming the state when the session is not open (never created, still pending, failed,
    ///   completed): the Go SDK's `ErrSessionFailed`.
    public func scheduleActivity(inSession sessionID: String,
                                 _ attributes: ScheduleActivityTaskCommandAttributes) throws(SpoolError) -> Command {
        guard case .open(let queue, _) = session(sessionID) else {
            throw SpoolError(.invalidArgument, "session '\(sessionID)' is not open: \(session(sessionID))")
        }
        var attributes = attributes
        attributes.taskQueue = queue
        return .scheduleActivityTask(attributes)
    }

    /// The commands that complete session `sessionID`: its completion activity on the
    /// session's worker, which then completes the creation activity and frees the slot. None
    /// when the session is not open (a failed session needs no completion).
    public func completeSession(_ sessionID: String) -> [Command] {
        guard case .open(let queue, _) = session(sessionID) else { return [] }
        return [.scheduleActivityTask(.init(activityID: Session.completionActivityID(sessionID), activityType: Session.completionActivityType,
                                            taskQueue: queue, input: .binary(sessionID),
                                            scheduleToCloseTimeout: .seconds(60), retryPolicy: RetryPolicy(maximumAttempts: 1)))]
    }
}

/// The worker's side: the creation queue's poll loop, holding a session, completing it.
extension SpoolWorker {
    /// Polls the creation queue, one creation activity per free session slot.
    func pollSessionCreations(_ options: SessionWorkerOptions) async {
        let queue = Session.creationTaskQueue(taskQueue)
        while !isStopping {
            await sessionSlots.acquire()
            if isStopping {
                sessionSlots.release()
                break
            }
            let polled: ActivityTask?
            do {
                polled = try await engine.pollActivityTaskQueue(namespace: namespace, taskQueue: queue, identity: identity, timeout: .seconds(30))
            } catch {
                sessionSlots.release()
                guard await shouldPollAgain(after: error) else { break }
                continue
            }
            guard let task = polled else {
                sessionSlots.release()
                continue
            }
            Task {
                await self.holdSession(task, options)
                self.sessionSlots.release()
            }
        }
    }

    static func sessionKey(_ runID: String, _ sessionID: String) -> String { runID + "/" + sessionID }

    /// Holds a session until the workflow completes it, heartbeating its creation activity;
    /// fails it when the worker stops, returns without a word when the worker is killed.
    func holdSession(_ task: ActivityTask, _ options: SessionWorkerOptions) async {
        let token = task.taskToken
        guard let sessionTaskQueue, let sessionID = task.input?.first.map({ String(decoding: $0.data, as: UTF8.self) }) else { return }
        let key = Self.sessionKey(task.workflowExecution.runID, sessionID)
        openSessions.withLock { $0[key] = false }
        defer { openSessions.withLock { $0[key] = nil } }
        do {
            try await engine.signalWorkflowExecution(namespace: task.workflowNamespace, execution: task.workflowExecution,
                                                     signalName: Session.createdSignalName,
                                                     input: [.binary(Array(sessionID.utf8)), .binary(Array(sessionTaskQueue.utf8)),
                                                             .binary(Array(identity.utf8))],
                                                     identity: identity)
            let interval = options.heartbeatInterval ?? (task.heartbeatTimeout.map { $0 / 3 } ?? .seconds(1))
            let clock = ContinuousClock()
            var lastHeartbeat = clock.now
            while true {
                if isKilled { return }
                if openSessions.withLock({ $0[key] }) == true {
                    try await engine.respondActivityTaskCompleted(taskToken: token, result: nil, identity: identity)
                    return
                }
                if isStopping {
                    try await engine.respondActivityTaskFailed(
                        taskToken: token,
                        failure: .application("worker '\(identity)' stopped with session '\(sessionID)' open", type: "SessionWorkerStopped",
                                              source: SpoolWorker.failureSource),
                        identity: identity)
                    return
                }
                if clock.now - lastHeartbeat >= interval {
                    lastHeartbeat = clock.now
                    if try await engine.recordActivityTaskHeartbeat(taskToken: token, identity: identity).cancelRequested {
                        try await engine.respondActivityTaskCanceled(taskToken: token, identity: identity)
                        return
                    }
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
        } catch {
            logger.info("a session ended without an answer", metadata: ["session": "\(sessionID)", "error": "\(error)"])
        }
    }

    /// The completion activity: marks the session completed (its holder then completes the
    /// creation activity) and completes.
    func completeSession(_ task: ActivityTask) async throws(SpoolError) {
        if let sessionID = task.input?.first.map({ String(decoding: $0.data, as: UTF8.self) }) {
            let key = Self.sessionKey(task.workflowExecution.runID, sessionID)
            openSessions.withLock { if $0[key] != nil { $0[key] = true } }
        }
        try await engine.respondActivityTaskCompleted(taskToken: task.taskToken, result: nil, identity: identity)
    }
}
