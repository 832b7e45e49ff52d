import SpoolMatching

/// What a workflow task's completion does with the worker's protocol messages, as Temporal's
/// `RespondWorkflowTaskCompleted` handler: messages named by ``Command/protocolMessage(_:)``
/// commands are processed at the command's place; the rest after the commands, in order; an
/// update sent with the task that no message answers is rejected for the worker
/// (``Failure/unprocessedUpdate``). An acceptance writes WorkflowExecutionUpdateAccepted with the
/// request; a response writes WorkflowExecutionUpdateCompleted; a rejection writes nothing.
/// Registry changes are collected as ``UpdateRegistry/Effect``s, applied once the append is durable.
struct UpdateMessageProcessing {
    private let messages: [ProtocolMessage]
    private var processed: Set<Int> = []
    /// Updates sent with this task, by id.
    private let sent: [String: UpdateRequest]
    /// Updates in flight (admitted or accepted earlier) by id: their stage and request.
    private let inFlight: (String) -> (stage: UpdateRegistry.Stage, request: UpdateRequest)?
    /// What the run's history says about an update (read lazily: only a response to an update
    /// accepted by an earlier task, or a resurrected one, needs it).
    private let recorded: (String) throws(SpoolError) -> SpoolEngine.RecordedUpdate
    private var acceptedHere: [String: Int64] = [:]
    private var completedHere: Set<String> = []
    /// The updates a message of this completion accepted, rejected or answered.
    private(set) var answered: Set<String> = []
    private(set) var effects: [UpdateRegistry.Effect] = []

    init(messages: [ProtocolMessage], sent: [String: UpdateRequest],
         inFlight: @escaping (String) -> (stage: UpdateRegistry.Stage, request: UpdateRequest)?,
         recorded: @escaping (String) throws(SpoolError) -> SpoolEngine.RecordedUpdate) {
        self.messages = messages
        self.sent = sent
        self.inFlight = inFlight
        self.recorded = recorded
    }

    /// Whether every message is a rejection (a speculative task that carries only rejections
    /// writes nothing).
    var onlyRejections: Bool {
        messages.allSatisfy { if case .rejection = $0.body { true } else { false } }
    }

    private func isRejection(_ message: ProtocolMessage) -> Bool {
        if case .rejection = message.body { return true }
        return false
    }

    /// Processes the message `messageID` names (a ProtocolMessage command); returns why it is
    /// invalid, if it is.
    mutating func process(messageID: String, into transition: inout Transition) throws(SpoolError) -> String? {
        guard let index = messages.firstIndex(where: { $0.id == messageID }) else {
            return "no protocol message has id '\(messageID)'"
        }
        guard !processed.contains(index) else { return "protocol message '\(messageID)' is named by two commands" }
        return try process(index, into: &transition)
    }

    /// Processes the messages no command named, in order, then rejects the updates sent with
    /// this task that no message answered. Returns why a message is invalid, if one is.
    mutating func finish(into transition: inout Transition) throws(SpoolError) -> String? {
        for index in messages.indices where !processed.contains(index) {
            if let problem = try process(index, into: &transition) { return problem }
        }
        for updateID in sent.keys.sorted() where !answered.contains(updateID) {
            effects.append(.completed(updateID: updateID, outcome: .failure(.unprocessedUpdate)))
        }
        return nil
    }

    private mutating func process(_ index: Int, into transition: inout Transition) throws(SpoolError) -> String? {
        processed.insert(index)
        let message = messages[index]
        let updateID = message.protocolInstanceID
        guard !updateID.isEmpty else { return "protocol message '\(message.id)' names no protocol instance (update id)" }
        if !transition.state.isRunning, !isRejection(message) {
            return "protocol message '\(message.id)' comes after the command that closed the workflow"
        }
        switch message.body {
        case .request:
            return "protocol message '\(message.id)' is a request; a worker answers with acceptances, rejections and responses"
        case .acceptance(let acceptance):
            guard acceptedHere[updateID] == nil, !answered.contains(updateID) else {
                return "update '\(updateID)' is accepted or rejected twice"
            }
            let request: UpdateRequest
            if let known = sent[updateID] {
                request = known
            } else if let entry = inFlight(updateID) {
                guard entry.stage.lifecycleStage < .accepted else { return "update '\(updateID)' was already accepted" }
                request = entry.request
            } else if case .none = try recorded(updateID), let resurrected = acceptance.acceptedRequest {
                // Temporal's resurrection: the engine lost the update (a restart) but the worker
                // sends the request back with its acceptance.
                request = resurrected
            } else {
                return "update '\(updateID)' is not waiting for acceptance"
            }
            let eventID = try transition.add(.workflowExecutionUpdateAccepted(.init(
                protocolInstanceID: updateID, acceptedRequestMessageID: UpdateRegistry.requestMessageID(updateID),
                acceptedRequestSequencingEventID: acceptance.acceptedRequestSequencingEventID, acceptedRequest: request)))
            acceptedHere[updateID] = eventID
            answered.insert(updateID)
            effects.append(.accepted(updateID: updateID, eventID: eventID, request: request))
        case .rejection(let rejection):
            guard acceptedHere[updateID] == nil, !answered.contains(updateID) else {
                return "update '\(updateID)' is accepted or rejected twice"
            }
            if sent[updateID] == nil, let entry = inFlight(updateID), entry.stage.lifecycleStage >= .accepted {
                return "update '\(updateID)' was already accepted; it cannot be rejected"
            }
            answered.insert(updateID)
            effects.append(.completed(updateID: updateID, outcome: .failure(rejection.failure)))
        case .response(let response):
            guard response.meta.updateID.isEmpty || response.meta.updateID == updateID else {
                return "the response in protocol message '\(message.id)' names update '\(response.meta.updateID)', not '\(updateID)'"
            }
            guard !completedHere.contains(updateID) else { return "update '\(updateID)' is answered twice" }
            let acceptedEventID: Int64
            if let id = acceptedHere[updateID] {
                acceptedEventID = id
            } else if let entry = inFlight(updateID), case .accepted(let id) = entry.stage {
                acceptedEventID = id
            } else if case .accepted(let id, _) = try recorded(updateID) {
                acceptedEventID = id
            } else {
                return "update '\(updateID)' is not accepted (or already completed); only an accepted update takes a response"
            }
            completedHere.insert(updateID)
            var meta = response.meta
            meta.updateID = updateID
            try transition.add(.workflowExecutionUpdateCompleted(.init(meta: meta, acceptedEventID: acceptedEventID,
                                                                       outcome: response.outcome)))
            answered.insert(updateID)
            effects.append(.completed(updateID: updateID, outcome: response.outcome))
        }
        return nil
    }
}
