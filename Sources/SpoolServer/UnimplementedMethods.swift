import GRPCCore

/// Every method of Temporal's WorkflowService and OperatorService, registered with a handler that
/// answers UNIMPLEMENTED naming the method (gRPC's own answer for an unknown method names none).
/// Methods Spool implements are registered after these and replace them.
struct UnimplementedMethods: RegistrableRPCService {
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        for (service, methods) in [("temporal.api.workflowservice.v1.WorkflowService", Self.workflowServiceMethods),
                                   ("temporal.api.operatorservice.v1.OperatorService", Self.operatorServiceMethods)] {
            for method in methods {
                let descriptor = MethodDescriptor(fullyQualifiedService: service, method: method)
                router.registerHandler(forMethod: descriptor, deserializer: IgnoredMessage(), serializer: IgnoredMessage()) {
                    _, _ in
                    throw RPCError(code: .unimplemented, message: "spool serve does not implement \(descriptor) yet")
                }
            }
        }
    }

    /// The methods of Temporal's services (temporalio/api as of temporalio 1.35.0).
    static let workflowServiceMethods = [
        "RegisterNamespace", "DescribeNamespace", "ListNamespaces", "UpdateNamespace", "DeprecateNamespace",
        "StartWorkflowExecution", "ExecuteMultiOperation", "GetWorkflowExecutionHistory",
        "GetWorkflowExecutionHistoryReverse", "PollWorkflowTaskQueue", "RespondWorkflowTaskCompleted",
        "RespondWorkflowTaskFailed", "PollActivityTaskQueue", "RecordActivityTaskHeartbeat",
        "RecordActivityTaskHeartbeatById", "RespondActivityTaskCompleted", "RespondActivityTaskCompletedById",
        "RespondActivityTaskFailed", "RespondActivityTaskFailedById", "RespondActivityTaskCanceled",
        "RespondActivityTaskCanceledById", "RequestCancelWorkflowExecution", "SignalWorkflowExecution",
        "SignalWithStartWorkflowExecution", "ResetWorkflowExecution", "TerminateWorkflowExecution",
        "DeleteWorkflowExecution", "ListOpenWorkflowExecutions", "ListClosedWorkflowExecutions",
        "ListWorkflowExecutions", "ListArchivedWorkflowExecutions", "ScanWorkflowExecutions",
        "CountWorkflowExecutions", "GetSearchAttributes", "RespondQueryTaskCompleted", "ResetStickyTaskQueue",
        "ShutdownWorker", "QueryWorkflow", "DescribeWorkflowExecution", "DescribeTaskQueue", "GetClusterInfo",
        "GetSystemInfo", "ListTaskQueuePartitions", "CreateSchedule", "DescribeSchedule", "UpdateSchedule",
        "PatchSchedule", "ListScheduleMatchingTimes", "DeleteSchedule", "ListSchedules", "CountSchedules",
        "UpdateWorkerBuildIdCompatibility", "GetWorkerBuildIdCompatibility", "UpdateWorkerVersioningRules",
        "GetWorkerVersioningRules", "GetWorkerTaskReachability", "DescribeDeployment",
        "DescribeWorkerDeploymentVersion", "ListDeployments", "GetDeploymentReachability",
        "GetCurrentDeployment", "SetCurrentDeployment", "SetWorkerDeploymentCurrentVersion",
        "DescribeWorkerDeployment", "DeleteWorkerDeployment", "DeleteWorkerDeploymentVersion",
        "SetWorkerDeploymentRampingVersion", "ListWorkerDeployments", "CreateWorkerDeployment",
        "CreateWorkerDeploymentVersion", "UpdateWorkerDeploymentVersionComputeConfig",
        "ValidateWorkerDeploymentVersionComputeConfig", "UpdateWorkerDeploymentVersionMetadata",
        "SetWorkerDeploymentManager", "UpdateWorkflowExecution", "PollWorkflowExecutionUpdate",
        "StartBatchOperation", "StopBatchOperation", "DescribeBatchOperation", "ListBatchOperations",
        "PollNexusTaskQueue", "RespondNexusTaskCompleted", "RespondNexusTaskFailed", "UpdateActivityOptions",
        "UpdateWorkflowExecutionOptions", "PauseActivity", "UnpauseActivity", "ResetActivity",
        "CreateWorkflowRule", "DescribeWorkflowRule", "DeleteWorkflowRule", "ListWorkflowRules",
        "TriggerWorkflowRule", "RecordWorkerHeartbeat", "ListWorkers", "CountWorkers", "UpdateTaskQueueConfig",
        "FetchWorkerConfig", "UpdateWorkerConfig", "DescribeWorker", "PauseWorkflowExecution",
        "UnpauseWorkflowExecution", "StartActivityExecution", "StartNexusOperationExecution",
        "DescribeActivityExecution", "DescribeNexusOperationExecution", "PollActivityExecution",
        "PollNexusOperationExecution", "ListActivityExecutions", "ListNexusOperationExecutions",
        "CountActivityExecutions", "CountNexusOperationExecutions", "RequestCancelActivityExecution",
        "RequestCancelNexusOperationExecution", "TerminateActivityExecution", "DeleteActivityExecution",
        "PauseActivityExecution", "ResetActivityExecution", "UnpauseActivityExecution",
        "UpdateActivityExecutionOptions", "TerminateNexusOperationExecution", "DeleteNexusOperationExecution",
        "PollWorkflowExecutionTimeSkipping"
    ]
    static let operatorServiceMethods = [
        "AddSearchAttributes", "RemoveSearchAttributes", "ListSearchAttributes", "DeleteNamespace",
        "AddOrUpdateRemoteCluster", "RemoveRemoteCluster", "ListClusters", "GetNexusEndpoint",
        "CreateNexusEndpoint", "UpdateNexusEndpoint", "DeleteNexusEndpoint", "ListNexusEndpoints"
    ]
}

/// A request or response whose bytes are not read.
private struct IgnoredMessage: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: Void) throws -> Bytes { Bytes(repeating: 0, count: 0) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws {}
}
