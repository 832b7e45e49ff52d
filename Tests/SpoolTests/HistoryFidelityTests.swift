import SpoolMatching
import SpoolTestSupport
import Testing
@testable import Spool

/// What clients and workers send in the fidelity runs; the expected history values are written
/// from these and from Temporal's rules, never read back from Spool.
enum Sent {
    static func payload(_ tag: String) -> Payload {
        Payload(metadata: ["encoding": Array("json/plain".utf8), "tag": Array(tag.utf8) + [0x00, 0xFF]], data: Array("\"\(tag)\"".utf8))
    }

    /// Three payloads: with metadata, without any, and an empty `binary/null` one.
    static func payloads(_ tag: String) -> Payloads {
        [payload(tag), Payload(data: [0xFF, 0x00, 0x7F]), Payload(metadata: ["encoding": Array("binary/null".utf8)], data: [])]
    }

    static func header(_ tag: String) -> Header {
        Header(fields: ["_tracer-data": payload(tag + "-trace"), "auth": payload(tag + "-auth")])
    }

    static func userMetadata(_ tag: String) -> UserMetadata {
        UserMetadata(summary: .jsonString(tag + " summary"), details: payload(tag + "-details"))
    }

    static func stamp(_ build: String) -> WorkerVersionStamp { WorkerVersionStamp(buildID: build, useVersioning: true) }

    /// A failure four levels deep: application → activity → timeout → canceled.
    static func failure(_ tag: String, nonRetryable: Bool = false) -> Failure {
        Failure(message: "\(tag) failed", source: "PythonSDK", stackTrace: "  File \"\(tag).py\", line 1\n", encodedAttributes: payload(tag + "-encoded"),
                cause: Failure(message: "\(tag) activity", source: "PythonSDK",
                               cause: Failure(message: "\(tag) timeout", source: "Server",
                                              cause: Failure(message: "\(tag) canceled",
                                                             info: .canceled(CanceledFailureInfo(details: payloads(tag + "-canceled"), identity: "cli"))),
                                              info: .timeout(TimeoutFailureInfo(timeoutType: .heartbeat, lastHeartbeatDetails: payloads(tag + "-hb")))),
                               info: .activity(ActivityFailureInfo(scheduledEventID: 5, startedEventID: 6, identity: "w", activityType: "charge",
                                                                   activityID: "a1", retryState: .nonRetryableFailure))),
                info: .application(ApplicationFailureInfo(type: "\(tag)Error", nonRetryable: nonRetryable, details: payloads(tag + "-details"),
                                                          nextRetryDelay: .seconds(1), category: .benign)))
    }

    static let completion = WorkflowTaskCompletionMetadata(
        binaryChecksum: "sum-1", workerVersion: stamp("build-1"),
        sdkMetadata: WorkflowTaskCompletedMetadata(coreUsedFlags: [1, 2], langUsedFlags: [3], sdkName: "temporal-python", sdkVersion: "1.35.0"),
        meteringMetadata: MeteringMetadata(nonfirstLocalActivityExecutionAttempts: 4), versioningBehavior: .pinned,
        workerDeploymentName: "deploy", workerDeploymentVersion: "deploy.build-1")
}

@Suite struct HistoryFidelityTests {
    static func configuration(_ clock: ManualMatchingClock) -> SpoolEngineConfiguration {
        var configuration = HistoryFixture.configuration(clock)
        configuration.closedRunTableMergeThreshold = 1   // closing writes the closed runs into a table
        return configuration
    }

