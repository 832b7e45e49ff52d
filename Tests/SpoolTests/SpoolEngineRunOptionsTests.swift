import SpoolMatching
import Testing
@testable import Spool

// Issue 18, points 4 and 5: memo and search attributes, continue-as-new carrying the run's
// options, start delay, execution timeout, workflow retries and cron. Expected histories are
// Temporal's for the same calls (temporal-semantics.md; Temporal's `SetupNewWorkflowForRetryOrCron`,
// `handleCommandContinueAsNewWorkflow`, `MergeMapOfPayload`).

/// The harness's epoch, 1 750 000 000 s: Sunday 2025-06-15 15:06:40 UTC.
let runOptionsEpoch = Timestamp(nanosecondsSinceEpoch: 1_750_000_000_000_000_000)

extension EngineHarness {
    @discardableResult
    func start(_ request: StartWorkflowExecutionRequest) async throws -> WorkflowExecution {
        let response = try await engine.startWorkflowExecution(request)
        return WorkflowExecution(workflowID: request.workflowID, runID: response.runID)
    }

    /// The WorkflowExecutionStarted attributes of `execution`.
    func started(_ execution: WorkflowExecution) async throws -> WorkflowExecutionStartedEventAttributes {
        guard case .workflowExecutionStarted(let a)? = try await history(execution).first?.attributes else {
            Issue.record("no WorkflowExecutionStarted")
            throw SpoolError(.notFound, "no WorkflowExecutionStarted")
        }
        return a
    }

    /// Closes the engine, compacts its history offline and opens it again; the history checker
    /// (`spool recover --mode check`) finds nothing wrong before or after.
    func compactAndReopen() async throws {
        try await engine.close()
        #expect(try SpoolEngine.verifyHistory(directory: directory + "/data").findings == [])
        _ = try SpoolEngine.compactHistory(directory: directory + "/data", configuration: HistoryFixture.configuration(clock))
        #expect(try SpoolEngine.verifyHistory(directory: directory + "/data").findings == [])
        engine = try Self.open(directory, clock: clock, durability: durability)
    }
}

func request(_ workflowID: String = "wf", runTimeout: Duration? = nil, executionTimeout: Duration? = nil,
             retry: RetryPolicy? = nil, cron: String = "", memo: [String: Payload] = [:],
             searchAttributes: [String: Payload] = [:], startDelay: Duration? = nil) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest(workflowID: workflowID, workflowType: "order", taskQueue: "q", input: .json("1"),
                                  workflowRunTimeout: runTimeout, header: Header(fields: ["trace": .json("\"t1\"")]),
                                  workflowExecutionTimeout: executionTimeout, retryPolicy: retry, cronSchedule: cron, memo: memo,
                                  searchAttributes: searchAttributes, startDelay: startDelay)
}

