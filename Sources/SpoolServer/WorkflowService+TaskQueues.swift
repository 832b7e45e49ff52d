import FoundationEssentials
import GRPCCore
import Spool
import SpoolServerProtos

/// DescribeTaskQueue and UpdateTaskQueueConfig: what the engine's matching reports of a queue,
/// and its durable rate limit.
extension WorkflowService {
    /// Temporal's answer for pollers that sent no rate (its default dispatch rate).
    static let defaultPollerRatePerSecond = 100_000.0

    func describeTaskQueue(request: Temporal_Api_Workflowservice_V1_DescribeTaskQueueRequest,
                           context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_DescribeTaskQueueResponse {
        let ns = namespace(request.namespace), name = request.taskQueue.name
        var response = Temporal_Api_Workflowservice_V1_DescribeTaskQueueResponse()
        if request.apiMode == .enhanced {
            // What `temporal task-queue describe` and the SDKs' describe-enhanced send: one
            // unversioned entry (build id "") holding each asked type's pollers and stats.
            let types: [Temporal_Api_Enums_V1_TaskQueueType] = request.taskQueueTypes.isEmpty
                ? [.workflow, .activity] : request.taskQueueTypes
            var version = Temporal_Api_Taskqueue_V1_TaskQueueVersionInfo()
            for type in types {
                guard let kind = try taskQueueKind(type, field: "task_queue_types") else { continue }
                let info = try await engineCall { () throws(SpoolError) in
                    try engine.describeTaskQueue(namespace: ns, taskQueue: name, kind: kind)
                }
                var typeInfo = Temporal_Api_Taskqueue_V1_TaskQueueTypeInfo()
                if request.reportPollers { typeInfo.pollers = pollers(info) }
                if request.reportStats { typeInfo.stats = stats(info) }
                version.typesInfo[Int32(type.rawValue)] = typeInfo
            }
            response.versionsInfo[""] = version
            return response
        }
        let kind = try taskQueueKind(request.taskQueueType, field: "task_queue_type") ?? .workflow
        let info = try await engineCall { () throws(SpoolError) in
            try engine.describeTaskQueue(namespace: ns, taskQueue: name, kind: kind)
        }
        response.pollers = pollers(info)
        if request.reportStats { response.stats = stats(info) }
        if request.reportConfig {
            response.config = taskQueueConfig(info.config)
            response.effectiveRateLimit = effectiveRateLimit(info)
        }
        if request.includeTaskQueueStatus {
            var status = Temporal_Api_Taskqueue_V1_TaskQueueStatus()
            status.backlogCountHint = Int64(info.backlogCount)
            status.ratePerSecond = info.effectiveRateLimit ?? Self.defaultPollerRatePerSecond
            response.taskQueueStatus = status
        }
        return response
    }

    func updateTaskQueueConfig(request: Temporal_Api_Workflowservice_V1_UpdateTaskQueueConfigRequest,
                               context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_UpdateTaskQueueConfigResponse {
        guard let kind = try taskQueueKind(request.taskQueueType, field: "task_queue_type") else {
            throw RPCError(code: .invalidArgument, message: "task_queue_type must be TASK_QUEUE_TYPE_WORKFLOW or TASK_QUEUE_TYPE_ACTIVITY")
        }
        // Temporal refuses a rate limit on workflow task queues (the engine's Swift API has one).
        if kind == .workflow && request.hasUpdateQueueRateLimit {
            throw RPCError(code: .invalidArgument, message: "Setting rate limit on workflow task queues is not allowed.")
        }
        var update = UpdateTaskQueueConfigRequest(namespace: namespace(request.namespace), taskQueue: request.taskQueue,
                                                  kind: kind, identity: request.identity)
        // A RateLimitUpdate without a rate removes the limit (Temporal's unset).
        func change(_ update: Temporal_Api_Workflowservice_V1_UpdateTaskQueueConfigRequest.RateLimitUpdate) -> UpdateTaskQueueConfigRequest.RateLimitUpdate {
            update.hasRateLimit ? .set(requestsPerSecond: Double(update.rateLimit.requestsPerSecond), reason: update.reason)
                : .unset(reason: update.reason)
        }
        if request.hasUpdateQueueRateLimit { update.queueRateLimit = change(request.updateQueueRateLimit) }
        // Each fairness key's rate: this rate times the key's weight (Temporal's default for every key).
        if request.hasUpdateFairnessKeyRateLimitDefault {
            update.fairnessKeyRateLimit = change(request.updateFairnessKeyRateLimitDefault)
        }
        let config = try await engineCall { () throws(SpoolError) in try engine.updateTaskQueueConfig(update) }
        var response = Temporal_Api_Workflowservice_V1_UpdateTaskQueueConfigResponse()
        response.config = taskQueueConfig(config)
        return response
    }

    /// The engine's queue kind for a Temporal task-queue type; nil for unspecified; Nexus is
    /// refused (INVALID_ARGUMENT naming `field`).
    private func taskQueueKind(_ type: Temporal_Api_Enums_V1_TaskQueueType, field: String) throws -> TaskQueueKind? {
        switch type {
        case .workflow: return .workflow
        case .activity: return .activity
        case .unspecified: return nil
        default: throw RPCError(code: .invalidArgument, message: "\(field): spool serve has workflow and activity task queues only")
        }
    }

    /// The rate dispatch enforces and where it comes from: the configured limit (API), the
    /// pollers' (WORKER), else Temporal's default (SYSTEM).
    private func effectiveRateLimit(_ info: TaskQueueInfo) -> Temporal_Api_Workflowservice_V1_DescribeTaskQueueResponse.EffectiveRateLimit {
        var effective = Temporal_Api_Workflowservice_V1_DescribeTaskQueueResponse.EffectiveRateLimit()
        if let rate = info.effectiveRateLimit {
            effective.requestsPerSecond = Float(rate)
            effective.rateLimitSource = info.config.queueRateLimit != nil ? .api : .worker
        } else {
            effective.requestsPerSecond = Float(Self.defaultPollerRatePerSecond)
            effective.rateLimitSource = .system
        }
        return effective
    }

    private func pollers(_ info: TaskQueueInfo) -> [Temporal_Api_Taskqueue_V1_PollerInfo] {
        info.pollers.map { poller in
            var p = Temporal_Api_Taskqueue_V1_PollerInfo()
            p.identity = poller.identity
            p.lastAccessTime = poller.lastAccessTime.proto
            // Temporal reports the rate the poller sent, or its default when it sent none.
            p.ratePerSecond = poller.ratePerSecond ?? info.pollerRateLimit ?? Self.defaultPollerRatePerSecond
            return p
        }
    }

    private func stats(_ info: TaskQueueInfo) -> Temporal_Api_Taskqueue_V1_TaskQueueStats {
        var s = Temporal_Api_Taskqueue_V1_TaskQueueStats()
        s.approximateBacklogCount = Int64(info.backlogCount)
        s.approximateBacklogAge = (info.backlog.compactMap(\.oldestAge).max() ?? .zero).proto
        s.tasksAddRate = Float(info.addRate)
        s.tasksDispatchRate = Float(info.dispatchRate)
        return s
    }

    private func taskQueueConfig(_ config: TaskQueueConfig) -> Temporal_Api_Taskqueue_V1_TaskQueueConfig {
        func proto(_ limit: TaskQueueRateLimitConfig) -> Temporal_Api_Taskqueue_V1_RateLimitConfig {
            var rate = Temporal_Api_Taskqueue_V1_RateLimitConfig()
            rate.rateLimit.requestsPerSecond = Float(limit.requestsPerSecond)
            rate.metadata.reason = limit.reason
            rate.metadata.updateIdentity = limit.updateIdentity
            rate.metadata.updateTime = limit.updateTime.proto
            return rate
        }
        var p = Temporal_Api_Taskqueue_V1_TaskQueueConfig()
        if let limit = config.queueRateLimit { p.queueRateLimit = proto(limit) }
        if let limit = config.fairnessKeyRateLimit { p.fairnessKeysRateLimitDefault = proto(limit) }
        return p
    }
}
