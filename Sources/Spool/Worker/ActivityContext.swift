/// What an activity function is given: its task, and a way to heartbeat.
public struct ActivityContext: Sendable {
    /// The task: input, attempt, the last heartbeat details of an earlier attempt.
    public var task: ActivityTask
    let engine: SpoolEngine
    let identity: String

    /// Records a heartbeat with `details` (kept for the next attempt) and returns whether the
    /// workflow asked to cancel the activity; if it did, stop and throw `CancellationError`.
    /// - Throws: ``SpoolError/Code/staleTaskToken`` when this attempt already timed out.
    public func heartbeat(_ details: Payloads? = nil) async throws(SpoolError) -> Bool {
        try await engine.recordActivityTaskHeartbeat(taskToken: task.taskToken, details: details, identity: identity).cancelRequested
    }
}

/// An activity function: returns the result, or throws. A thrown ``ActivityFailure`` is reported
/// as its ``Failure``; `CancellationError` after a cancel request reports the activity canceled;
/// any other error is a retryable failure whose type is the error's type name.
public typealias ActivityFunction = @Sendable (ActivityContext) async throws -> Payloads?
