extension SpoolEngine {
    /// Signals the open run of `request.workflowID`, or starts a run with the signal as its first
    /// event after the start (Temporal's `SignalWithStartWorkflowExecution`).
    ///
    /// - An open run (conflict policy ``WorkflowIDConflictPolicy/useExisting``) gets
    ///   WorkflowExecutionSignaled and a workflow task if none is outstanding, as
    ///   ``signalWorkflowExecution(namespace:execution:signalName:input:identity:header:requestID:)``;
    ///   the response names it with `started: false`. With ``WorkflowIDConflictPolicy/terminateExisting``
    ///   (or the reuse policy ``WorkflowIDReusePolicy/terminateIfRunning``) it is terminated and a
    ///   new run started instead, in the same append.
    /// - Otherwise the reuse policy decides against the closed runs, and the new run's history
    ///   is WorkflowExecutionStarted, WorkflowExecutionSignaled, WorkflowTaskScheduled, in one
    ///   durable append (`started: true`).
    ///
    /// `request.header` and `request.requestID` go into both the start and the signal event. A
    /// retried request (same non-empty request id) writes nothing: the signal is not repeated
    /// and the run it started is returned with `started: true`.
    /// - Throws: ``SpoolError/Code/invalidArgument`` for an empty signal name, conflict policy
    ///   ``WorkflowIDConflictPolicy/fail`` (an open run is what signal-with-start signals), or
    ///   what ``startWorkflowExecution(_:)`` refuses; ``SpoolError/Code/workflowExecutionAlreadyStarted``
    ///   when the reuse policy forbids a new run; ``SpoolError/Code/storage``; ``SpoolError/Code/closed``.
    @discardableResult
    public func signalWithStartWorkflowExecution(_ request: StartWorkflowExecutionRequest, signalName: String,
                                                 signalInput: Payloads? = nil) async throws(SpoolError) -> StartWorkflowExecutionResponse {
        try checkOpen()
        try validate(request)
        guard !signalName.isEmpty else {
            throw SpoolError(.invalidArgument, "the signal name is empty", namespace: request.namespace, workflowID: request.workflowID)
        }
        guard request.workflowIDConflictPolicy != .fail else {
            throw SpoolError(.invalidArgument, "signal-with-start signals the open run: use the conflict policy useExisting "
                             + "(Temporal's default here) or terminateExisting, not fail",
                             namespace: request.namespace, workflowID: request.workflowID)
        }
        let signal = WorkflowExecutionSignaledEventAttributes(signalName: signalName, input: signalInput, identity: request.identity,
                                                              header: request.header, requestID: request.requestID)
        let workflowKey = WorkflowKey(namespace: request.namespace, workflowID: request.workflowID)
        while true {
            switch try decideStart(request, workflowKey: workflowKey, firstSignal: signal) {
            case .existing(let runID):
                if let answer = try await signalOpenRun(runID, retried: false, request, signal) { return answer }
            case .retried(let runID):
                if let answer = try await signalOpenRun(runID, retried: true, request, signal) { return answer }
            case .start(let handle, let transition, let previousRunID):
                do {
                    try await commit(handle, transition)
                } catch {
                    unreserve(handle, previousRunID: previousRunID)
                    throw error
                }
                handle.gate.release()
                return StartWorkflowExecutionResponse(runID: handle.key.runID, started: true)
            case .terminateThenStart(let running):
                await running.gate.acquire()
                defer { running.gate.release() }
                guard let (handle, transition, previousRunID) = try reserveAfterTermination(
                    request, workflowKey: workflowKey, running: running, firstSignal: signal) else { continue }
                var termination = Transition(running.state, now: transition.now)
                try terminate(&termination, reason: "terminated by a signal-with-start with the same workflow id (run \(handle.key.runID))",
                              details: nil, identity: request.identity)
                do {
                    try await commit([(running, termination), (handle, transition)])
                } catch {
                    unreserve(handle, previousRunID: previousRunID)
                    throw error
                }
                handle.gate.release()
                return StartWorkflowExecutionResponse(runID: handle.key.runID, started: true)
            }
        }
    }

    /// Signals run `runID` of the request's workflow id (a retried request's signal is found by
    /// its request id and not repeated); nil when the run closed meanwhile and the request must
    /// be decided again, unless it is a retry of the request that started it.
    private func signalOpenRun(_ runID: String, retried: Bool, _ request: StartWorkflowExecutionRequest,
                               _ signal: WorkflowExecutionSignaledEventAttributes) async throws(SpoolError) -> StartWorkflowExecutionResponse? {
        let handle = try await lockRun(namespace: request.namespace, execution: WorkflowExecution(workflowID: request.workflowID, runID: runID))
        defer { handle.gate.release() }
        guard handle.state.isRunning else {
            return retried ? StartWorkflowExecutionResponse(runID: runID, started: true) : nil
        }
        try await self.signal(handle, signalName: signal.signalName, input: signal.input, identity: signal.identity,
                              header: signal.header, requestID: signal.requestID, endsBackoff: true)
        return StartWorkflowExecutionResponse(runID: runID, started: retried)
    }
}
