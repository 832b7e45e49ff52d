import FoundationEssentials
import Spool
@testable import SpoolServer
import SpoolServerProtos
import SwiftProtobuf
import Synchronization
import Testing

@Suite struct TranslationTests {
    @Test func timestampsBeforeTheEpochKeepNonNegativeNanos() {
        let proto = Timestamp(nanosecondsSinceEpoch: -1).proto
        #expect(proto.seconds == -1)
        #expect(proto.nanos == 999_999_999)
        #expect(Timestamp(nanosecondsSinceEpoch: 1_500_000_000).proto.seconds == 1)
        #expect(Timestamp(nanosecondsSinceEpoch: 1_500_000_000).proto.nanos == 500_000_000)
    }

    @Test func durationsRoundTrip() {
        let duration = Duration.seconds(3) + .milliseconds(250)
        #expect(duration.proto.swift == duration)
        #expect(SpoolServer.duration(Google_Protobuf_Duration(), isSet: true) == nil)
    }

    // Values as an SDK sends them; the engine's expected values are written from the same
    // literals, not read back from a translation.
    static func protoPayload(_ metadata: [String: [UInt8]], _ data: [UInt8]) -> Temporal_Api_Common_V1_Payload {
        var payload = Temporal_Api_Common_V1_Payload()
        payload.metadata = metadata.mapValues { Data($0) }
        payload.data = Data(data)
        return payload
    }

    static let jsonMetadata: [String: [UInt8]] = ["encoding": Array("json/plain".utf8), "messageType": [0x00, 0xFF, 0x7F]]