@Suite struct SpoolEngineMemoAndSearchAttributeTests {
    @Test func startUpsertAndModifyAreRecordedMergedAndDescribed() async throws {
        let h = try EngineHarness()
        // Search attributes must be registered in the namespace, as in Temporal.
        try h.engine.addSearchAttributes(["CustomKeywordField": .keyword, "CustomIntField": .int, "Stale": .keyword, "Tags": .keywordList,
                                          "s": .int, "Stage": .keyword])
        let run = try await h.start(request(memo: ["owner": .json("\"ann\"")],
                                            searchAttributes: ["CustomKeywordField": .json("\"a\""), "Stale": .json("\"x\"")]))
        _ = try await h.completeWorkflowTask([
            .upsertWorkflowSearchAttributes(.init(searchAttributes: ["CustomKeywordField": .json("\"b\""), "Stale": .temporalNil,
                                                                     "CustomIntField": .json("7")])),
            .modifyWorkflowProperties(.init(upsertedMemo: ["owner": .json("\"bob\""), "note": .json("\"n\"")])),
        ])
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskCompleted, .upsertWorkflowSearchAttributes, .workflowPropertiesModified])
        let started = try await h.started(run)
        #expect(started.memo == ["owner": .json("\"ann\"")])
        #expect(started.searchAttributes == ["CustomKeywordField": .json("\"a\""), "Stale": .json("\"x\"")])
        // Temporal's events carry what the command sent, including the removal, and name WorkflowTaskCompleted (4).
        #expect(history[4].attributes == .upsertWorkflowSearchAttributes(.init(
            workflowTaskCompletedEventID: 4,
            searchAttributes: ["CustomKeywordField": .json("\"b\""), "Stale": .temporalNil, "CustomIntField": .json("7")])))
        #expect(history[5].attributes == .workflowPropertiesModified(.init(
            workflowTaskCompletedEventID: 4, upsertedMemo: ["owner": .json("\"bob\""), "note": .json("\"n\"")])))

        // The run's current set: upserted keys merged in, the encoded nil removed.
        let merged: [String: Payload] = ["CustomKeywordField": .json("\"b\""), "CustomIntField": .json("7")]
        let memo: [String: Payload] = ["owner": .json("\"bob\""), "note": .json("\"n\"")]
        #expect(try h.describe(run).executionInfo.searchAttributes == merged)
        #expect(try h.describe(run).executionInfo.memo == memo)
        let listed = try #require(h.engine.listWorkflowExecutions().first)
        #expect(listed.searchAttributes == merged && listed.memo == memo)

        let before = try await h.snapshot()
        try await h.crashAndReopen()
        expectSameState(before, try await h.snapshot())
        try await h.closeAndReopen()
        expectSameState(before, try await h.snapshot())
    }

    @Test func anEmptyListRemovesAKeyAndEmptyCommandsFailTheWorkflowTask() async throws {
        let h = try EngineHarness()
        // Search attributes must be registered in the namespace, as in Temporal.
        try h.engine.addSearchAttributes(["CustomKeywordField": .keyword, "CustomIntField": .int, "Stale": .keyword, "Tags": .keywordList,
                                          "s": .int, "Stage": .keyword])
        let run = try await h.start(request(searchAttributes: ["Tags": .json("[\"x\"]")]))
        _ = try await h.completeWorkflowTask([.upsertWorkflowSearchAttributes(.init(searchAttributes: ["Tags": .json("[]")]))])
        #expect(try h.describe(run).executionInfo.searchAttributes == [:])

        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        _ = try await h.completeWorkflowTask([.upsertWorkflowSearchAttributes(.init(searchAttributes: [:]))])
        guard case .workflowTaskFailed(let failed)? = try await h.history(run).last(where: { $0.eventType == .workflowTaskFailed })?.attributes
        else { Issue.record("no WorkflowTaskFailed"); return }
        #expect(failed.cause == .badSearchAttributes)
        // A second failure in a row would be a transient attempt (nothing written): a new event
        // makes the next task attempt 1 again, whose failure is written.
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "again")
        _ = try await h.completeWorkflowTask([.modifyWorkflowProperties(.init(upsertedMemo: [:]))])
        guard case .workflowTaskFailed(let failed2)? = try await h.history(run).last(where: { $0.eventType == .workflowTaskFailed })?.attributes
        else { Issue.record("no WorkflowTaskFailed"); return }
        #expect(failed2.cause == .badModifyWorkflowPropertiesAttributes)
    }

    @Test func signalWithStartRecordsMemoAndSearchAttributes() async throws {
        let h = try EngineHarness()
        // Search attributes must be registered in the namespace, as in Temporal.
        try h.engine.addSearchAttributes(["CustomKeywordField": .keyword, "CustomIntField": .int, "Stale": .keyword, "Tags": .keywordList,
                                          "s": .int, "Stage": .keyword])
        var start = request(memo: ["m": .json("1")], searchAttributes: ["s": .json("2")])
        start.workflowIDConflictPolicy = .useExisting
        let response = try await h.engine.signalWithStartWorkflowExecution(start, signalName: "go")
        let run = WorkflowExecution(workflowID: "wf", runID: response.runID)
        let started = try await h.started(run)
        #expect(started.memo == ["m": .json("1")] && started.searchAttributes == ["s": .json("2")])
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowExecutionSignaled, .workflowTaskScheduled])
    }
}