    /// Runs that write every kind of event the engine writes, with metadata-laden payloads,
    /// headers, user metadata, worker metadata and four-deep failure chains.
    static func build(_ directory: String, clock: ManualMatchingClock) async throws {
        let engine = try SpoolEngine.open(directory: directory, configuration: configuration(clock))
        func poll() async throws -> WorkflowTask { try #require(try await engine.pollWorkflowTaskQueue(taskQueue: "q", identity: "w", timeout: .zero)) }
        func advance(_ duration: Duration) async { clock.advance(by: duration); await engine.fireDueTimers() }
        // Garbage for the compaction: runs closed long before the fidelity runs.
        for i in 0..<30 {
            let run = try await engine.startWorkflowExecution(.init(workflowID: "old-\(i)", workflowType: "order", taskQueue: "old",
                                                                    input: HistoryFixture.input(i)))
            try await engine.terminateWorkflowExecution(execution: WorkflowExecution(workflowID: "old-\(i)", runID: run.runID))
        }
        clock.advance(by: .seconds(7200))

        // The main run.
        _ = try await engine.startWorkflowExecution(.init(
            workflowID: "main", workflowType: "order", taskQueue: "q", input: Sent.payloads("input"), identity: "starter",
            requestID: "req-1", header: Sent.header("start"), userMetadata: Sent.userMetadata("start")))
        let first = try await poll()
        try await engine.respondWorkflowTaskCompleted(taskToken: first.taskToken, commands: [
            .scheduleActivityTask(.init(activityID: "a1", activityType: "charge", input: Sent.payloads("a1-input"), startToCloseTimeout: .seconds(30),
                                        retryPolicy: RetryPolicy(initialInterval: .seconds(1), maximumAttempts: 3),
                                        header: Sent.header("a1"), userMetadata: Sent.userMetadata("a1"))),
            .scheduleActivityTask(.init(activityID: "a2", activityType: "ship", startToCloseTimeout: .seconds(30))),
            .scheduleActivityTask(.init(activityID: "a3", activityType: "pack", startToCloseTimeout: .seconds(5),
                                        retryPolicy: RetryPolicy(maximumAttempts: 1))),
            .startTimer(.init(timerID: "t1", startToFireTimeout: .seconds(10), userMetadata: Sent.userMetadata("t1"))),
            .startTimer(.init(timerID: "t2", startToFireTimeout: .seconds(100))),
            .recordMarker(.init(markerName: "m", details: ["x": Sent.payloads("marker-x"), "y": []], failure: Sent.failure("marker"),
                                header: Sent.header("marker"))),
        ], identity: "w", metadata: Sent.completion)
        var activities: [String: ActivityTask] = [:]
        for _ in 0..<3 {
            let task = try #require(try await engine.pollActivityTaskQueue(taskQueue: "q", identity: "w", timeout: .zero))
            activities[task.activityID] = task
        }
        let a1 = try #require(activities["a1"]), a2 = try #require(activities["a2"]), a3 = try #require(activities["a3"])
        #expect(a1.header == Sent.header("a1") && a1.input == Sent.payloads("a1-input"))
        #expect(a2.header == Header() && a2.input == nil)
        try await engine.recordActivityTaskHeartbeat(taskToken: a3.taskToken, details: Sent.payloads("a3-hb"))
        try await engine.respondActivityTaskFailed(taskToken: a1.taskToken, failure: Sent.failure("a1"),
                                                   lastHeartbeatDetails: Sent.payloads("a1-hb"), identity: "w", workerVersion: Sent.stamp("build-1"))
        await advance(.seconds(1))
        let retried = try #require(try await engine.pollActivityTaskQueue(taskQueue: "q", identity: "w", timeout: .zero))
        #expect(retried.attempt == 2 && retried.header == Sent.header("a1") && retried.heartbeatDetails == Sent.payloads("a1-hb"))
        try await engine.respondActivityTaskCompleted(taskToken: retried.taskToken, result: Sent.payloads("a1-result"), identity: "w",
                                                      workerVersion: Sent.stamp("build-1"))
        try await engine.signalWorkflowExecution(execution: WorkflowExecution(workflowID: "main"), signalName: "go",
                                                 input: Sent.payloads("signal"), identity: "signaler", header: Sent.header("signal"),
                                                 requestID: "sig-1")
        let second = try await poll()
        try await engine.respondWorkflowTaskFailed(taskToken: second.taskToken, failure: Sent.failure("wt", nonRetryable: true), identity: "w",
                                                   binaryChecksum: "sum-2", workerVersion: Sent.stamp("build-2"))
        let third = try await poll()
        try await engine.respondWorkflowTaskCompleted(taskToken: third.taskToken, commands: [
            .requestCancelActivityTask(.init(scheduledEventID: a2.taskToken.scheduledEventID)),
            .cancelTimer(.init(timerID: "t2")),
        ], identity: "w")
        try await engine.respondActivityTaskCanceled(taskToken: a2.taskToken, details: Sent.payloads("a2-canceled"), identity: "w",
                                                     workerVersion: Sent.stamp("build-3"))
        await advance(.seconds(5))    // a3's start-to-close timeout
        await advance(.seconds(5))    // t1 fires
        try await engine.requestCancelWorkflowExecution(execution: WorkflowExecution(workflowID: "main"), reason: "stop", identity: "canceler")
        let last = try await poll()
        try await engine.respondWorkflowTaskCompleted(taskToken: last.taskToken, commands: [
            .failWorkflowExecution(.init(failure: Sent.failure("workflow", nonRetryable: true))),
        ], identity: "w")

        // The other ways a run closes.
        _ = try await engine.startWorkflowExecution(.init(workflowID: "completes", workflowType: "order", taskQueue: "q"))
        _ = try await poll()
        await advance(.seconds(11))   // the workflow task times out
        try await engine.respondWorkflowTaskCompleted(taskToken: try await poll().taskToken, commands: [
            .completeWorkflowExecution(.init(result: Sent.payloads("result"))),
        ], identity: "w")
        _ = try await engine.startWorkflowExecution(.init(workflowID: "cancels", workflowType: "order", taskQueue: "q"))
        try await engine.respondWorkflowTaskCompleted(taskToken: try await poll().taskToken, commands: [
            .cancelWorkflowExecution(.init(details: Sent.payloads("cancel"))),
        ], identity: "w")
        _ = try await engine.startWorkflowExecution(.init(workflowID: "terminated", workflowType: "order", taskQueue: "q"))
        try await engine.terminateWorkflowExecution(execution: WorkflowExecution(workflowID: "terminated"), reason: "enough",
                                                    details: Sent.payloads("terminate"), identity: "admin")
        _ = try await engine.startWorkflowExecution(.init(workflowID: "continues", workflowType: "order", taskQueue: "q"))
        try await engine.respondWorkflowTaskCompleted(taskToken: try await poll().taskToken, commands: [
            .continueAsNewWorkflowExecution(.init(input: Sent.payloads("next"), header: Sent.header("next"))),
        ], identity: "w")
        _ = try await engine.startWorkflowExecution(.init(workflowID: "times-out", workflowType: "order", taskQueue: "other",
                                                          workflowRunTimeout: .seconds(5)))
        await advance(.seconds(6))
        // Open runs after them, so the fidelity runs end up in sealed segments the compaction rewrites.
        for i in 0..<80 {
            _ = try await engine.startWorkflowExecution(.init(workflowID: "filler-\(i)", workflowType: "order", taskQueue: "f",
                                                              input: HistoryFixture.input(i)))
        }
        try await engine.close()
    }

    static func events(_ view: HistoryView, _ workflowID: String) throws -> [HistoryEvent] {
        let keys = view.runs.filter { $0.hasPrefix(workflowID + "/") }
        return try #require(keys.count == 1 ? view.histories[keys[0]] : nil, "one run of \(workflowID)")
    }

    /// Checks every value the runs were sent against what the history says.
    static func checkAgainstSent(_ view: HistoryView) throws {
        let main = try events(view, "main")
        #expect(main.map(\.eventType) == [
            .workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted,
            .activityTaskScheduled, .activityTaskScheduled, .activityTaskScheduled, .timerStarted, .timerStarted, .markerRecorded,
            .activityTaskStarted, .activityTaskCompleted, .workflowTaskScheduled, .workflowExecutionSignaled, .workflowTaskStarted,
            .workflowTaskFailed, .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted,
            .activityTaskCancelRequested, .timerCanceled, .activityTaskStarted, .activityTaskCanceled, .workflowTaskScheduled,
            .activityTaskStarted, .activityTaskTimedOut, .timerFired, .workflowExecutionCancelRequested, .workflowTaskStarted,
            .workflowTaskCompleted, .workflowExecutionFailed,
        ])
        for event in main {
            switch event.attributes {
            case .workflowExecutionStarted(let a):
                #expect(a.input == Sent.payloads("input") && a.header == Sent.header("start"))
                #expect(a.identity == "starter" && a.requestID == "req-1")
                #expect(event.userMetadata == Sent.userMetadata("start"))
            case .workflowTaskCompleted(let a) where event.eventID == 4:
                let sent = Sent.completion
                #expect(a.binaryChecksum == sent.binaryChecksum && a.workerVersion == sent.workerVersion)
                #expect(a.sdkMetadata == sent.sdkMetadata && a.meteringMetadata == sent.meteringMetadata)
                #expect(a.versioningBehavior == .pinned && a.workerDeploymentName == "deploy" && a.workerDeploymentVersion == "deploy.build-1")
            case .workflowTaskCompleted(let a):
                #expect(a.sdkMetadata == nil && a.binaryChecksum.isEmpty && a.workerVersion == nil)
            case .activityTaskScheduled(let a) where a.activityID == "a1":
                #expect(a.header == Sent.header("a1") && a.input == Sent.payloads("a1-input"))
                #expect(event.userMetadata == Sent.userMetadata("a1"))
            case .activityTaskScheduled(let a):
                #expect(a.header == Header() && event.userMetadata == nil)
            case .timerStarted(let a):
                #expect(event.userMetadata == (a.timerID == "t1" ? Sent.userMetadata("t1") : nil))
            case .markerRecorded(let a):
                #expect(a.details == ["x": Sent.payloads("marker-x"), "y": []])
                #expect(a.failure == Sent.failure("marker") && a.header == Sent.header("marker"))
            case .activityTaskStarted(let a) where a.scheduledEventID == 5:
                #expect(a.attempt == 2 && a.lastFailure == Sent.failure("a1"))
            case .activityTaskCompleted(let a):
                #expect(a.result == Sent.payloads("a1-result") && a.workerVersion == Sent.stamp("build-1"))
            case .workflowExecutionSignaled(let a):
                #expect(a.input == Sent.payloads("signal") && a.header == Sent.header("signal"))
                #expect(a.requestID == "sig-1" && a.identity == "signaler")
            case .workflowTaskFailed(let a):
                #expect(a.failure == Sent.failure("wt", nonRetryable: true) && a.cause == .workflowWorkerUnhandledFailure)
                #expect(a.binaryChecksum == "sum-2" && a.workerVersion == Sent.stamp("build-2"))
            case .activityTaskCanceled(let a):
                #expect(a.details == Sent.payloads("a2-canceled") && a.workerVersion == Sent.stamp("build-3"))
            case .activityTaskTimedOut(let a):
                // Temporal's timer task: "activity <type> timeout", source Server, the last heartbeat details.
                #expect(a.failure == Failure(message: "activity StartToClose timeout", source: "Server",
                                             info: .timeout(TimeoutFailureInfo(timeoutType: .startToClose,
                                                                               lastHeartbeatDetails: Sent.payloads("a3-hb")))))
                #expect(a.retryState == .maximumAttemptsReached)
            case .workflowExecutionCancelRequested(let a):
                #expect(a.cause == "stop" && a.identity == "canceler")
            case .workflowExecutionFailed(let a):
                #expect(a.failure == Sent.failure("workflow", nonRetryable: true))
            default:
                break
            }
        }
        let completes = try events(view, "completes")
        #expect(completes.map(\.eventType).contains(.workflowTaskTimedOut))
        guard case .workflowExecutionCompleted(let completed) = completes.last?.attributes else { Issue.record("completes"); return }
        #expect(completed.result == Sent.payloads("result"))
        guard case .workflowExecutionCanceled(let canceled) = try events(view, "cancels").last?.attributes else { Issue.record("cancels"); return }
        #expect(canceled.details == Sent.payloads("cancel"))
        guard case .workflowExecutionTerminated(let terminated) = try events(view, "terminated").last?.attributes else {
            Issue.record("terminated"); return
        }
        #expect(terminated.details == Sent.payloads("terminate") && terminated.reason == "enough" && terminated.identity == "admin")
        let chain = view.runs.filter { $0.hasPrefix("continues/") }.compactMap { view.histories[$0] }
        #expect(chain.count == 2)
        for history in chain {
            switch (history.first?.attributes, history.last?.attributes) {
            case (.workflowExecutionStarted(let started)?, .workflowExecutionContinuedAsNew(let continued)?):
                #expect(started.header == Header() && continued.header == Sent.header("next") && continued.input == Sent.payloads("next"))
            case (.workflowExecutionStarted(let started)?, _):
                #expect(started.header == Sent.header("next") && started.input == Sent.payloads("next"))
            default:
                Issue.record("continues")
            }
        }
        #expect(try events(view, "times-out").last?.eventType == .workflowExecutionTimedOut)
    }

    @Test func everyEventKeepsWhatWasSentAfterReopenReplayAndCompaction() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        try await Self.build(data, clock: h.clock)
        let before = try await HistoryFixture.view(data, configuration: Self.configuration(h.clock))
        try Self.checkAgainstSent(before)
        #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock) == before)

        let summary = try SpoolEngine.compactHistory(directory: data, configuration: Self.configuration(h.clock))
        #expect(summary.log.recordsDropped > 0)
        let after = try await HistoryFixture.view(data, configuration: Self.configuration(h.clock))
        #expect(after == before)
        try Self.checkAgainstSent(after)
        #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock) == before)
    }
}
