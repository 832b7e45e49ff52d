/// Asynchronous activity completion (Temporal's `…ById` calls): an activity whose function
/// returned without an outcome (the SDKs' "complete async") is finished later by whoever holds
/// its workflow id, run id and activity id, without the task token. Each call acts on the
/// activity's running attempt exactly as the token-based call does.
extension SpoolEngine {
    /// Completes the running attempt of activity `activityID` of the run, as
    /// ``respondActivityTaskCompleted(taskToken:result:identity:workerVersion:)``.
    /// - Parameter runID: the run; empty for the workflow id's current run.
    /// - Throws: ``SpoolError/Code/notFound`` when the run does not exist or has no pending
    ///   activity with that id; ``SpoolError/Code/staleTaskToken`` when no attempt of it is
    ///   running (it is waiting for a worker or for its retry); ``SpoolError/Code/storage``.
    public func respondActivityTaskCompletedByID(namespace: String = defaultNamespace, workflowID: String, runID: String = "",
                                                 activityID: String, result: Payloads? = nil,
                                                 identity: String = "") async throws(SpoolError) {
        let token = try runningAttemptToken(namespace: namespace, workflowID: workflowID, runID: runID, activityID: activityID)
        try await respondActivityTaskCompleted(taskToken: token, result: result, identity: identity)
    }

    /// Fails the running attempt of activity `activityID` of the run, as
    /// ``respondActivityTaskFailed(taskToken:failure:lastHeartbeatDetails:identity:workerVersion:)``
    /// (retried under its policy).
    /// - Throws: as ``respondActivityTaskCompletedByID(namespace:workflowID:runID:activityID:result:identity:)``.
    public func respondActivityTaskFailedByID(namespace: String = defaultNamespace, workflowID: String, runID: String = "",
                                              activityID: String, failure: Failure, lastHeartbeatDetails: Payloads? = nil,
                                              identity: String = "") async throws(SpoolError) {
        let token = try runningAttemptToken(namespace: namespace, workflowID: workflowID, runID: runID, activityID: activityID)
        try await respondActivityTaskFailed(taskToken: token, failure: failure, lastHeartbeatDetails: lastHeartbeatDetails,
                                            identity: identity)
    }

    /// Reports the running attempt of activity `activityID` canceled, as
    /// ``respondActivityTaskCanceled(taskToken:details:identity:workerVersion:)``.
    /// - Throws: as ``respondActivityTaskCompletedByID(namespace:workflowID:runID:activityID:result:identity:)``.
    public func respondActivityTaskCanceledByID(namespace: String = defaultNamespace, workflowID: String, runID: String = "",
                                                activityID: String, details: Payloads? = nil,
                                                identity: String = "") async throws(SpoolError) {
        let token = try runningAttemptToken(namespace: namespace, workflowID: workflowID, runID: runID, activityID: activityID)
        try await respondActivityTaskCanceled(taskToken: token, details: details, identity: identity)
    }

    /// Records a heartbeat of the running attempt of activity `activityID`, as
    /// ``recordActivityTaskHeartbeat(taskToken:details:identity:)``.
    /// - Throws: as ``respondActivityTaskCompletedByID(namespace:workflowID:runID:activityID:result:identity:)``.
    @discardableResult
    public func recordActivityTaskHeartbeatByID(namespace: String = defaultNamespace, workflowID: String, runID: String = "",
                                                activityID: String, details: Payloads? = nil,
                                                identity: String = "") async throws(SpoolError) -> RecordActivityTaskHeartbeatResponse {
        let token = try runningAttemptToken(namespace: namespace, workflowID: workflowID, runID: runID, activityID: activityID)
        return try await recordActivityTaskHeartbeat(taskToken: token, details: details, identity: identity)
    }

    /// The token of the activity's current attempt; the token-based call then checks, under the
    /// run's gate, that this attempt is still the running one.
    private func runningAttemptToken(namespace: String, workflowID: String, runID: String,
                                     activityID: String) throws(SpoolError) -> TaskToken {
        try checkOpen()
        try checkNamespace(namespace)
        let execution = WorkflowExecution(workflowID: workflowID, runID: runID)
        guard let handle = registry.handle(namespace: namespace, execution: execution), handle.isVisible else {
            throw SpoolError(.notFound, "no such workflow execution", namespace: namespace, workflowID: workflowID, runID: runID)
        }
        let state = handle.state
        guard state.isRunning,
              let activity = state.activities.values.first(where: { $0.attributes.activityID == activityID }) else {
            throw handle.key.error(.notFound, "the run has no pending activity with id '\(activityID)'")
        }
        return TaskToken(kind: .activity, key: handle.key, scheduledEventID: activity.scheduledEventID, startedEventID: 0,
                         attempt: activity.attempt)
    }
}