@Suite struct SpoolEngineContinueAsNewOptionsTests {
    @Test func continueAsNewCarriesWhatTemporalCarries() async throws {
        let h = try EngineHarness()
        // Search attributes must be registered in the namespace, as in Temporal.
        try h.engine.addSearchAttributes(["CustomKeywordField": .keyword, "CustomIntField": .int, "Stale": .keyword, "Tags": .keywordList,
                                          "s": .int, "Stage": .keyword])
        let policy = RetryPolicy(initialInterval: .seconds(2), maximumAttempts: 5)
        let first = try await h.start(request(executionTimeout: .seconds(3600), retry: policy,
                                              memo: ["owner": .json("\"ann\"")], searchAttributes: ["Stage": .json("\"one\"")]))
        let expiration = runOptionsEpoch.advanced(by: .seconds(3600))
        #expect(try await h.started(first).workflowExecutionExpirationTime == expiration)
        await h.advance(.seconds(1))
        _ = try await h.completeWorkflowTask([
            .modifyWorkflowProperties(.init(upsertedMemo: ["owner": .json("\"bob\"")])),
            .continueAsNewWorkflowExecution(.init(
                input: .json("2"), header: Header(fields: ["trace": .json("\"t2\"")]), backoffStartInterval: .seconds(5),
                failure: .application("carried", type: "Carried"), lastCompletionResult: .json("\"last\""),
                searchAttributes: ["Stage": .json("\"two\"")])),
        ])
        let history = try await h.history(first)
        #expect(history.map(\.eventType).suffix(2) == [.workflowPropertiesModified, .workflowExecutionContinuedAsNew])
        guard case .workflowExecutionContinuedAsNew(let continued)? = history.last?.attributes else { Issue.record("no CAN"); return }
        #expect(continued.workflowTaskCompletedEventID == 4)
        #expect(continued.backoffStartInterval == .seconds(5))
        #expect(continued.initiator == .workflow)
        #expect(continued.failure == .application("carried", type: "Carried"))
        #expect(continued.lastCompletionResult == .json("\"last\""))
        // Memo inherited (as modified); search attributes from the command.
        #expect(continued.memo == ["owner": .json("\"bob\"")])
        #expect(continued.searchAttributes == ["Stage": .json("\"two\"")])

        let second = WorkflowExecution(workflowID: "wf", runID: continued.newExecutionRunID)
        let started = try await h.started(second)
        #expect(started.continuedExecutionRunID == first.runID)
        #expect(started.firstExecutionRunID == first.runID)
        #expect(started.originalExecutionRunID == second.runID)
        #expect(started.initiator == .workflow)
        #expect(started.attempt == 1)
        #expect(started.continuedFailure == .application("carried", type: "Carried"))
        #expect(started.lastCompletionResult == .json("\"last\""))
        #expect(started.firstWorkflowTaskBackoff == .seconds(5))
        #expect(started.workflowExecutionTimeout == .seconds(3600))
        #expect(started.workflowExecutionExpirationTime == expiration)
        #expect(started.retryPolicy == policy)
        #expect(started.header == Header(fields: ["trace": .json("\"t2\"")]))
        #expect(started.memo == ["owner": .json("\"bob\"")])
        #expect(started.searchAttributes == ["Stage": .json("\"two\"")])
        // The first workflow task waits out the backoff (Temporal writes it when the backoff ends).
        #expect(try await h.eventTypes(second) == [.workflowExecutionStarted])
        #expect(try await h.pollWorkflowTask() == nil)
        await h.advance(.seconds(5))
        let scheduled = try #require(try await h.history(second).last)
        #expect(scheduled.eventType == .workflowTaskScheduled && scheduled.eventID == 2)
        #expect(scheduled.eventTime == runOptionsEpoch.advanced(by: .seconds(6)))

        let before = try await h.snapshot()
        try await h.compactAndReopen()
        expectSameState(before, try await h.snapshot())
    }

