// Retry policies and failures, both ways (see Translation.swift).

import FoundationEssentials
import Spool
import SpoolServerProtos
import SwiftProtobuf

extension RetryPolicy {
    init(_ proto: ProtoRetryPolicy) {
        self.init(
            initialInterval: duration(proto.initialInterval, isSet: proto.hasInitialInterval) ?? .seconds(1),
            backoffCoefficient: proto.backoffCoefficient == 0 ? 2.0 : proto.backoffCoefficient,
            maximumInterval: duration(proto.maximumInterval, isSet: proto.hasMaximumInterval),
            maximumAttempts: proto.maximumAttempts,
            nonRetryableErrorTypes: proto.nonRetryableErrorTypes)
    }

    var proto: ProtoRetryPolicy {
        var policy = ProtoRetryPolicy()
        policy.initialInterval = initialInterval.proto
        policy.backoffCoefficient = backoffCoefficient
        policy.maximumInterval = (maximumInterval ?? initialInterval * 100).proto
        policy.maximumAttempts = maximumAttempts
        policy.nonRetryableErrorTypes = nonRetryableErrorTypes
        return policy
    }
}

extension Failure {
    /// The engine's failure for a Temporal failure, field by field, its cause chain included.
    /// Failure kinds the engine does not have yet (child workflow, Nexus, reset) come through
    /// with no kind (``Failure/info`` nil); their other fields are kept.
    init(_ proto: ProtoFailure) {
        let info: FailureInfo?
        switch proto.failureInfo {
        case .applicationFailureInfo(let a):
            info = .application(ApplicationFailureInfo(
                type: a.type, nonRetryable: a.nonRetryable, details: payloads(a.details, isSet: a.hasDetails),
                nextRetryDelay: duration(a.nextRetryDelay, isSet: a.hasNextRetryDelay),
                category: ApplicationErrorCategory(rawValue: UInt8(clamping: a.category.rawValue)) ?? .unspecified))
        case .timeoutFailureInfo(let a):
            info = TimeoutType(rawValue: UInt8(clamping: a.timeoutType.rawValue)).map {
                .timeout(TimeoutFailureInfo(timeoutType: $0, lastHeartbeatDetails: payloads(a.lastHeartbeatDetails,
                                                                                             isSet: a.hasLastHeartbeatDetails)))
            }
        case .canceledFailureInfo(let a):
            info = .canceled(CanceledFailureInfo(details: payloads(a.details, isSet: a.hasDetails), identity: a.identity))
        case .terminatedFailureInfo(let a):
            info = .terminated(TerminatedFailureInfo(identity: a.identity))
        case .serverFailureInfo(let a):
            info = .server(ServerFailureInfo(nonRetryable: a.nonRetryable))
        case .activityFailureInfo(let a):
            info = .activity(ActivityFailureInfo(
                scheduledEventID: a.scheduledEventID, startedEventID: a.startedEventID, identity: a.identity,
                activityType: a.activityType.name, activityID: a.activityID,
                retryState: RetryState(rawValue: UInt8(clamping: a.retryState.rawValue)) ?? .unspecified))
        case .childWorkflowExecutionFailureInfo, nil:
            info = nil
        }
        self.init(message: proto.message, source: proto.source, stackTrace: proto.stackTrace,
                  encodedAttributes: proto.hasEncodedAttributes ? Payload(proto.encodedAttributes) : nil,
                  cause: proto.hasCause ? Failure(proto.cause) : nil, info: info)
    }

    var proto: ProtoFailure {
        var failure = ProtoFailure()
        failure.message = message
        failure.source = source
        failure.stackTrace = stackTrace
        if let encodedAttributes { failure.encodedAttributes = encodedAttributes.proto }
        if let cause { failure.cause = cause.proto }
        switch info {
        case .application(let a)?:
            var p = Temporal_Api_Failure_V1_ApplicationFailureInfo()
            p.type = a.type
            p.nonRetryable = a.nonRetryable
            if let details = a.details { p.details = protoPayloads(details) }
            if let delay = a.nextRetryDelay { p.nextRetryDelay = delay.proto }
            p.category = Temporal_Api_Enums_V1_ApplicationErrorCategory(rawValue: Int(a.category.rawValue)) ?? .unspecified
            failure.applicationFailureInfo = p
        case .timeout(let a)?:
            var p = Temporal_Api_Failure_V1_TimeoutFailureInfo()
            p.timeoutType = a.timeoutType.proto
            if let details = a.lastHeartbeatDetails { p.lastHeartbeatDetails = protoPayloads(details) }
            failure.timeoutFailureInfo = p
        case .canceled(let a)?:
            var p = Temporal_Api_Failure_V1_CanceledFailureInfo()
            if let details = a.details { p.details = protoPayloads(details) }
            p.identity = a.identity
            failure.canceledFailureInfo = p
        case .terminated(let a)?:
            var p = Temporal_Api_Failure_V1_TerminatedFailureInfo()
            p.identity = a.identity
            failure.terminatedFailureInfo = p
        case .server(let a)?:
            var p = Temporal_Api_Failure_V1_ServerFailureInfo()
            p.nonRetryable = a.nonRetryable
            failure.serverFailureInfo = p
        case .activity(let a)?:
            var p = Temporal_Api_Failure_V1_ActivityFailureInfo()
            p.scheduledEventID = a.scheduledEventID
            p.startedEventID = a.startedEventID
            p.identity = a.identity
            p.activityType = protoActivityType(a.activityType)
            p.activityID = a.activityID
            p.retryState = a.retryState.proto
            failure.activityFailureInfo = p
        case nil:
            break
        }
        return failure
    }
}
