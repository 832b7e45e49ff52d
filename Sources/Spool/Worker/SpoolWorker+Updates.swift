/// Update handlers in the in-process worker: a workflow type's handlers answer the update
/// requests that come with its workflow tasks (``WorkflowTask/messages``).
extension SpoolWorker {
    /// Registers the handler of updates named `name` for workflows of type `workflowType`.
    ///
    /// For each request the worker runs `validator` first: if it throws, the update is rejected
    /// (nothing is written; the caller gets the error as a failure). Otherwise the update is
    /// accepted and `handler` runs at once: its result, or its error as a failure, is the update's
    /// outcome; both are written in the same workflow-task completion
    /// (WorkflowExecutionUpdateAccepted, WorkflowExecutionUpdateCompleted), before the workflow
    /// definition's commands. An update with no registered handler is rejected.
    ///
    /// The workflow definition sees completed updates in its history (``WorkflowContext/completedUpdates``).
    /// It is not run for a task that brings only update requests and no new events; when a task
    /// accepts an update (and does not close the run), the worker asks for a new workflow task at
    /// once (`forceCreateNewWorkflowTask`), in which the definition sees the update completed.
    public func registerUpdate(_ workflowType: String, _ name: String, validator: UpdateValidator? = nil,
                               _ handler: @escaping UpdateHandler) {
        registrations.withLock { $0.updates[workflowType, default: [:]][name] = UpdateRegistration(validator: validator, handler: handler) }
    }

    /// The messages and ProtocolMessage commands answering `task`'s update requests.
    @inline(never)
    func answerUpdates(_ task: WorkflowTask, history: [HistoryEvent]) async -> (messages: [ProtocolMessage], commands: [Command]) {
        guard !task.messages.isEmpty else { return ([], []) }
        let handlers = registrations.withLock { $0.updates[task.workflowType] ?? [:] }
        var messages: [ProtocolMessage] = []
        var commands: [Command] = []
        for message in task.messages {
            guard case .request(let request) = message.body else { continue }
            let updateID = message.protocolInstanceID
            let context = UpdateContext(workflowExecution: task.workflowExecution, workflowType: task.workflowType,
                                        history: history, request: request)
            func rejection(_ failure: Failure) -> ProtocolMessage {
                ProtocolMessage(id: updateID + "/reject", protocolInstanceID: updateID, body: .rejection(.init(
                    rejectedRequestMessageID: message.id, rejectedRequestSequencingEventID: message.eventID,
                    rejectedRequest: request, failure: failure)))
            }
            guard let registration = handlers[request.input.name] else {
                let known = handlers.keys.sorted().joined(separator: " ")
                messages.append(rejection(.application("unknown update \(request.input.name). KnownUpdates=[\(known)]",
                                                       type: "UpdateNotRegistered", source: SpoolWorker.failureSource)))
                continue
            }
            if let validator = registration.validator {
                do {
                    try validator(context)
                } catch {
                    messages.append(rejection(Self.failure(error)))
                    continue
                }
            }
            let acceptance = ProtocolMessage(id: updateID + "/accept", protocolInstanceID: updateID, body: .acceptance(.init(
                acceptedRequestMessageID: message.id, acceptedRequestSequencingEventID: message.eventID, acceptedRequest: request)))
            let outcome: UpdateOutcome
            do {
                outcome = .success(try await registration.handler(context))
            } catch {
                outcome = .failure(Self.failure(error))
            }
            let response = ProtocolMessage(id: updateID + "/complete", protocolInstanceID: updateID,
                                           body: .response(.init(meta: request.meta, outcome: outcome)))
            messages += [acceptance, response]
            commands += [.protocolMessage(.init(messageID: acceptance.id)), .protocolMessage(.init(messageID: response.id))]
        }
        return (messages, commands)
    }

    private static func failure(_ error: any Error) -> Failure {
        .application("\(error)", type: String(describing: type(of: error)), source: SpoolWorker.failureSource)
    }

    /// Whether `task` brings the workflow nothing but update requests (a speculative task): its
    /// history after the last completed task holds only this task's Scheduled and Started.
    static func bringsOnlyUpdates(_ task: WorkflowTask, history: [HistoryEvent]) -> Bool {
        guard !task.messages.isEmpty, task.previousStartedEventID > 0 else { return false }
        return history.allSatisfy { event in
            event.eventID <= task.previousStartedEventID || event.eventType == .workflowTaskScheduled
                || event.eventType == .workflowTaskStarted || event.eventType == .workflowTaskCompleted
                || event.eventType == .workflowTaskFailed || event.eventType == .workflowTaskTimedOut
        }
    }
}

/// Checks an update before it is accepted: throwing rejects it (nothing is written).
public typealias UpdateValidator = @Sendable (UpdateContext) throws -> Void

/// Handles an accepted update: the result (or the error, as a failure) is its outcome.
public typealias UpdateHandler = @Sendable (UpdateContext) async throws -> Payloads?

struct UpdateRegistration: Sendable {
    var validator: UpdateValidator?
    var handler: UpdateHandler
}

/// What an update validator and handler are given: the run, its history up to the workflow task
/// that brought the update, and the request.
public struct UpdateContext: Sendable {
    /// The run.
    public var workflowExecution: WorkflowExecution
    /// Its type.
    public var workflowType: String
    /// Its events up to the workflow task that brought the update.
    public var history: [HistoryEvent]
    /// The update: its id, caller, name, arguments and header.
    public var request: UpdateRequest

    /// The update's id.
    public var updateID: String { request.meta.updateID }
    /// The update's arguments.
    public var args: Payloads? { request.input.args }
}

extension WorkflowContext {
    /// The updates completed so far in this run, in order: each one's request and outcome.
    public var completedUpdates: [(request: UpdateRequest, outcome: UpdateOutcome)] {
        var requests: [Int64: UpdateRequest] = [:]
        var completed: [(request: UpdateRequest, outcome: UpdateOutcome)] = []
        for event in history {
            switch event.attributes {
            case .workflowExecutionUpdateAccepted(let a): requests[event.eventID] = a.acceptedRequest
            case .workflowExecutionUpdateCompleted(let a):
                if let request = requests[a.acceptedEventID] { completed.append((request, a.outcome)) }
            default: break
            }
        }
        return completed
    }
}