    @Test func aContinueAsNewWithTheRetryInitiatorRaisesTheAttempt() async throws {
        let h = try EngineHarness()
        let first = try await h.start(request())
        _ = try await h.completeWorkflowTask([.continueAsNewWorkflowExecution(.init(initiator: .retry))])
        let next = try #require(try h.describe(first).newExecutionRunID)
        let started = try await h.started(WorkflowExecution(workflowID: "wf", runID: next))
        #expect(started.initiator == .retry && started.attempt == 2)
    }
}

@Suite struct SpoolEngineStartDelayTests {
    @Test func theFirstWorkflowTaskWaitsForTheDelayAndAPlainSignalDoesNotEndIt() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start(request(startDelay: .seconds(10)))
        #expect(try await h.started(run).firstWorkflowTaskBackoff == .seconds(10))
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted])
        await h.advance(.seconds(4))
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "early")
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowExecutionSignaled])
        #expect(try await h.pollWorkflowTask() == nil)
        #expect(try h.describe(run).executionInfo.executionTime == runOptionsEpoch.advanced(by: .seconds(10)))

        // Durable: a crash during the delay keeps it.
        try await h.crashAndReopen()
        await h.advance(.seconds(5))
        #expect(try await h.pollWorkflowTask() == nil)
        await h.advance(.seconds(1))
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowExecutionSignaled, .workflowTaskScheduled])
        #expect(history[2].eventTime == runOptionsEpoch.advanced(by: .seconds(10)))
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.workflowExecution == run)
    }

    @Test func signalWithStartOnADelayedRunEndsTheDelay() async throws {
        let h = try EngineHarness()
        let run = try await h.start(request(startDelay: .seconds(60)))
        var again = request(startDelay: .seconds(60))
        again.workflowIDConflictPolicy = .useExisting
        let response = try await h.engine.signalWithStartWorkflowExecution(again, signalName: "go")
        #expect(response.runID == run.runID && !response.started)
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowExecutionSignaled, .workflowTaskScheduled])
        #expect(try await h.pollWorkflowTask() != nil)
    }

    @Test func aSignalWithStartThatStartsARunKeepsItsDelayAndDeliversTheSignalWithTheFirstTask() async throws {
        let h = try EngineHarness()
        var start = request(startDelay: .seconds(30))
        start.workflowIDConflictPolicy = .useExisting
        let response = try await h.engine.signalWithStartWorkflowExecution(start, signalName: "go")
        let run = WorkflowExecution(workflowID: "wf", runID: response.runID)
        #expect(response.started)
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowExecutionSignaled])
        #expect(try await h.pollWorkflowTask() == nil)
        await h.advance(.seconds(30))
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.history.map(\.eventType) == [.workflowExecutionStarted, .workflowExecutionSignaled, .workflowTaskScheduled,
                                                  .workflowTaskStarted])
    }

    @Test func badRunOptionsAreRejectedWithWhatIsWrong() async throws {
        let h = try EngineHarness()
        for (bad, words) in [(request(startDelay: .seconds(-1)), "startDelay"),
                             (request(executionTimeout: .zero), "workflowExecutionTimeout"),
                             (request(retry: RetryPolicy(backoffCoefficient: 0.5)), "backoffCoefficient"),
                             (request(cron: "* * *"), "expected 5 fields"),
                             (request(cron: "*/5 * * * *", startDelay: .seconds(1)), "start delay")] {
            await #expect { try await h.engine.startWorkflowExecution(bad) } throws: { error in
                isSpoolError(error, .invalidArgument) && "\(error)".contains(words)
            }
        }
    }
}