    @Test func payloadsWithMetadataRoundTripExactly() throws {
        var proto = Temporal_Api_Common_V1_Payloads()
        proto.payloads = [Self.protoPayload(Self.jsonMetadata, Array("\"Spool\"".utf8)),
                          Self.protoPayload([:], []),
                          Self.protoPayload(["encoding": Array("binary/null".utf8)], [])]
        let engine = try #require(payloads(proto, isSet: true))
        #expect(engine == [Payload(metadata: Self.jsonMetadata, data: Array("\"Spool\"".utf8)),
                           Payload(metadata: [:], data: []),
                           Payload(metadata: ["encoding": Array("binary/null".utf8)], data: [])])
        let back = protoPayloads(engine)
        #expect(back == proto)
        // Same bytes on the wire (SwiftProtobuf writes map entries sorted when asked to be deterministic).
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        #expect(try back.serializedBytes(options: options) as [UInt8] == proto.serializedBytes(options: options))
        #expect(payloads(proto, isSet: false) == nil)
        #expect(payloads(Temporal_Api_Common_V1_Payloads(), isSet: true) == [])
    }

    @Test func failuresWithTheirCauseChainRoundTripExactly() throws {
        // application → activity → timeout → canceled: four levels, every kind's fields set.
        var canceled = ProtoFailure()
        canceled.message = "canceled by user"
        canceled.source = "GoSDK"
        var canceledInfo = Temporal_Api_Failure_V1_CanceledFailureInfo()
        canceledInfo.details.payloads = [Self.protoPayload(Self.jsonMetadata, [1, 2, 3])]
        canceledInfo.identity = "cli@host"
        canceled.canceledFailureInfo = canceledInfo

        var timeout = ProtoFailure()
        timeout.message = "activity Heartbeat timeout"
        timeout.source = "Server"
        var timeoutInfo = Temporal_Api_Failure_V1_TimeoutFailureInfo()
        timeoutInfo.timeoutType = .heartbeat
        timeoutInfo.lastHeartbeatDetails.payloads = [Self.protoPayload(["encoding": Array("binary/plain".utf8)], [9, 9])]
        timeout.timeoutFailureInfo = timeoutInfo
        timeout.cause = canceled

        var activity = ProtoFailure()
        activity.message = "activity error"
        activity.source = "PythonSDK"
        var activityInfo = Temporal_Api_Failure_V1_ActivityFailureInfo()
        activityInfo.scheduledEventID = 5
        activityInfo.startedEventID = 6
        activityInfo.identity = "worker-1"
        activityInfo.activityType.name = "charge"
        activityInfo.activityID = "1"
        activityInfo.retryState = .maximumAttemptsReached
        activity.activityFailureInfo = activityInfo
        activity.cause = timeout

        var top = ProtoFailure()
        top.message = "Encoded failure"
        top.source = "TypeScriptSDK"
        top.stackTrace = "at charge (charge.ts:12)\nat main (main.ts:3)"
        top.encodedAttributes = Self.protoPayload(["encoding": Array("json/plain".utf8)], Array("{\"message\":\"x\"}".utf8))
        var application = Temporal_Api_Failure_V1_ApplicationFailureInfo()
        application.type = "PaymentError"
        application.nonRetryable = true
        application.details.payloads = [Self.protoPayload(Self.jsonMetadata, [4]), Self.protoPayload([:], [])]
        application.nextRetryDelay = Google_Protobuf_Duration(seconds: 2, nanos: 500_000_000)
        application.category = .benign
        top.applicationFailureInfo = application
        top.cause = activity

        let expected = Failure(
            message: "Encoded failure", source: "TypeScriptSDK", stackTrace: "at charge (charge.ts:12)\nat main (main.ts:3)",
            encodedAttributes: Payload(metadata: ["encoding": Array("json/plain".utf8)], data: Array("{\"message\":\"x\"}".utf8)),
            cause: Failure(
                message: "activity error", source: "PythonSDK",
                cause: Failure(
                    message: "activity Heartbeat timeout", source: "Server",
                    cause: Failure(message: "canceled by user", source: "GoSDK",
                                   info: .canceled(CanceledFailureInfo(details: [Payload(metadata: Self.jsonMetadata, data: [1, 2, 3])],
                                                                       identity: "cli@host"))),
                    info: .timeout(TimeoutFailureInfo(timeoutType: .heartbeat,
                                                      lastHeartbeatDetails: [.binary([9, 9])]))),
                info: .activity(ActivityFailureInfo(scheduledEventID: 5, startedEventID: 6, identity: "worker-1",
                                                    activityType: "charge", activityID: "1", retryState: .maximumAttemptsReached))),
            info: .application(ApplicationFailureInfo(type: "PaymentError", nonRetryable: true,
                                                       details: [Payload(metadata: Self.jsonMetadata, data: [4]), Payload(data: [])],
                                                       nextRetryDelay: .milliseconds(2500), category: .benign)))
        let engine = Failure(top)
        #expect(engine == expected)
        #expect(engine.proto == top)
        #expect(engine.cause?.cause?.cause?.cause == nil)
    }

    @Test func terminatedAndServerFailuresKeepTheirKind() {
        var terminated = ProtoFailure()
        terminated.message = "terminated"
        terminated.terminatedFailureInfo.identity = "admin"
        #expect(Failure(terminated) == Failure(message: "terminated", info: .terminated(TerminatedFailureInfo(identity: "admin"))))
        #expect(Failure(terminated).proto == terminated)
        var server = ProtoFailure()
        server.message = "BadScheduleActivityAttributes: no"
        server.serverFailureInfo.nonRetryable = true
        #expect(Failure(server) == .server("BadScheduleActivityAttributes: no", nonRetryable: true))
        #expect(Failure(server).proto == server)
    }

    @Test func timeoutFailuresSayWhichTimeout() {
        let proto = Failure.timeout(.heartbeat).proto
        #expect(proto.timeoutFailureInfo.timeoutType == .heartbeat)
        #expect(proto.source == "Server")
        #expect(proto.message == "activity Heartbeat timeout")
        #expect(Failure(proto) == .timeout(.heartbeat))
    }

    @Test func aScheduleActivityCommandKeepsItsHeaderAndUserMetadata() throws {
        var attributes = Temporal_Api_Command_V1_ScheduleActivityTaskCommandAttributes()
        attributes.activityID = "1"
        attributes.activityType.name = "charge"
        attributes.header.fields = ["_tracer-data": Self.protoPayload(Self.jsonMetadata, Array("{}".utf8))]
        attributes.startToCloseTimeout = Google_Protobuf_Duration(seconds: 5)
        var command = Temporal_Api_Command_V1_Command()
        command.commandType = .scheduleActivityTask
        command.scheduleActivityTaskCommandAttributes = attributes
        command.userMetadata.summary = Self.protoPayload(["encoding": Array("json/plain".utf8)], Array("\"charge the card\"".utf8))
        guard case .scheduleActivityTask(let engine) = try SpoolServer.command(command) else {
            Issue.record("not a ScheduleActivityTask")
            return
        }
        #expect(engine.header == Header(fields: ["_tracer-data": Payload(metadata: Self.jsonMetadata, data: Array("{}".utf8))]))
        #expect(engine.userMetadata == UserMetadata(summary: .jsonString("charge the card")))
    }

    @Test func aScheduleActivityCommandCarriesItsPriority() throws {
        var attributes = Temporal_Api_Command_V1_ScheduleActivityTaskCommandAttributes()
        attributes.activityID = "1"
        attributes.activityType.name = "charge"
        attributes.startToCloseTimeout = Google_Protobuf_Duration(seconds: 5)
        attributes.priority.priorityKey = 2
        attributes.priority.fairnessKey = "tenant-b"
        attributes.priority.fairnessWeight = 0.5
        var command = Temporal_Api_Command_V1_Command()
        command.commandType = .scheduleActivityTask
        command.scheduleActivityTaskCommandAttributes = attributes
        guard case .scheduleActivityTask(let engine) = try SpoolServer.command(command) else {
            Issue.record("not a ScheduleActivityTask")
            return
        }
        #expect(engine.priority == Priority(priorityKey: 2, fairnessKey: "tenant-b", fairnessWeight: 0.5))
        // A command without one leaves every field unset (the workflow's apply).
        attributes.clearPriority()
        command.scheduleActivityTaskCommandAttributes = attributes
        guard case .scheduleActivityTask(let unset) = try SpoolServer.command(command) else { return }
        #expect(unset.priority.isUnset)
    }

    @Test func prioritiesGoOutAsTemporalsAndUnsetOnesStayAbsent() {
        var expected = Temporal_Api_Common_V1_Priority()
        expected.priorityKey = 1
        expected.fairnessKey = "tenant-a"
        expected.fairnessWeight = 2
        #expect(Priority(priorityKey: 1, fairnessKey: "tenant-a", fairnessWeight: 2).proto == expected)
        #expect(Priority(expected) == Priority(priorityKey: 1, fairnessKey: "tenant-a", fairnessWeight: 2))
        #expect(Priority(Temporal_Api_Common_V1_Priority()).isUnset)
    }

    static let keywordMetadata: [String: [UInt8]] = ["encoding": Array("json/plain".utf8), "type": Array("Keyword".utf8)]

    /// Every field Temporal's ContinueAsNewWorkflowExecution command has that the engine carries
    /// reaches the engine: backoff, retry policy, initiator, failure, last result, cron, memo and
    /// search attributes (typed payloads, as sent).
    @Test func continueAsNewCarriesEveryFieldToTheEngine() throws {
        var a = Temporal_Api_Command_V1_ContinueAsNewWorkflowExecutionCommandAttributes()
        a.workflowType.name = "Orders"
        a.taskQueue.name = "orders"
        a.backoffStartInterval = Google_Protobuf_Duration(seconds: 5)
        a.retryPolicy.initialInterval = Google_Protobuf_Duration(seconds: 2)
        a.retryPolicy.backoffCoefficient = 1.5
        a.retryPolicy.maximumInterval = Google_Protobuf_Duration(seconds: 10)
        a.retryPolicy.maximumAttempts = 3
        a.initiator = .retry
        a.failure.message = "boom"
        a.lastCompletionResult.payloads = [Self.protoPayload(Self.jsonMetadata, Array("1".utf8))]
        a.cronSchedule = "@hourly"
        a.memo.fields = ["note": Self.protoPayload(Self.jsonMetadata, Array("\"n\"".utf8))]
        a.searchAttributes.indexedFields = ["CustomKeywordField": Self.protoPayload(Self.keywordMetadata, Array("\"k\"".utf8))]
        var command = Temporal_Api_Command_V1_Command()
        command.commandType = .continueAsNewWorkflowExecution
        command.continueAsNewWorkflowExecutionCommandAttributes = a
        guard case .continueAsNewWorkflowExecution(let engine) = try SpoolServer.command(command) else {
            Issue.record("not a ContinueAsNewWorkflowExecution")
            return
        }
        #expect(engine.workflowType == "Orders")
        #expect(engine.backoffStartInterval == .seconds(5))
        #expect(engine.retryPolicy == RetryPolicy(initialInterval: .seconds(2), backoffCoefficient: 1.5,
                                                  maximumInterval: .seconds(10), maximumAttempts: 3))
        #expect(engine.initiator == .retry)
        #expect(engine.failure?.message == "boom")
        #expect(engine.lastCompletionResult == [Payload(metadata: Self.jsonMetadata, data: Array("1".utf8))])
        #expect(engine.cronSchedule == "@hourly")
        #expect(engine.memo == ["note": Payload(metadata: Self.jsonMetadata, data: Array("\"n\"".utf8))])
        #expect(engine.searchAttributes == ["CustomKeywordField": Payload(metadata: Self.keywordMetadata, data: Array("\"k\"".utf8))])
    }

    /// Unset memo, search attributes, cron and retry policy mean "the current run's" (nil), not
    /// "none": Temporal's history service keeps the run's own when the command has none.
    @Test func continueAsNewWithoutRunOptionsKeepsTheRunsOwn() throws {
        var command = Temporal_Api_Command_V1_Command()
        command.commandType = .continueAsNewWorkflowExecution
        command.continueAsNewWorkflowExecutionCommandAttributes = Temporal_Api_Command_V1_ContinueAsNewWorkflowExecutionCommandAttributes()
        guard case .continueAsNewWorkflowExecution(let engine) = try SpoolServer.command(command) else {
            Issue.record("not a ContinueAsNewWorkflowExecution")
            return
        }
        #expect(engine.memo == nil)
        #expect(engine.searchAttributes == nil)
        #expect(engine.cronSchedule == nil)
        #expect(engine.retryPolicy == nil)
        #expect(engine.backoffStartInterval == nil)
        #expect(engine.initiator == .unspecified)
    }

    @Test func upsertSearchAttributesAndModifyPropertiesReachTheEngine() throws {
        var upsert = Temporal_Api_Command_V1_Command()
        upsert.commandType = .upsertWorkflowSearchAttributes
        upsert.upsertWorkflowSearchAttributesCommandAttributes.searchAttributes.indexedFields =
            ["CustomKeywordField": Self.protoPayload(Self.keywordMetadata, Array("\"k\"".utf8))]
        guard case .upsertWorkflowSearchAttributes(let attributes) = try SpoolServer.command(upsert) else {
            Issue.record("not an UpsertWorkflowSearchAttributes")
            return
        }
        #expect(attributes.searchAttributes == ["CustomKeywordField": Payload(metadata: Self.keywordMetadata, data: Array("\"k\"".utf8))])

        var modify = Temporal_Api_Command_V1_Command()
        modify.commandType = .modifyWorkflowProperties
        modify.modifyWorkflowPropertiesCommandAttributes.upsertedMemo.fields = ["stage": Self.protoPayload(Self.jsonMetadata, Array("2".utf8))]
        guard case .modifyWorkflowProperties(let properties) = try SpoolServer.command(modify) else {
            Issue.record("not a ModifyWorkflowProperties")
            return
        }
        #expect(properties.upsertedMemo == ["stage": Payload(metadata: Self.jsonMetadata, data: Array("2".utf8))])
    }

    @Test func aCommandTheEngineLacksIsRefusedByName() {
        var command = Temporal_Api_Command_V1_Command()
        command.commandType = .startChildWorkflowExecution
        #expect(throws: TranslationError.self) { try SpoolServer.command(command) }
    }

    @Test func workflowTasksOnAStickyQueueNameTheNormalOne() {
        let translator = HistoryTranslator(runTaskQueue: "orders")
        #expect(translator.queue("orders").kind == .normal)
        #expect(translator.queue("host-1234").kind == .sticky)
        #expect(translator.queue("host-1234").normalName == "orders")
    }
}

