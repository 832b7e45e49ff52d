// Translation between Temporal's protocol messages and the engine's own types. Only shapes are
// converted here: what an event, a command or a task means is decided by the engine.

import FoundationEssentials
import Spool
import SpoolServerProtos
import SwiftProtobuf

typealias ProtoPayloads = Temporal_Api_Common_V1_Payloads
typealias ProtoFailure = Temporal_Api_Failure_V1_Failure
typealias ProtoTaskQueue = Temporal_Api_Taskqueue_V1_TaskQueue
typealias ProtoExecution = Temporal_Api_Common_V1_WorkflowExecution
typealias ProtoRetryPolicy = Temporal_Api_Common_V1_RetryPolicy
typealias ProtoHistoryEvent = Temporal_Api_History_V1_HistoryEvent
typealias ProtoCommand = Temporal_Api_Command_V1_Command

/// A request field the engine cannot take, or a malformed one.
struct TranslationError: Error {
    var message: String
}

// MARK: - Scalars

extension Timestamp {
    var proto: Google_Protobuf_Timestamp {
        let (seconds, nanos) = nanosecondsSinceEpoch.quotientAndRemainder(dividingBy: 1_000_000_000)
        return nanos < 0
            ? Google_Protobuf_Timestamp(seconds: seconds - 1, nanos: Int32(nanos + 1_000_000_000))
            : Google_Protobuf_Timestamp(seconds: seconds, nanos: Int32(nanos))
    }
}

extension Duration {
    var proto: Google_Protobuf_Duration {
        let (seconds, attoseconds) = components
        return Google_Protobuf_Duration(seconds: seconds, nanos: Int32(attoseconds / 1_000_000_000))
    }
}

extension Google_Protobuf_Duration {
    var swift: Duration { .seconds(seconds) + .nanoseconds(Int64(nanos)) }
}

/// A duration field: nil when unset or zero (Temporal's "not set" for timeouts).
func duration(_ value: Google_Protobuf_Duration, isSet: Bool) -> Duration? {
    guard isSet, value.seconds != 0 || value.nanos != 0 else { return nil }
    return value.swift
}

/// An empty namespace means the default one, as in Temporal.
func namespace(_ name: String) -> String { name.isEmpty ? defaultNamespace : name }

func taskQueue(_ name: String, kind: Temporal_Api_Enums_V1_TaskQueueKind = .normal) -> ProtoTaskQueue {
    var queue = ProtoTaskQueue()
    queue.name = name
    queue.kind = kind
    return queue
}

extension WorkflowExecution {
    init(_ proto: ProtoExecution) { self.init(workflowID: proto.workflowID, runID: proto.runID) }

    var proto: ProtoExecution {
        var execution = ProtoExecution()
        execution.workflowID = workflowID
        execution.runID = runID
        return execution
    }
}

func protoWorkflowType(_ name: String) -> Temporal_Api_Common_V1_WorkflowType {
    var type = Temporal_Api_Common_V1_WorkflowType()
    type.name = name
    return type
}

func protoActivityType(_ name: String) -> Temporal_Api_Common_V1_ActivityType {
    var type = Temporal_Api_Common_V1_ActivityType()
    type.name = name
    return type
}

// MARK: - Payloads, headers, user metadata

// Field by field: the engine keeps payload metadata, so what a client sends comes back byte for
// byte, and in-process workers and remote ones see the same payloads.

extension Payload {
    init(_ proto: Temporal_Api_Common_V1_Payload) {
        // Empty metadata (rare: SDKs always write an encoding) makes no dictionary.
        self.init(metadata: proto.metadata.isEmpty ? [:] : proto.metadata.mapValues { [UInt8]($0) }, data: [UInt8](proto.data))
    }

    var proto: Temporal_Api_Common_V1_Payload {
        var payload = Temporal_Api_Common_V1_Payload()
        if !metadata.isEmpty { payload.metadata = metadata.mapValues { Data($0) } }
        payload.data = Data(data)
        return payload
    }
}

/// The engine's payloads for a Payloads field; nil when the field is unset.
func payloads(_ proto: ProtoPayloads, isSet: Bool) -> Payloads? {
    guard isSet else { return nil }
    return proto.payloads.map(Payload.init)
}

/// The Payloads message for the engine's payloads.
func protoPayloads(_ payloads: Payloads) -> ProtoPayloads {
    var message = ProtoPayloads()
    message.payloads = payloads.map(\.proto)
    return message
}

extension Header {
    init(_ proto: Temporal_Api_Common_V1_Header) {
        self.init(fields: proto.fields.isEmpty ? [:] : proto.fields.mapValues(Payload.init))
    }

    var proto: Temporal_Api_Common_V1_Header {
        var header = Temporal_Api_Common_V1_Header()
        if !fields.isEmpty { header.fields = fields.mapValues(\.proto) }
        return header
    }
}

