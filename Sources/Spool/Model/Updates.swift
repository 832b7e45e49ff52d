/// Workflow updates (Temporal's `temporal.api.update.v1` and `temporal.api.protocol.v1`): a client
/// asks a running workflow to change and waits for its answer. The request reaches the worker as
/// a protocol message on a workflow task; the worker answers with messages in its completion.
/// Only an accepted update is written to history (WorkflowExecutionUpdateAccepted, then
/// …Completed); a rejected one leaves no trace.

/// Who asks for an update (Temporal's `temporal.api.update.v1.Meta`).
public struct UpdateMeta: Hashable, Sendable {
    /// The caller's id for the update: one update per id and run (a second request with the same
    /// id attaches to the first).
    public var updateID: String
    /// The caller's identity.
    public var identity: String
    /// An update's meta.
    public init(updateID: String, identity: String = "") {
        self.updateID = updateID
        self.identity = identity
    }
}

/// What an update asks (Temporal's `temporal.api.update.v1.Input`).
public struct UpdateInput: Hashable, Sendable {
    /// Context for the handler (tracing, auth).
    public var header: Header
    /// The update handler's name.
    public var name: String
    /// Its arguments.
    public var args: Payloads?
    /// An update's input.
    public init(name: String, args: Payloads? = nil, header: Header = Header()) {
        self.header = header
        self.name = name
        self.args = args
    }
}

/// An update request (Temporal's `temporal.api.update.v1.Request`): the body of the message that
/// carries it to the worker, and what WorkflowExecutionUpdateAccepted records.
public struct UpdateRequest: Hashable, Sendable {
    /// Its id and caller.
    public var meta: UpdateMeta
    /// Its handler and arguments.
    public var input: UpdateInput
    /// An update request.
    public init(meta: UpdateMeta, input: UpdateInput) {
        self.meta = meta
        self.input = input
    }
}

/// How an update ended (Temporal's `temporal.api.update.v1.Outcome`): the handler's result, or a
/// failure (the handler failed, the workflow rejected the update, or the run closed first).
public enum UpdateOutcome: Hashable, Sendable {
    /// The handler returned this result.
    case success(Payloads?)
    /// The update failed or was rejected.
    case failure(Failure)
}

/// The worker accepts an update (Temporal's `temporal.api.update.v1.Acceptance`): its validator
/// passed; the handler runs.
public struct UpdateAcceptance: Hashable, Sendable {
    /// The id of the request message accepted.
    public var acceptedRequestMessageID: String
    /// The sequencing event id of that request message.
    public var acceptedRequestSequencingEventID: Int64
    /// The request itself, as SDKs send it back (lets the engine accept an update it no longer
    /// holds in memory, after a restart).
    public var acceptedRequest: UpdateRequest?
    /// An acceptance.
    public init(acceptedRequestMessageID: String, acceptedRequestSequencingEventID: Int64, acceptedRequest: UpdateRequest? = nil) {
        self.acceptedRequestMessageID = acceptedRequestMessageID
        self.acceptedRequestSequencingEventID = acceptedRequestSequencingEventID
        self.acceptedRequest = acceptedRequest
    }
}

/// The worker rejects an update (Temporal's `temporal.api.update.v1.Rejection`): nothing is written.
public struct UpdateRejection: Hashable, Sendable {
    /// The id of the request message rejected.
    public var rejectedRequestMessageID: String
    /// The sequencing event id of that request message.
    public var rejectedRequestSequencingEventID: Int64
    /// The request itself, as SDKs send it back.
    public var rejectedRequest: UpdateRequest?
    /// Why (the validator's failure): the caller's outcome.
    public var failure: Failure
    /// A rejection.
    public init(rejectedRequestMessageID: String, rejectedRequestSequencingEventID: Int64, rejectedRequest: UpdateRequest? = nil,
                failure: Failure) {
        self.rejectedRequestMessageID = rejectedRequestMessageID
        self.rejectedRequestSequencingEventID = rejectedRequestSequencingEventID
        self.rejectedRequest = rejectedRequest
        self.failure = failure
    }
}

/// The worker's answer to an accepted update (Temporal's `temporal.api.update.v1.Response`).
public struct UpdateResponse: Hashable, Sendable {
    /// The update answered.
    public var meta: UpdateMeta
    /// The handler's result or failure.
    public var outcome: UpdateOutcome
    /// A response.
    public init(meta: UpdateMeta, outcome: UpdateOutcome) {
        self.meta = meta
        self.outcome = outcome
    }
}

/// A protocol message between the engine and a worker (Temporal's `temporal.api.protocol.v1.Message`):
/// update requests go to the worker with a workflow task; acceptances, rejections and responses
/// come back in its completion, ordered among the commands by ``Command/protocolMessage(_:)``.
public struct ProtocolMessage: Hashable, Sendable {
    /// What the message carries (Temporal's `body`, an `Any` of these types).
    public enum Body: Hashable, Sendable {
        /// An update request (engine → worker).
        case request(UpdateRequest)
        /// The worker accepts the update.
        case acceptance(UpdateAcceptance)
        /// The worker rejects the update.
        case rejection(UpdateRejection)
        /// The worker's answer to an accepted update.
        case response(UpdateResponse)
    }

    /// The message's id (a request's is `"<update id>/request"`).
    public var id: String
    /// The protocol instance: the update's id.
    public var protocolInstanceID: String
    /// The event the message is sequenced after (Temporal's `sequencing_id.event_id`): for a
    /// request, the event before the task's WorkflowTaskStarted. 0 when not set.
    public var eventID: Int64
    /// The message's content.
    public var body: Body