@Suite struct SpoolEngineWorkflowRetryTests {
    @Test func aFailedRunIsRetriedUntilItsAttemptsAreUsed() async throws {
        let h = try EngineHarness()
        let policy = RetryPolicy(initialInterval: .seconds(2), backoffCoefficient: 2, maximumAttempts: 3)
        let first = try await h.start(request(retry: policy, memo: ["m": .json("1")]))
        let failure = Failure.application("boom", type: "Boom")
        _ = try await h.completeWorkflowTask([.modifyWorkflowProperties(.init(upsertedMemo: ["m": .json("2")])),
                                              .failWorkflowExecution(.init(failure: failure))])
        guard case .workflowExecutionFailed(let failed)? = try await h.history(first).last?.attributes else { Issue.record("no failure"); return }
        #expect(failed.retryState == .inProgress && failed.workflowTaskCompletedEventID == 4)
        let second = WorkflowExecution(workflowID: "wf", runID: failed.newExecutionRunID)
        #expect(!failed.newExecutionRunID.isEmpty)
        #expect(try h.describe(first).newExecutionRunID == second.runID)
        let started = try await h.started(second)
        #expect(started.attempt == 2)
        #expect(started.initiator == .retry)
        #expect(started.continuedFailure == failure)
        #expect(started.continuedExecutionRunID == first.runID && started.firstExecutionRunID == first.runID)
        #expect(started.firstWorkflowTaskBackoff == .seconds(2))
        #expect(started.input == .json("1") && started.header == Header(fields: ["trace": .json("\"t1\"")]))
        // The memo the run started with (upserts are not carried), no last completion result.
        #expect(started.memo == ["m": .json("1")] && started.retryPolicy == policy)
        #expect(started.lastCompletionResult == nil)
        // The workflow id resolves to the newest run.
        #expect(try h.describe(WorkflowExecution(workflowID: "wf")).executionInfo.execution == second)
        #expect(try await h.engine.getWorkflowExecutionHistory(execution: WorkflowExecution(workflowID: "wf")).execution == second)

        await h.advance(.seconds(2))
        _ = try await h.completeWorkflowTask([.failWorkflowExecution(.init(failure: failure))])
        let third = WorkflowExecution(workflowID: "wf", runID: try #require(try h.describe(second).newExecutionRunID))
        #expect(try await h.started(third).attempt == 3)
        #expect(try await h.started(third).firstWorkflowTaskBackoff == .seconds(4))
        await h.advance(.seconds(4))
        _ = try await h.completeWorkflowTask([.failWorkflowExecution(.init(failure: failure))])
        guard case .workflowExecutionFailed(let last)? = try await h.history(third).last?.attributes else { Issue.record("no failure"); return }
        #expect(last.retryState == .maximumAttemptsReached && last.newExecutionRunID.isEmpty)
        #expect(h.engine.listWorkflowExecutions().count == 3)

        let before = try await h.snapshot()
        try await h.compactAndReopen()
        expectSameState(before, try await h.snapshot())
    }

    @Test func retryStatesWhenARunIsNotRetried() async throws {
        let h = try EngineHarness()
        func failedState(_ id: String, _ retry: RetryPolicy?, _ failure: Failure) async throws -> RetryState? {
            let run = try await h.start(request(id, retry: retry))
            let task = try #require(try await h.pollWorkflowTask())
            try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.failWorkflowExecution(.init(failure: failure))])
            guard case .workflowExecutionFailed(let a)? = try await h.history(run).last?.attributes else { return nil }
            #expect(a.newExecutionRunID.isEmpty)
            return a.retryState
        }
        #expect(try await failedState("none", nil, .application("x")) == .retryPolicyNotSet)
        #expect(try await failedState("flag", RetryPolicy(), .application("x", nonRetryable: true)) == .nonRetryableFailure)
        #expect(try await failedState("type", RetryPolicy(nonRetryableErrorTypes: ["Fatal"]), .application("x", type: "Fatal")) == .nonRetryableFailure)
        #expect(try await failedState("one", RetryPolicy(maximumAttempts: 1), .application("x")) == .maximumAttemptsReached)
        // Temporal checks retryability before the attempts.
        #expect(try await failedState("both", RetryPolicy(maximumAttempts: 1), .application("x", nonRetryable: true)) == .nonRetryableFailure)
        // Cancel and terminate failures are never retried.
        #expect(try await failedState("canceled", RetryPolicy(), Failure(message: "c", info: .canceled(CanceledFailureInfo(details: nil)))) == .nonRetryableFailure)
    }

    @Test func aTimedOutRunIsRetriedWithTheTimeoutFailureAndTheFailuresOwnDelayWins() async throws {
        let h = try EngineHarness()
        let first = try await h.start(request(runTimeout: .seconds(10), retry: RetryPolicy(initialInterval: .seconds(3))))
        await h.advance(.seconds(10))
        guard case .workflowExecutionTimedOut(let timedOut)? = try await h.history(first).last?.attributes else { Issue.record("no timeout"); return }
        #expect(timedOut.retryState == .inProgress && !timedOut.newExecutionRunID.isEmpty)
        let second = WorkflowExecution(workflowID: "wf", runID: timedOut.newExecutionRunID)
        let started = try await h.started(second)
        #expect(started.continuedFailure == Failure(message: "workflow timeout", source: "Server",
                                                    info: .timeout(TimeoutFailureInfo(timeoutType: .startToClose, lastHeartbeatDetails: nil))))
        #expect(started.firstWorkflowTaskBackoff == .seconds(3) && started.attempt == 2)
        // The run timeout counts from the end of the backoff.
        await h.advance(.seconds(3))
        _ = try await h.completeWorkflowTask([.failWorkflowExecution(.init(failure: .application("x", nextRetryDelay: .seconds(42))))])
        let third = try #require(try h.describe(second).newExecutionRunID)
        #expect(try await h.started(WorkflowExecution(workflowID: "wf", runID: third)).firstWorkflowTaskBackoff == .seconds(42))
    }

    @Test func theExecutionTimeoutSpansTheChainAndEndsItWithRetryStateTimeout() async throws {
        let h = try EngineHarness()
        let first = try await h.start(request(runTimeout: .seconds(100), executionTimeout: .seconds(60),
                                              retry: RetryPolicy(initialInterval: .seconds(1))))
        let started = try await h.started(first)
        #expect(started.workflowRunTimeout == .seconds(60))   // capped by the execution timeout
        #expect(started.workflowExecutionExpirationTime == runOptionsEpoch.advanced(by: .seconds(60)))
        await h.advance(.seconds(10))
        _ = try await h.completeWorkflowTask([.failWorkflowExecution(.init(failure: .application("x")))])
        let second = WorkflowExecution(workflowID: "wf", runID: try #require(try h.describe(first).newExecutionRunID))
        #expect(try await h.started(second).workflowExecutionExpirationTime == runOptionsEpoch.advanced(by: .seconds(60)))
        #expect(try h.describe(second).executionExpirationTime == runOptionsEpoch.advanced(by: .seconds(60)))
        await h.advance(.seconds(49))
        #expect(try h.describe(second).executionInfo.status == .running)
        await h.advance(.seconds(1))
        guard case .workflowExecutionTimedOut(let timedOut)? = try await h.history(second).last?.attributes else { Issue.record("no timeout"); return }
        #expect(timedOut.retryState == .timeout && timedOut.newExecutionRunID.isEmpty)
        #expect(h.engine.listWorkflowExecutions().count == 2)
    }

    @Test func aRetryThatWouldEndPastTheExpirationIsNotStarted() async throws {
        let h = try EngineHarness()
        let run = try await h.start(request(executionTimeout: .seconds(60), retry: RetryPolicy(initialInterval: .seconds(30))))
        await h.advance(.seconds(40))
        _ = try await h.completeWorkflowTask([.failWorkflowExecution(.init(failure: .application("x")))])
        guard case .workflowExecutionFailed(let failed)? = try await h.history(run).last?.attributes else { Issue.record("no failure"); return }
        #expect(failed.retryState == .timeout && failed.newExecutionRunID.isEmpty)
    }
}