extension UserMetadata {
    /// The engine's user metadata; nil when the field is unset.
    init?(_ proto: Temporal_Api_Sdk_V1_UserMetadata, isSet: Bool) {
        guard isSet else { return nil }
        self.init(summary: proto.hasSummary ? Payload(proto.summary) : nil, details: proto.hasDetails ? Payload(proto.details) : nil)
    }

    var proto: Temporal_Api_Sdk_V1_UserMetadata {
        var metadata = Temporal_Api_Sdk_V1_UserMetadata()
        if let summary { metadata.summary = summary.proto }
        if let details { metadata.details = details.proto }
        return metadata
    }
}

extension WorkerVersionStamp {
    /// The engine's stamp; nil when the field is unset.
    init?(_ proto: Temporal_Api_Common_V1_WorkerVersionStamp, isSet: Bool) {
        guard isSet else { return nil }
        self.init(buildID: proto.buildID, useVersioning: proto.useVersioning)
    }

    var proto: Temporal_Api_Common_V1_WorkerVersionStamp {
        var stamp = Temporal_Api_Common_V1_WorkerVersionStamp()
        stamp.buildID = buildID
        stamp.useVersioning = useVersioning
        return stamp
    }
}

extension WorkflowTaskCompletedMetadata {
    init(_ proto: Temporal_Api_Sdk_V1_WorkflowTaskCompletedMetadata) {
        self.init(coreUsedFlags: proto.coreUsedFlags, langUsedFlags: proto.langUsedFlags, sdkName: proto.sdkName,
                  sdkVersion: proto.sdkVersion)
    }

    var proto: Temporal_Api_Sdk_V1_WorkflowTaskCompletedMetadata {
        var metadata = Temporal_Api_Sdk_V1_WorkflowTaskCompletedMetadata()
        metadata.coreUsedFlags = coreUsedFlags
        metadata.langUsedFlags = langUsedFlags
        metadata.sdkName = sdkName
        metadata.sdkVersion = sdkVersion
        return metadata
    }
}

// MARK: - Enums (the engine uses Temporal's numbers)

extension WorkflowExecutionStatus {
    var proto: Temporal_Api_Enums_V1_WorkflowExecutionStatus {
        Temporal_Api_Enums_V1_WorkflowExecutionStatus(rawValue: Int(rawValue)) ?? .unspecified
    }
}

extension RetryState {
    var proto: Temporal_Api_Enums_V1_RetryState { Temporal_Api_Enums_V1_RetryState(rawValue: Int(rawValue)) ?? .unspecified }
}

extension TimeoutType {
    var proto: Temporal_Api_Enums_V1_TimeoutType { Temporal_Api_Enums_V1_TimeoutType(rawValue: Int(rawValue)) ?? .unspecified }
}

extension WorkflowTaskFailedCause {
    var proto: Temporal_Api_Enums_V1_WorkflowTaskFailedCause {
        Temporal_Api_Enums_V1_WorkflowTaskFailedCause(rawValue: temporalValue) ?? .unspecified
    }
}

// MARK: - Memo and search attributes (payloads by key, kept as sent)

/// The engine's fields of a Memo, SearchAttributes or Header map.
func payloadFields(_ fields: [String: Temporal_Api_Common_V1_Payload]) -> [String: Payload] {
    fields.isEmpty ? [:] : fields.mapValues(Payload.init)
}

func protoMemo(_ fields: [String: Payload]) -> Temporal_Api_Common_V1_Memo {
    var memo = Temporal_Api_Common_V1_Memo()
    if !fields.isEmpty { memo.fields = fields.mapValues(\.proto) }
    return memo
}

/// Search attributes as the engine stores them: the payloads the client or worker sent, with
/// their `type` metadata.
func protoSearchAttributes(_ fields: [String: Payload]) -> Temporal_Api_Common_V1_SearchAttributes {
    var attributes = Temporal_Api_Common_V1_SearchAttributes()
    if !fields.isEmpty { attributes.indexedFields = fields.mapValues(\.proto) }
    return attributes
}

extension ContinueAsNewInitiator {
    init(_ proto: Temporal_Api_Enums_V1_ContinueAsNewInitiator) {
        self = ContinueAsNewInitiator(rawValue: UInt8(clamping: proto.rawValue)) ?? .unspecified
    }

    var proto: Temporal_Api_Enums_V1_ContinueAsNewInitiator {
        Temporal_Api_Enums_V1_ContinueAsNewInitiator(rawValue: Int(rawValue)) ?? .unspecified
    }
}

// MARK: - Priority

extension Priority {
    /// Temporal's priority; zero fields stay unset.
    init(_ proto: Temporal_Api_Common_V1_Priority) {
        self.init(priorityKey: Int(proto.priorityKey), fairnessKey: proto.fairnessKey, fairnessWeight: proto.fairnessWeight)
    }

    var proto: Temporal_Api_Common_V1_Priority {
        var p = Temporal_Api_Common_V1_Priority()
        p.priorityKey = Int32(clamping: priorityKey)
        p.fairnessKey = fairnessKey
        p.fairnessWeight = fairnessWeight
        return p
    }
}
