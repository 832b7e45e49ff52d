import SpoolMatching

/// Sticky execution: taking a run's sticky queue away (Temporal's ResetStickyTaskQueue) and a
/// worker's graceful shutdown.
extension SpoolEngine {
    /// Takes the run's sticky queue away (Temporal's `ResetStickyTaskQueue`, and what a worker's
    /// graceful shutdown does): a workflow task waiting there moves to the normal queue at once,
    /// with the full history, without a new attempt.
    /// - Throws: ``SpoolError/Code/notFound``; ``SpoolError/Code/storage``.
    public func resetStickyTaskQueue(namespace: String = defaultNamespace, execution: WorkflowExecution) async throws(SpoolError) {
        try checkOpen()
        let handle = try await lockRun(namespace: namespace, execution: execution)
        defer { handle.gate.release() }
        let state = handle.state
        guard state.isRunning, state.stickyTaskQueue != nil else { return }
        var transition = Transition(state, now: clock.now())
        try moveOffStickyQueue(&transition)
        try await commit(handle, transition)
    }

    /// Clears stickiness; a workflow task scheduled (not started) on the sticky queue is moved to
    /// the normal queue: WorkflowTaskTimedOut (schedule-to-start) and a new WorkflowTaskScheduled
    /// with the same attempt.
    func moveOffStickyQueue(_ transition: inout Transition) throws(SpoolError) {
        try transition.record(.stickyTaskQueue(name: nil, scheduleToStartTimeout: nil))
        guard let task = transition.state.workflowTask, task.isSticky, task.startedEventID == 0 else { return }
        try transition.add(.workflowTaskTimedOut(.init(scheduledEventID: task.scheduledEventID, startedEventID: 0,
                                                       timeoutType: .scheduleToStart)))
        try transition.scheduleWorkflowTaskIfNeeded(attempt: task.attempt, sticky: false)
    }

    /// Ends stickiness for every run whose sticky queue is `stickyTaskQueue` (a worker shutting
    /// down gracefully, Temporal's `ShutdownWorker`): their waiting workflow tasks move to the
    /// normal queue at once. Returns how many runs were moved.
    /// - Throws: ``SpoolError/Code/storage``.
    @discardableResult
    public func shutdownWorker(namespace: String = defaultNamespace, stickyTaskQueue: String) async throws(SpoolError) -> Int {
        try checkOpen()
        var moved = 0
        // `isRunning` first: it reads the closed runs still in memory without copying their state.
        for handle in registry.allHandles() where handle.key.namespace == namespace && handle.isRunning
                                                   && handle.state.stickyTaskQueue == stickyTaskQueue {
            await handle.gate.acquire()
            defer { handle.gate.release() }
            let state = handle.state
            guard state.isRunning, state.stickyTaskQueue == stickyTaskQueue else { continue }
            var transition = Transition(state, now: clock.now())
            try moveOffStickyQueue(&transition)
            try await commit(handle, transition)
            moved += 1
        }
        return moved
    }
}