@Suite struct PollGateTests {
    /// A poll that honours cancellation (as the engine's do) is ended by `close()`, and later
    /// polls are answered empty without running. If `close()` did not cancel it, the poll would
    /// wait an hour and the time limit would fail the test.
    @Test(.timeLimit(.minutes(10))) func closingEndsAWaitingPollAndLaterOnesDoNotRun() async throws {
        let gate = PollGate()
        let waiting = Task {
            try await gate.run { () async throws(SpoolError) -> Int? in
                do { try await Task.sleep(for: .seconds(3600)) } catch { return nil }
                return 1
            }
        }
        while !gate.hasWaitingPolls { await Task.yield() }
        gate.close()
        #expect(try await waiting.value == nil)
        let ran = Mutex(false)
        let later = try await gate.run { () async throws(SpoolError) -> Int? in
            ran.withLock { $0 = true }
            return 2
        }
        #expect(later == nil)
        #expect(!ran.withLock { $0 })
    }

    /// A poll that took a task just as the server began to close answers with it: the client is
    /// still connected, and dropping the task would leave it started with nobody working on it.
    @Test(.timeLimit(.minutes(10))) func aTaskTakenAsTheGateClosesIsStillAnswered() async throws {
        let gate = PollGate()
        let lost = Mutex<[Int]>([])
        let waiting = Task {
            try await gate.run { () async throws(SpoolError) -> Int? in
                try? await Task.sleep(for: .seconds(3600))  // cancelled by close(), then "matched"
                return 7
            } undelivered: { value in lost.withLock { $0.append(value) } }
        }
        while !gate.hasWaitingPolls { await Task.yield() }
        gate.close()
        #expect(try await waiting.value == 7)
        #expect(lost.withLock { $0 }.isEmpty)
    }

    /// When the caller is cancelled (the client went away) and the poll still took a task, the
    /// task goes to `undelivered` instead of into a response nobody reads.
    @Test(.timeLimit(.minutes(10))) func aTaskTakenAfterTheClientLeftIsHandedBack() async throws {
        let gate = PollGate()
        let lost = Mutex<[Int]>([])
        let waiting = Task {
            try await gate.run { () async throws(SpoolError) -> Int? in
                try? await Task.sleep(for: .seconds(3600))
                return 9
            } undelivered: { value in lost.withLock { $0.append(value) } }
        }
        while !gate.hasWaitingPolls { await Task.yield() }
        waiting.cancel()
        #expect(try await waiting.value == nil)
        #expect(lost.withLock { $0 } == [9])
    }

    @Test func aPollThatFinishesAnswersItsResult() async throws {
        let gate = PollGate()
        let answer = try await gate.run { () async throws(SpoolError) -> Int? in 7 }
        #expect(answer == 7)
    }
}