    /// A protocol message.
    public init(id: String, protocolInstanceID: String, eventID: Int64 = 0, body: Body) {
        self.id = id
        self.protocolInstanceID = protocolInstanceID
        self.eventID = eventID
        self.body = body
    }
}

/// The fields of ``Command/protocolMessage(_:)`` (Temporal's `ProtocolMessageCommandAttributes`).
public struct ProtocolMessageCommandAttributes: Hashable, Sendable {
    /// The id of a message of the same completion, processed at this command's place.
    public var messageID: String
    /// The fields of a `ProtocolMessage` command.
    public init(messageID: String) { self.messageID = messageID }
}

/// How far an update has come (Temporal's `UpdateWorkflowExecutionLifecycleStage`, same numbers).
public enum UpdateWorkflowExecutionLifecycleStage: UInt8, Hashable, Sendable, Comparable, CaseIterable {
    /// Not set.
    case unspecified = 0
    /// The engine holds the request (in memory only: lost on a restart; the caller retries).
    case admitted = 1
    /// The workflow accepted the update: WorkflowExecutionUpdateAccepted is in history.
    case accepted = 2
    /// The update has an outcome: completed (WorkflowExecutionUpdateCompleted), or rejected.
    case completed = 3

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// Names an update: the run and the update id (Temporal's `temporal.api.update.v1.UpdateRef`).
public struct UpdateRef: Hashable, Sendable {
    /// The run.
    public var workflowExecution: WorkflowExecution
    /// The update id.
    public var updateID: String
    /// An update reference.
    public init(workflowExecution: WorkflowExecution, updateID: String) {
        self.workflowExecution = workflowExecution
        self.updateID = updateID
    }
}

/// What ``SpoolEngine/updateWorkflowExecution(namespace:workflowID:runID:updateID:name:input:header:identity:waitFor:firstExecutionRunID:timeout:)``
/// and ``SpoolEngine/pollWorkflowExecutionUpdate(namespace:updateRef:waitFor:timeout:)`` return
/// (Temporal's `UpdateWorkflowExecutionResponse` / `PollWorkflowExecutionUpdateResponse`).
public struct UpdateWorkflowExecutionResponse: Hashable, Sendable {
    /// The update, with the run it went to.
    public var updateRef: UpdateRef
    /// Its outcome once ``stage`` is ``UpdateWorkflowExecutionLifecycleStage/completed``; nil before.
    public var outcome: UpdateOutcome?
    /// The stage reached: at least the one waited for, or less when the wait timed out (then ask
    /// again: update again while admitted, poll once accepted).
    public var stage: UpdateWorkflowExecutionLifecycleStage
}

/// The fields of a WorkflowExecutionUpdateAccepted event (Temporal's
/// `WorkflowExecutionUpdateAcceptedEventAttributes`): the workflow accepted an update; its
/// request is recorded here (the first event that holds it).
public struct WorkflowExecutionUpdateAcceptedEventAttributes: Hashable, Sendable {
    /// The update's id.
    public var protocolInstanceID: String
    /// The id of the request message the worker accepted (`"<update id>/request"`).
    public var acceptedRequestMessageID: String
    /// The sequencing event id of that request message, as the worker's acceptance names it.
    public var acceptedRequestSequencingEventID: Int64
    /// The request.
    public var acceptedRequest: UpdateRequest
    /// The fields of a WorkflowExecutionUpdateAccepted event.
    public init(protocolInstanceID: String, acceptedRequestMessageID: String, acceptedRequestSequencingEventID: Int64,
                acceptedRequest: UpdateRequest) {
        self.protocolInstanceID = protocolInstanceID
        self.acceptedRequestMessageID = acceptedRequestMessageID
        self.acceptedRequestSequencingEventID = acceptedRequestSequencingEventID
        self.acceptedRequest = acceptedRequest
    }
}

/// The fields of a WorkflowExecutionUpdateCompleted event (Temporal's
/// `WorkflowExecutionUpdateCompletedEventAttributes`): the outcome of an accepted update.
public struct WorkflowExecutionUpdateCompletedEventAttributes: Hashable, Sendable {
    /// The update's id and caller.
    public var meta: UpdateMeta
    /// Its WorkflowExecutionUpdateAccepted event.
    public var acceptedEventID: Int64
    /// The handler's result or failure.
    public var outcome: UpdateOutcome
    /// The fields of a WorkflowExecutionUpdateCompleted event.
    public init(meta: UpdateMeta, acceptedEventID: Int64, outcome: UpdateOutcome) {
        self.meta = meta
        self.acceptedEventID = acceptedEventID
        self.outcome = outcome
    }
}

extension Failure {
    /// The failure an accepted update gets when its run closes before the workflow answers it
    /// (Temporal's `acceptedUpdateCompletedWorkflowFailure`).
    public static let acceptedUpdateCompletedWorkflow = Failure.application(
        "Workflow Update failed because the Workflow completed before the Update completed.",
        type: "AcceptedUpdateCompletedWorkflow", nonRetryable: true, source: Failure.serverSource)

    /// The rejection the engine makes for an update its worker received but did not answer
    /// (Temporal's `unprocessedUpdateFailure`: a worker that does not know updates).
    public static let unprocessedUpdate = Failure.application(
        "Workflow Update is rejected because it wasn't processed by worker. Probably, Workflow Update is not supported by the worker.",
        type: "UnprocessedUpdate", nonRetryable: true, source: Failure.serverSource)
}