@Suite struct SpoolEngineCronTests {
    @Test func cronRunsFollowTheScheduleAndHandOnResultsAndFailures() async throws {
        let h = try EngineHarness()
        try h.engine.addSearchAttributes(["Stage": .int])
        // Epoch 15:06:40; every ten minutes: first task at 15:10:00.
        let first = try await h.start(request(cron: "*/10 * * * *"))
        #expect(try await h.started(first).firstWorkflowTaskBackoff == .seconds(200))
        #expect(try await h.started(first).initiator == .cronSchedule)  // as Temporal's frontend marks it
        await h.advance(.seconds(199))
        #expect(try await h.pollWorkflowTask() == nil)
        await h.advance(.seconds(61))                                    // 15:11:00
        _ = try await h.completeWorkflowTask([.upsertWorkflowSearchAttributes(.init(searchAttributes: ["Stage": .json("1")])),
                                              .completeWorkflowExecution(.init(result: .json("\"r1\"")))])
        guard case .workflowExecutionCompleted(let completed)? = try await h.history(first).last?.attributes else { Issue.record("no completion"); return }
        let second = WorkflowExecution(workflowID: "wf", runID: completed.newExecutionRunID)
        #expect(!completed.newExecutionRunID.isEmpty)
        let started = try await h.started(second)
        #expect(started.initiator == .cronSchedule && started.attempt == 1)
        #expect(started.lastCompletionResult == .json("\"r1\"") && started.continuedFailure == nil)
        #expect(started.firstWorkflowTaskBackoff == .seconds(540))      // until 15:20:00
        #expect(started.cronSchedule == "*/10 * * * *" && started.continuedExecutionRunID == first.runID)
        #expect(started.searchAttributes == [:])                         // the start's, not the upserted

        await h.advance(.seconds(570))                                   // 15:20:30
        let failure = Failure.application("bad", type: "Bad")
        _ = try await h.completeWorkflowTask([.failWorkflowExecution(.init(failure: failure))])
        guard case .workflowExecutionFailed(let failed)? = try await h.history(second).last?.attributes else { Issue.record("no failure"); return }
        #expect(failed.retryState == .retryPolicyNotSet && !failed.newExecutionRunID.isEmpty)
        let third = WorkflowExecution(workflowID: "wf", runID: failed.newExecutionRunID)
        let thirdStarted = try await h.started(third)
        #expect(thirdStarted.continuedFailure == failure)
        #expect(thirdStarted.lastCompletionResult == .json("\"r1\""))   // the last completed run's
        #expect(thirdStarted.firstWorkflowTaskBackoff == .seconds(570)) // until 15:30:00

        // Terminate ends the chain.
        try await h.engine.terminateWorkflowExecution(execution: third)
        #expect(try h.describe(third).newExecutionRunID == nil)
        #expect(h.engine.listWorkflowExecutions().count == 3)

        let before = try await h.snapshot()
        try await h.compactAndReopen()
        expectSameState(before, try await h.snapshot())
    }

