import GRPCCore
import GRPCProtobuf
import Spool
import SpoolServerProtos
import SwiftProtobuf

typealias ProtoUpdateRequest = Temporal_Api_Update_V1_Request
typealias ProtoOutcome = Temporal_Api_Update_V1_Outcome
typealias ProtoStage = Temporal_Api_Enums_V1_UpdateWorkflowExecutionLifecycleStage

extension WorkflowService {
    /// How long an update call waits for the stage it asked for before it answers with the stage
    /// reached (the SDKs then ask again), as Temporal's frontend long-polls updates.
    static let updateWait = Duration.seconds(20)

    func updateWorkflowExecution(request: Temporal_Api_Workflowservice_V1_UpdateWorkflowExecutionRequest,
                                 context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_UpdateWorkflowExecutionResponse {
        let ns = namespace(request.namespace)
        let update = request.request
        guard !request.workflowExecution.workflowID.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "workflow_execution.workflow_id is empty")
        }
        guard !update.input.name.isEmpty else { throw RPCError(code: .invalidArgument, message: "request.input.name is empty") }
        let engine = self.engine
        let response = try await engineCall { () async throws(SpoolError) in
            try await engine.updateWorkflowExecution(
                namespace: ns, workflowID: request.workflowExecution.workflowID, runID: request.workflowExecution.runID,
                updateID: update.meta.updateID, name: update.input.name,
                input: payloads(update.input.args, isSet: update.input.hasArgs), header: Header(update.input.header),
                identity: update.meta.identity, waitFor: UpdateWorkflowExecutionLifecycleStage(request.waitPolicy.lifecycleStage, default: .accepted),
                firstExecutionRunID: request.firstExecutionRunID, timeout: Self.updateWait)
        }
        return response.proto
    }

    func pollWorkflowExecutionUpdate(request: Temporal_Api_Workflowservice_V1_PollWorkflowExecutionUpdateRequest,
                                     context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_PollWorkflowExecutionUpdateResponse {
        let ns = namespace(request.namespace)
        guard !request.updateRef.updateID.isEmpty else { throw RPCError(code: .invalidArgument, message: "update_ref.update_id is empty") }
        let engine = self.engine
        let ref = UpdateRef(workflowExecution: WorkflowExecution(request.updateRef.workflowExecution), updateID: request.updateRef.updateID)
        let stage = UpdateWorkflowExecutionLifecycleStage(request.waitPolicy.lifecycleStage, default: .completed)
        let response = try await engineCall { () async throws(SpoolError) in
            try await engine.pollWorkflowExecutionUpdate(namespace: ns, updateRef: ref, waitFor: stage,
                                                         timeout: Self.updateWait)
        }
        var proto = Temporal_Api_Workflowservice_V1_PollWorkflowExecutionUpdateResponse()
        let full = response.proto
        if full.hasOutcome { proto.outcome = full.outcome }
        proto.stage = full.stage
        proto.updateRef = full.updateRef
        return proto
    }

    /// Update-with-start: exactly a start and an update, as the SDKs send it.
    func executeMultiOperation(request: Temporal_Api_Workflowservice_V1_ExecuteMultiOperationRequest,
                               context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_ExecuteMultiOperationResponse {
        guard request.operations.count == 2, case .startWorkflow(let startProto)? = request.operations[0].operation,
              case .updateWorkflow(let updateProto)? = request.operations[1].operation else {
            throw RPCError(code: .invalidArgument, message: "operations must be a start_workflow and then an update_workflow")
        }
        // Update-with-start's conflict policy is the start's (USE_EXISTING updates an open run).
        let start = startRequest(startProto, conflictPolicy: WorkflowIDConflictPolicy(rawValue: UInt8(clamping: startProto.workflowIDConflictPolicy.rawValue)) ?? .fail,
                                 requestEagerExecution: startProto.requestEagerExecution)
        let update = updateProto.request
        let engine = self.engine
        let answer: (start: StartWorkflowExecutionResponse, update: UpdateWorkflowExecutionResponse)
        do {
            answer = try await engine.updateWithStartWorkflowExecution(
                start, updateID: update.meta.updateID, name: update.input.name,
                input: payloads(update.input.args, isSet: update.input.hasArgs), header: Header(update.input.header),
                identity: update.meta.identity, waitFor: UpdateWorkflowExecutionLifecycleStage(updateProto.waitPolicy.lifecycleStage, default: .accepted),
                timeout: Self.updateWait)
        } catch {
            throw multiOperationFailure(error)
        }
        var startResponse = Temporal_Api_Workflowservice_V1_StartWorkflowExecutionResponse()
        startResponse.runID = answer.start.runID
        startResponse.started = answer.start.started
        var response = Temporal_Api_Workflowservice_V1_ExecuteMultiOperationResponse()
        var first = Temporal_Api_Workflowservice_V1_ExecuteMultiOperationResponse.Response()
        first.startWorkflow = startResponse
        var second = Temporal_Api_Workflowservice_V1_ExecuteMultiOperationResponse.Response()
        second.updateWorkflow = answer.update.proto
        response.responses = [first, second]
        return response
    }
}

/// Temporal's error for a failed multi-operation: the status of the operation that failed (the
/// start when the engine refused the start, else the update) and ABORTED for the other, in
/// MultiOperationExecutionFailure details, which the SDKs unpack into their typed errors.
func multiOperationFailure(_ error: SpoolError) -> GoogleRPCStatus {
    let status = error.rpcError
    let startFailed = error.code == .workflowExecutionAlreadyStarted || error.code == .invalidArgument
    var failed = Temporal_Api_Errordetails_V1_MultiOperationExecutionFailure.OperationStatus()
    failed.code = Int32(status.code.rawValue)
    failed.message = status.message
    failed.details = status.details.compactMap(\.any)
    var aborted = Temporal_Api_Errordetails_V1_MultiOperationExecutionFailure.OperationStatus()
    aborted.code = Int32(RPCError.Code.aborted.rawValue)
    aborted.message = "Operation was aborted."
    var details = Temporal_Api_Errordetails_V1_MultiOperationExecutionFailure()
    details.statuses = startFailed ? [failed, aborted] : [aborted, failed]
    return GoogleRPCStatus(code: status.code, message: "Update-with-Start could not be executed.",
                           details: [(try? Google_Protobuf_Any(message: details)).map(ErrorDetails.any)].compactMap { $0 })
}

extension UpdateWorkflowExecutionLifecycleStage {
    /// The stage a request asks for; `fallback` when it names none.
    init(_ proto: ProtoStage, default fallback: UpdateWorkflowExecutionLifecycleStage) {
        let stage = UpdateWorkflowExecutionLifecycleStage(rawValue: UInt8(clamping: proto.rawValue)) ?? .unspecified
        self = stage == .unspecified ? fallback : stage
    }

    var proto: ProtoStage { ProtoStage(rawValue: Int(rawValue)) ?? .unspecified }
}

extension UpdateWorkflowExecutionResponse {
    var proto: Temporal_Api_Workflowservice_V1_UpdateWorkflowExecutionResponse {
        var response = Temporal_Api_Workflowservice_V1_UpdateWorkflowExecutionResponse()
        response.updateRef.workflowExecution = updateRef.workflowExecution.proto
        response.updateRef.updateID = updateRef.updateID
        if let outcome { response.outcome = outcome.proto }
        response.stage = stage.proto
        return response
    }
}

extension UpdateOutcome {
    init(_ proto: ProtoOutcome) {
        switch proto.value {
        case .failure(let failure): self = .failure(Failure(failure))
        case .success(let result): self = .success(payloads(result, isSet: true))
        case nil: self = .success(nil)
        }
    }

    var proto: ProtoOutcome {
        var outcome = ProtoOutcome()
        switch self {
        case .success(let result): outcome.success = protoPayloads(result ?? [])
        case .failure(let failure): outcome.failure = failure.proto
        }
        return outcome
    }
}

extension UpdateRequest {
    init(_ proto: ProtoUpdateRequest) {
        self.init(meta: UpdateMeta(updateID: proto.meta.updateID, identity: proto.meta.identity),
                  input: UpdateInput(name: proto.input.name, args: payloads(proto.input.args, isSet: proto.input.hasArgs),
                                     header: Header(proto.input.header)))
    }

    var proto: ProtoUpdateRequest {
        var request = ProtoUpdateRequest()
        request.meta.updateID = meta.updateID
        request.meta.identity = meta.identity
        request.input.name = input.name
        if let args = input.args { request.input.args = protoPayloads(args) }
        request.input.header = input.header.proto
        return request
    }
}

extension ProtocolMessage {
    /// A worker's message; throws for a body that is not one of the update protocol's.
    init(_ proto: Temporal_Api_Protocol_V1_Message) throws(TranslationError) {
        let any = proto.body
        let body: Body
        do {
            if any.isA(Temporal_Api_Update_V1_Acceptance.self) {
                let a = try Temporal_Api_Update_V1_Acceptance(unpackingAny: any)
                body = .acceptance(UpdateAcceptance(acceptedRequestMessageID: a.acceptedRequestMessageID,
                                                    acceptedRequestSequencingEventID: a.acceptedRequestSequencingEventID,
                                                    acceptedRequest: a.hasAcceptedRequest ? UpdateRequest(a.acceptedRequest) : nil))
            } else if any.isA(Temporal_Api_Update_V1_Rejection.self) {
                let r = try Temporal_Api_Update_V1_Rejection(unpackingAny: any)
                body = .rejection(UpdateRejection(rejectedRequestMessageID: r.rejectedRequestMessageID,
                                                  rejectedRequestSequencingEventID: r.rejectedRequestSequencingEventID,
                                                  rejectedRequest: r.hasRejectedRequest ? UpdateRequest(r.rejectedRequest) : nil,
                                                  failure: Failure(r.failure)))
            } else if any.isA(Temporal_Api_Update_V1_Response.self) {
                let r = try Temporal_Api_Update_V1_Response(unpackingAny: any)
                body = .response(UpdateResponse(meta: UpdateMeta(updateID: r.meta.updateID, identity: r.meta.identity),
                                                outcome: UpdateOutcome(r.outcome)))
            } else if any.isA(ProtoUpdateRequest.self) {
                body = .request(UpdateRequest(try ProtoUpdateRequest(unpackingAny: any)))
            } else {
                throw TranslationError(message: "protocol message \(proto.id) has a body of type \(any.typeURL), not an update message")
            }
        } catch let error as TranslationError {
            throw error
        } catch {
            throw TranslationError(message: "protocol message \(proto.id): its body cannot be decoded: \(error)")
        }
        let eventID: Int64
        if case .eventID(let id)? = proto.sequencingID { eventID = id } else { eventID = 0 }
        self.init(id: proto.id, protocolInstanceID: proto.protocolInstanceID, eventID: eventID, body: body)
    }

    /// The message for a worker (the engine sends requests).
    var proto: Temporal_Api_Protocol_V1_Message {
        var message = Temporal_Api_Protocol_V1_Message()
        message.id = id
        message.protocolInstanceID = protocolInstanceID
        if eventID != 0 { message.eventID = eventID }
        switch body {
        case .request(let request): message.body = (try? Google_Protobuf_Any(message: request.proto)) ?? Google_Protobuf_Any()
        case .acceptance, .rejection, .response:
            // The engine never sends these to a worker.
            break
        }
        return message
    }
}
