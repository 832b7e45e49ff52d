/// How a run continues another of the same workflow id: continue-as-new, a workflow retry, or the
/// next run of a cron schedule. The new run is started in the same append as the closing event
/// of the old one, so a crash never loses it nor starts it twice.
struct ChainLink {
    /// The run that closes (its state just before its closing event).
    var from: ExecutionState
    var initiator: ContinueAsNewInitiator
    /// The new run's first-workflow-task backoff.
    var backoff: Duration?
    var continuedFailure: Failure?
    var lastCompletionResult: Payloads?
    var attempt: Int32
}

/// How a run closes, for deciding whether the chain goes on.
enum RunOutcome {
    case completed(Payloads?)
    case failed(Failure)
    case timedOut
}

extension SpoolEngine {
    /// Whether and how the chain goes on after `state` closes with `outcome`, as Temporal
    /// decides it: a failure or a run timeout is retried when the run's retry policy allows
    /// (``RetryState/inProgress``); otherwise (and after a completion) a cron schedule starts
    /// its next run; a run past the chain's expiration ends the chain (``RetryState/timeout``).
    /// The retry state is the one the closing event records. The last completion result handed
    /// on is Temporal's: the result after a completion; the run's own after a timeout, or after a
    /// failure that its cron schedule follows; none for the retry of a failure.
    func nextRun(after outcome: RunOutcome, state: ExecutionState, now: Timestamp) -> (RetryState, ChainLink?) {
        let failure: Failure
        var retriedResult: Payloads? = nil
        switch outcome {
        case .completed(let result):
            guard let backoff = cronBackoff(state, now: now) else { return (.unspecified, nil) }
            return (.unspecified, ChainLink(from: state, initiator: .cronSchedule, backoff: backoff, continuedFailure: nil,
                                            lastCompletionResult: result, attempt: 1))
        case .failed(let given):
            failure = given
        case .timedOut:
            if let expiration = state.executionExpirationTime, now >= expiration { return (.timeout, nil) }
            failure = Self.workflowTimeoutFailure
            retriedResult = state.lastCompletionResult
        }
        let (delay, retryState) = retryDecision(state, failure: failure, now: now)
        if let delay {
            return (retryState, ChainLink(from: state, initiator: .retry, backoff: delay, continuedFailure: failure,
                                          lastCompletionResult: retriedResult, attempt: state.attempt + 1))
        }
        if let backoff = cronBackoff(state, now: now) {
            return (retryState, ChainLink(from: state, initiator: .cronSchedule, backoff: backoff, continuedFailure: failure,
                                          lastCompletionResult: state.lastCompletionResult, attempt: 1))
        }
        return (retryState, nil)
    }

    /// The failure Temporal's server hands to the retry of a run that timed out.
    static var workflowTimeoutFailure: Failure {
        Failure(message: "workflow timeout", source: Failure.serverSource,
                info: .timeout(TimeoutFailureInfo(timeoutType: .startToClose, lastHeartbeatDetails: nil)))
    }

    /// Temporal's `getBackoffInterval` for a run, in its order: no policy, a non-retryable
    /// failure, the attempts used, or a backoff that would end past the chain's expiration end
    /// the retries; the failure's own next retry delay wins over the policy's backoff.
    func retryDecision(_ state: ExecutionState, failure: Failure, now: Timestamp) -> (Duration?, RetryState) {
        guard let policy = state.retryPolicy else { return (nil, .retryPolicyNotSet) }
        if !failure.isRetryable(nonRetryableErrorTypes: policy.nonRetryableErrorTypes) { return (nil, .nonRetryableFailure) }
        if policy.maximumAttempts > 0 && state.attempt >= policy.maximumAttempts { return (nil, .maximumAttemptsReached) }
        let delay = failure.nextRetryDelay ?? policy.backoff(afterAttempt: state.attempt)
        if let expiration = state.executionExpirationTime, now.advanced(by: delay) > expiration { return (nil, .timeout) }
        return (delay, .inProgress)
    }

    /// How long until the run's cron schedule fires next, counted from its execution time;
    /// nil without a schedule (or one that never fires again).
    func cronBackoff(_ state: ExecutionState, now: Timestamp) -> Duration? {
        guard !state.cronSchedule.isEmpty, let schedule = try? CronSchedule(state.cronSchedule) else { return nil }
        return schedule.backoff(scheduled: state.executionTime, now: now)
    }

    /// The start of a retry or a cron run: the closing run's type, queue, timeouts, input,
    /// header, memo and search attributes as it started (upserts are not carried), its retry
    /// policy and cron schedule (Temporal's `SetupNewWorkflowForRetryOrCron`).
    func chainRequest(from state: ExecutionState) -> StartWorkflowExecutionRequest {
        StartWorkflowExecutionRequest(
            namespace: state.key.namespace, workflowID: state.key.workflowID, workflowType: state.workflowType,
            taskQueue: state.taskQueue, input: state.input, workflowRunTimeout: state.workflowRunTimeout,
            workflowTaskTimeout: state.workflowTaskTimeout, header: state.header, retryPolicy: state.retryPolicy,
            cronSchedule: state.cronSchedule, memo: state.startMemo, searchAttributes: state.startSearchAttributes)
    }

    /// Adds a run timeout (or the chain's expiration) to `transition`: the buffered events, then
    /// WorkflowExecutionTimedOut with the retry state and, when the chain goes on, the new run's
    /// id; returns that run, reserved.
    func timeOutRun(_ transition: inout Transition) throws(SpoolError) -> (handle: ExecutionHandle, transition: Transition)? {
        // A started workflow task fails with ForceCloseCommand first; the buffered events follow.
        try transition.forceCloseStartedWorkflowTask()
        let state = transition.state
        let (retryState, link) = nextRun(after: .timedOut, state: state, now: transition.now)
        let runID = link == nil ? "" : RunID.generate()
        try transition.add(.workflowExecutionTimedOut(.init(retryState: retryState, newExecutionRunID: runID)))
        guard let link else { return nil }
        return try reserveContinuedRun(chainRequest(from: state), runID: runID, link: link, now: transition.now)
    }
}