    @Test func aCanceledCronRunEndsTheChain() async throws {
        let h = try EngineHarness()
        let run = try await h.start(request(cron: "@hourly"))
        await h.advance(.seconds(3200))                                  // 16:00:00
        _ = try await h.completeWorkflowTask([.cancelWorkflowExecution(.init())])
        #expect(try h.describe(run).newExecutionRunID == nil)
        #expect(h.engine.listWorkflowExecutions().count == 1)
    }
}

@Suite struct CronScheduleTests {
    /// Seconds since the epoch of a UTC date, computed independently of the parser's calendar
    /// (days counted by hand from 1970).
    static func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int, _ second: Int = 0) -> Timestamp {
        var days = 0
        for y in 1970..<year { days += (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 366 : 365 }
        let lengths = [31, (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for m in 0..<(month - 1) { days += lengths[m] }
        days += day - 1
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        return Timestamp(nanosecondsSinceEpoch: seconds * 1_000_000_000)
    }

    @Test func theEpochOfTheEngineTestsIsWhatTheyAssume() {
        #expect(Self.utc(2025, 6, 15, 15, 6, 40) == runOptionsEpoch)
    }

    @Test(arguments: [
        ("*/15 * * * *", CronScheduleTests.utc(2025, 6, 15, 10, 7, 30), CronScheduleTests.utc(2025, 6, 15, 10, 15)),
        ("*/15 * * * *", CronScheduleTests.utc(2025, 6, 15, 10, 15), CronScheduleTests.utc(2025, 6, 15, 10, 30)),          // strictly after
        ("0 9 * * MON-FRI", CronScheduleTests.utc(2025, 6, 13, 10, 0), CronScheduleTests.utc(2025, 6, 16, 9, 0)),        // Friday → Monday
        ("30 23 31 12 *", CronScheduleTests.utc(2025, 6, 1, 0, 0), CronScheduleTests.utc(2025, 12, 31, 23, 30)),
        ("@monthly", CronScheduleTests.utc(2025, 1, 31, 12, 0), CronScheduleTests.utc(2025, 2, 1, 0, 0)),
        ("@yearly", CronScheduleTests.utc(2025, 6, 15, 0, 0), CronScheduleTests.utc(2026, 1, 1, 0, 0)),
        ("@annually", CronScheduleTests.utc(2025, 6, 15, 0, 0), CronScheduleTests.utc(2026, 1, 1, 0, 0)),
        ("@weekly", CronScheduleTests.utc(2025, 6, 15, 15, 0), CronScheduleTests.utc(2025, 6, 22, 0, 0)),                // Sunday → next Sunday
        ("@daily", CronScheduleTests.utc(2025, 6, 15, 15, 0), CronScheduleTests.utc(2025, 6, 16, 0, 0)),
        ("@midnight", CronScheduleTests.utc(2025, 6, 15, 0, 0), CronScheduleTests.utc(2025, 6, 16, 0, 0)),
        ("@hourly", CronScheduleTests.utc(2025, 6, 15, 15, 6, 40), CronScheduleTests.utc(2025, 6, 15, 16, 0)),
        ("0 0 29 2 *", CronScheduleTests.utc(2025, 3, 1, 0, 0), CronScheduleTests.utc(2028, 2, 29, 0, 0)),               // next leap day
        ("0 12 1 * 1", CronScheduleTests.utc(2025, 6, 1, 13, 0), CronScheduleTests.utc(2025, 6, 2, 12, 0)),              // day of month OR Monday
        ("0 12 1 * *", CronScheduleTests.utc(2025, 6, 1, 13, 0), CronScheduleTests.utc(2025, 7, 1, 12, 0)),
        ("5,35 8-9 * jan,JUL sun", CronScheduleTests.utc(2025, 6, 30, 0, 0), CronScheduleTests.utc(2025, 7, 6, 8, 5)),   // lists, ranges, names
        ("10/20 * * * *", CronScheduleTests.utc(2025, 6, 15, 10, 51), CronScheduleTests.utc(2025, 6, 15, 11, 10)),       // n/step: n to the end
        ("@every 90s", CronScheduleTests.utc(2025, 6, 15, 10, 0, 0), CronScheduleTests.utc(2025, 6, 15, 10, 1, 30)),
        ("@every 1h30m", CronScheduleTests.utc(2025, 6, 15, 10, 0, 0), CronScheduleTests.utc(2025, 6, 15, 11, 30, 0)),
    ])
    func nextFireTimes(expression: String, after: Timestamp, expected: Timestamp) throws {
        #expect(try CronSchedule(expression).next(after: after) == expected)
    }

    @Test func aScheduleThatNeverFiresHasNoNextTime() throws {
        #expect(try CronSchedule("0 0 30 2 *").next(after: Self.utc(2025, 1, 1, 0, 0)) == nil)
    }

    @Test(arguments: [("* * *", "expected 5 fields"), ("60 * * * *", "the minute field '60' has 60"),
                      ("* 24 * * *", "hour field"), ("* * 0 * *", "day of month"), ("0 0 * FOO *", "'FOO'"),
                      ("0 0 * * 7", "day of week"), ("5-1 * * * *", "runs backwards"), ("*/0 * * * *", "step"),
                      ("@weekly 1", "takes no fields"), ("@sometimes", "unknown descriptor"), ("@every", "one duration"),
                      ("@every 5 parsecs", "one duration"), ("@every 5x", "not a duration"), ("", "empty"),
                      ("CRON_TZ=Europe/Paris 0 0 * * *", "UTC")])
    func badExpressionsNameTheProblem(expression: String, words: String) {
        #expect { try CronSchedule(expression) } throws: { error in
            isSpoolError(error, .invalidArgument) && "\(error)".contains(words)
        }
    }
}
