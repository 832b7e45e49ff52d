import Testing
@testable import Spool

@Suite struct SpoolEngineActivityTests {
    /// A run whose first workflow task scheduled `command` (event 5).
    func runWithActivity(_ command: Command) async throws -> (EngineHarness, WorkflowExecution) {
        let h = try EngineHarness()
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([command])
        return (h, run)
    }

    func lastEvents(_ h: EngineHarness, _ run: WorkflowExecution, _ count: Int) async throws -> [HistoryEvent] {
        Array(try await h.history(run).suffix(count))
    }

    @Test func retriesBackOffExponentiallyAndWriteNoEvents() async throws {
        let policy = RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 2, maximumInterval: .seconds(3), maximumAttempts: 5)
        let (h, run) = try await runWithActivity(scheduleActivity(retry: policy))
        var retryTimes: [Timestamp] = []
        for attempt in 1...4 {
            let task = try #require(try await h.pollActivityTask(), "attempt \(attempt)")
            #expect(task.attempt == Int32(attempt))
            try await h.engine.respondActivityTaskFailed(taskToken: task.taskToken, failure: Failure.application("flaky \(attempt)", type: "IOError"))
            #expect(try await h.eventTypes(run).count == 5)
            let pending = try #require(try h.describe(run).pendingActivities.first)
            #expect(pending.attempt == Int32(attempt + 1))
            #expect(pending.lastFailure?.message == "flaky \(attempt)")
            retryTimes.append(pending.currentAttemptScheduledTime)
            // Not on the queue before its backoff ends.
            #expect(try await h.pollActivityTask() == nil)
            await h.advance(pending.currentAttemptScheduledTime.duration(since: h.engine.clock.now()))
        }
        // Delays 1 s, 2 s, 3 s (capped), 3 s.
        let gaps = zip(retryTimes.dropFirst(), retryTimes).map { $0.duration(since: $1) }
        #expect(gaps == [.seconds(2), .seconds(3), .seconds(3)])
        let last = try #require(try await h.pollActivityTask())
        #expect(last.attempt == 5)
        try await h.engine.respondActivityTaskFailed(taskToken: last.taskToken, failure: Failure.application("flaky 5", type: "IOError"))
        let events = try await lastEvents(h, run, 3)
        #expect(events.map(\.eventType) == [.activityTaskStarted, .activityTaskFailed, .workflowTaskScheduled])
        guard case .activityTaskStarted(let started) = events[0].attributes,
              case .activityTaskFailed(let failed) = events[1].attributes else { Issue.record("attributes"); return }
        #expect(started.attempt == 5)
        #expect(started.lastFailure?.message == "flaky 4")
        #expect(failed.retryState == .maximumAttemptsReached)
        #expect(failed.startedEventID == events[0].eventID)
        #expect(try await h.history(run).filter { $0.eventType == .activityTaskStarted }.count == 1)
    }

    @Test func backoffFollowsTheRetryPolicyFormula() {
        let policy = RetryPolicy(initialInterval: .milliseconds(100), backoffCoefficient: 3)
        #expect(policy.backoff(afterAttempt: 1) == .milliseconds(100))
        #expect(policy.backoff(afterAttempt: 2) == .milliseconds(300))
        #expect(policy.backoff(afterAttempt: 3) == .milliseconds(900))
        #expect(policy.backoff(afterAttempt: 10) == .seconds(10))     // capped at 100 × initial
        #expect(RetryPolicy().backoff(afterAttempt: 200) == .seconds(100))
    }

    @Test func nonRetryableFailuresCloseTheActivityAtOnce() async throws {
        let (h, run) = try await runWithActivity(scheduleActivity(retry: RetryPolicy(nonRetryableErrorTypes: ["CardDeclined"])))
        let task = try #require(try await h.pollActivityTask())
        try await h.engine.respondActivityTaskFailed(taskToken: task.taskToken, failure: Failure.application("no", type: "CardDeclined"))
        guard case .activityTaskFailed(let failed) = try await lastEvents(h, run, 2)[0].attributes else { Issue.record("failed"); return }
        #expect(failed.retryState == .nonRetryableFailure)

        let (h2, run2) = try await runWithActivity(scheduleActivity())
        let task2 = try #require(try await h2.pollActivityTask())
        try await h2.engine.respondActivityTaskFailed(taskToken: task2.taskToken, failure: Failure.application("no", nonRetryable: true))
        guard case .activityTaskFailed(let failed2) = try await lastEvents(h2, run2, 2)[0].attributes else { Issue.record("failed"); return }
        #expect(failed2.retryState == .nonRetryableFailure)
        // A type that only resembles a non-retryable one is retried.
        let (h3, run3) = try await runWithActivity(scheduleActivity(retry: RetryPolicy(nonRetryableErrorTypes: ["CardDeclined"])))
        let task3 = try #require(try await h3.pollActivityTask())
        try await h3.engine.respondActivityTaskFailed(taskToken: task3.taskToken, failure: Failure.application("no", type: "carddeclined"))
        #expect(try h3.describe(run3).pendingActivities.first?.attempt == 2)
    }

    @Test func aFailureCanNameItsNextRetryDelay() async throws {
        let (h, run) = try await runWithActivity(scheduleActivity())
        let task = try #require(try await h.pollActivityTask())
        try await h.engine.respondActivityTaskFailed(taskToken: task.taskToken, failure: Failure.application("later", nextRetryDelay: .seconds(42)))
        let pending = try #require(try h.describe(run).pendingActivities.first)
        #expect(pending.currentAttemptScheduledTime.duration(since: pending.scheduledTime) == .seconds(42))
    }

    @Test func heartbeatDetailsReachTheNextAttempt() async throws {
        let (h, run) = try await runWithActivity(scheduleActivity(startToClose: .seconds(10), heartbeat: .seconds(3)))
        let first = try #require(try await h.pollActivityTask())
        #expect(first.heartbeatDetails == nil)
        await h.advance(.seconds(2))
        try await h.engine.recordActivityTaskHeartbeat(taskToken: first.taskToken, details: .binary([1, 0]))
        await h.advance(.seconds(2))
        try await h.engine.recordActivityTaskHeartbeat(taskToken: first.taskToken, details: .binary([2, 0]))
        #expect(try h.describe(run).pendingActivities.first?.heartbeatDetails == .binary([2, 0]))
        // No heartbeat for 3 s: heartbeat timeout, retried.
        await h.advance(.seconds(3))
        let pending = try #require(try h.describe(run).pendingActivities.first)
        #expect(pending.attempt == 2)
        #expect(pending.lastFailure?.timeoutType == .heartbeat)
        // As Temporal's RetryActivity records it: the timeout alone; the details stay the activity's.
        #expect(pending.lastFailure == .timeout(.heartbeat))
        await #expect { try await h.engine.recordActivityTaskHeartbeat(taskToken: first.taskToken) } throws: { isSpoolError($0, .staleTaskToken) }
        await h.advance(.seconds(1))
        let second = try #require(try await h.pollActivityTask())
        #expect(second.attempt == 2)
        #expect(second.heartbeatDetails == .binary([2, 0]))
        try await h.engine.respondActivityTaskCompleted(taskToken: second.taskToken)
        #expect(try await h.eventTypes(run).suffix(3) == [.activityTaskStarted, .activityTaskCompleted, .workflowTaskScheduled])
    }

    @Test func startToCloseTimeoutIsRetriedThenTimesOut() async throws {
        let (h, run) = try await runWithActivity(scheduleActivity(startToClose: .seconds(5), retry: RetryPolicy(maximumAttempts: 2)))
        let first = try #require(try await h.pollActivityTask())
        await h.advance(.seconds(5))
        #expect(try h.describe(run).pendingActivities.first?.attempt == 2)
        await #expect { try await h.engine.respondActivityTaskCompleted(taskToken: first.taskToken) } throws: { isSpoolError($0, .staleTaskToken) }
        #expect(try await h.eventTypes(run).count == 5)
        await h.advance(.seconds(1))
        _ = try #require(try await h.pollActivityTask())
        await h.advance(.seconds(5))
        let events = try await lastEvents(h, run, 3)
        #expect(events.map(\.eventType) == [.activityTaskStarted, .activityTaskTimedOut, .workflowTaskScheduled])
        guard case .activityTaskTimedOut(let timedOut) = events[1].attributes else { Issue.record("timed out"); return }
        #expect(timedOut.failure.timeoutType == .startToClose)
        #expect(timedOut.retryState == .maximumAttemptsReached)
        #expect(timedOut.startedEventID == events[0].eventID)
    }

    @Test func scheduleToStartTimeoutIsNotRetried() async throws {
        let (h, run) = try await runWithActivity(scheduleActivity(scheduleToStart: .seconds(2)))
        await h.advance(.seconds(2))
        let events = try await lastEvents(h, run, 2)
        #expect(events.map(\.eventType) == [.activityTaskTimedOut, .workflowTaskScheduled])
        guard case .activityTaskTimedOut(let timedOut) = events[0].attributes else { Issue.record("timed out"); return }
        #expect(timedOut.failure.timeoutType == .scheduleToStart)
        #expect(timedOut.retryState == .timeout)
        #expect(timedOut.startedEventID == 0)
        // The expired task is not handed out.
        #expect(try await h.pollActivityTask() == nil)
    }

    @Test func scheduleToCloseTimeoutEndsARunningAttempt() async throws {
        let (h, run) = try await runWithActivity(scheduleActivity(startToClose: .seconds(30), scheduleToClose: .seconds(8)))
        let task = try #require(try await h.pollActivityTask())
        #expect(task.startToCloseTimeout == .seconds(8))        // capped by schedule-to-close
        await h.advance(.seconds(8))
        let events = try await lastEvents(h, run, 3)
        #expect(events.map(\.eventType) == [.activityTaskStarted, .activityTaskTimedOut, .workflowTaskScheduled])
        guard case .activityTaskTimedOut(let timedOut) = events[1].attributes else { Issue.record("timed out"); return }
        #expect(timedOut.failure.timeoutType == .scheduleToClose && timedOut.retryState == .timeout)
    }

    @Test func noRetryStartsAfterTheScheduleToCloseDeadline() async throws {
        let (h, run) = try await runWithActivity(scheduleActivity(startToClose: .seconds(5), scheduleToClose: .seconds(10),
                                                                  retry: RetryPolicy(initialInterval: .seconds(6))))
        let task = try #require(try await h.pollActivityTask())
        await h.advance(.seconds(5))
        try? await h.engine.respondActivityTaskFailed(taskToken: task.taskToken, failure: Failure(message: "x"))
        guard case .activityTaskTimedOut(let timedOut) = try await lastEvents(h, run, 2)[0].attributes else {
            Issue.record("expected a timeout, got \(try await h.eventTypes(run))"); return
        }
        #expect(timedOut.retryState == .timeout)
    }

    @Test func staleActivityTokensAreRejectedAndChangeNothing() async throws {
        let (h, run) = try await runWithActivity(scheduleActivity())
        let task = try #require(try await h.pollActivityTask())
        try await h.engine.respondActivityTaskCompleted(taskToken: task.taskToken, result: .binary([1]))
        let before = try await h.history(run)
        await #expect { try await h.engine.respondActivityTaskCompleted(taskToken: task.taskToken, result: .binary([2])) }
            throws: { isSpoolError($0, .staleTaskToken) }
        await #expect { try await h.engine.respondActivityTaskFailed(taskToken: task.taskToken, failure: Failure(message: "x")) }
            throws: { isSpoolError($0, .staleTaskToken) }
        await #expect { try await h.engine.respondActivityTaskCanceled(taskToken: task.taskToken) } throws: { isSpoolError($0, .staleTaskToken) }
        var older = task.taskToken
        older.attempt = 0
        await #expect { try await h.engine.recordActivityTaskHeartbeat(taskToken: older) } throws: { isSpoolError($0, .staleTaskToken) }
        #expect(try await h.history(run) == before)
        let workflowToken = try #require(try await h.pollWorkflowTask()).taskToken
        await #expect { try await h.engine.respondActivityTaskCompleted(taskToken: workflowToken) } throws: { isSpoolError($0, .invalidTaskToken) }
    }

    @Test func activitiesGoToTheirOwnQueue() async throws {
        let (h, _) = try await runWithActivity(scheduleActivity(queue: "gpu"))
        #expect(try await h.pollActivityTask("q") == nil)
        let task = try #require(try await h.pollActivityTask("gpu"))
        #expect(task.activityType == "charge")
    }

    @Test func eagerActivitiesComeBackStartedInTheWorkflowTaskResponse() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start()
        let task = try #require(try await h.pollWorkflowTask())
        func eager(_ id: String, queue: String = "") -> Command {
            .scheduleActivityTask(.init(activityID: id, activityType: "charge", taskQueue: queue, startToCloseTimeout: .seconds(30),
                                        requestEagerExecution: true))
        }
        let response = try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken,
                                                                       commands: [eager("a"), eager("b", queue: "elsewhere")])
        // Only the activity on the workflow's own queue is started eagerly.
        #expect(response.activityTasks.map(\.activityID) == ["a"])
        let activity = try #require(response.activityTasks.first)
        #expect(activity.attempt == 1 && activity.taskToken.scheduledEventID == 5)
        #expect(try await h.pollActivityTask("q") == nil)
        #expect(try await h.pollActivityTask("elsewhere")?.activityID == "b")
        #expect(try h.describe(run).pendingActivities.map(\.state) == [.started, .started])
        try await h.engine.respondActivityTaskCompleted(taskToken: activity.taskToken, result: .binary([1]))
        let history = try await h.history(run)
        #expect(history.suffix(3).map(\.eventType) == [.activityTaskStarted, .activityTaskCompleted, .workflowTaskScheduled])
        guard case .activityTaskCompleted(let completed) = history[history.count - 2].attributes else { Issue.record("completed"); return }
        #expect(completed.scheduledEventID == 5 && completed.startedEventID == history[history.count - 3].eventID)
    }

    @Test func anEagerActivityWhoseWorkerDiedTimesOutAndRetriesThroughTheQueue() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start()
        let task = try #require(try await h.pollWorkflowTask())
        let response = try await h.engine.respondWorkflowTaskCompleted(
            taskToken: task.taskToken,
            commands: [.scheduleActivityTask(.init(activityID: "a", activityType: "charge", startToCloseTimeout: .seconds(30),
                                                   requestEagerExecution: true))])
        #expect(response.activityTasks.count == 1)
        try await h.crashAndReopen()
        #expect(try h.describe(run).pendingActivities.first?.state == .started)
        #expect(try await h.pollActivityTask() == nil)
        await h.advance(.seconds(30))
        await h.advance(.seconds(1))
        let retry = try #require(try await h.pollActivityTask())
        #expect(retry.attempt == 2)
    }
}
