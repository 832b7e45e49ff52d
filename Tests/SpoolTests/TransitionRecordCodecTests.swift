import Testing
@testable import Spool
import SpoolLog

@Suite struct TransitionRecordCodecTests {
    static let time = Timestamp(nanosecondsSinceEpoch: 1_700_000_000_123_456_789)

    static func sampleEvents() -> [HistoryEvent] {
        let failure = Failure.application("boom", type: "IOError", nonRetryable: true, details: .binary([1, 2]),
                                          nextRetryDelay: .seconds(3), cause: .timeout(.heartbeat, lastHeartbeatDetails: .binary([9])))
        let attributes: [HistoryEvent.Attributes] = [
            .workflowExecutionStarted(.init(workflowType: "order", taskQueue: "q", input: .binary([1, 2, 3]), workflowRunTimeout: .seconds(60),
                                            workflowTaskTimeout: .seconds(10), continuedExecutionRunID: "", firstExecutionRunID: "r",
                                            identity: "me", requestID: "req", attempt: 1)),
            .workflowExecutionCompleted(.init(result: nil, workflowTaskCompletedEventID: 4)),
            .workflowExecutionFailed(.init(failure: failure, retryState: .retryPolicyNotSet, workflowTaskCompletedEventID: 4)),
            .workflowExecutionTimedOut(.init(retryState: .retryPolicyNotSet)),
            .workflowTaskScheduled(.init(taskQueue: "q", startToCloseTimeout: .seconds(10), attempt: 2)),
            .workflowTaskStarted(.init(scheduledEventID: 2, identity: "w", requestID: "x")),
            .workflowTaskCompleted(.init(scheduledEventID: 2, startedEventID: 3, identity: "w")),
            .workflowTaskTimedOut(.init(scheduledEventID: 2, startedEventID: 3, timeoutType: .startToClose)),
            .workflowTaskFailed(.init(scheduledEventID: 2, startedEventID: 3, cause: .badStartTimerAttributes, failure: failure, identity: "w")),
            .activityTaskScheduled(.init(activityID: "a", activityType: "charge", taskQueue: "q", input: .binary([]), scheduleToCloseTimeout: nil,
                                         scheduleToStartTimeout: .seconds(5), startToCloseTimeout: .milliseconds(1500),
                                         heartbeatTimeout: .seconds(2), workflowTaskCompletedEventID: 4,
                                         retryPolicy: RetryPolicy(maximumAttempts: 3, nonRetryableErrorTypes: ["Fatal", "Bad"]))),
            .activityTaskStarted(.init(scheduledEventID: 5, identity: "w", requestID: "r", attempt: 3, lastFailure: failure)),
            .activityTaskCompleted(.init(result: .binary([7]), scheduledEventID: 5, startedEventID: 6, identity: "w")),
            .activityTaskFailed(.init(failure: failure, scheduledEventID: 5, startedEventID: 6, identity: "w", retryState: .maximumAttemptsReached)),
            .activityTaskTimedOut(.init(failure: .timeout(.scheduleToStart), scheduledEventID: 5, startedEventID: 0, retryState: .timeout)),
            .activityTaskCancelRequested(.init(scheduledEventID: 5, workflowTaskCompletedEventID: 4)),
            .activityTaskCanceled(.init(details: nil, latestCancelRequestedEventID: 7, scheduledEventID: 5, startedEventID: 0, identity: "")),
            .timerStarted(.init(timerID: "t", startToFireTimeout: .seconds(30), workflowTaskCompletedEventID: 4)),
            .timerFired(.init(timerID: "t", startedEventID: 5)),
            .timerCanceled(.init(timerID: "t", startedEventID: 5, workflowTaskCompletedEventID: 9, identity: "w")),
            .workflowExecutionCancelRequested(.init(cause: "user", identity: "cli")),
            .workflowExecutionCanceled(.init(workflowTaskCompletedEventID: 9, details: .binary([0]))),
            .markerRecorded(.init(markerName: "version", details: ["a": .binary([1]), "b": []], workflowTaskCompletedEventID: 4, failure: nil)),
            .workflowExecutionSignaled(.init(signalName: "go", input: .binary([5]), identity: "cli")),
            .workflowExecutionTerminated(.init(reason: "why", details: nil, identity: "cli")),
            .workflowExecutionContinuedAsNew(.init(newExecutionRunID: "n", workflowType: "order", taskQueue: "q", input: nil,
                                                   workflowRunTimeout: nil, workflowTaskTimeout: .seconds(10),
                                                   workflowTaskCompletedEventID: 9)),
            // Layout 3 (run options): the new events, and every new field of the old ones set.
            .upsertWorkflowSearchAttributes(.init(workflowTaskCompletedEventID: 4,
                                                  searchAttributes: ["CustomKeywordField": .json("\"a\""), "Gone": .temporalNil])),
            .workflowPropertiesModified(.init(workflowTaskCompletedEventID: 4, upsertedMemo: ["note": .binary([1, 2])])),
            .workflowExecutionStarted(.init(workflowType: "order", taskQueue: "q", input: nil, workflowRunTimeout: .seconds(60),
                                            workflowTaskTimeout: .seconds(10), continuedExecutionRunID: "r0", firstExecutionRunID: "r",
                                            identity: "", requestID: "", attempt: 3, header: Header(fields: ["h": .json("1")]),
                                            workflowExecutionTimeout: .seconds(600), continuedFailure: failure,
                                            lastCompletionResult: .json("\"last\""), initiator: .retry, originalExecutionRunID: "r2",
                                            firstWorkflowTaskBackoff: .seconds(4), workflowExecutionExpirationTime: time,
                                            retryPolicy: RetryPolicy(initialInterval: .seconds(2), maximumAttempts: 5),
                                            cronSchedule: "@hourly", memo: ["m": .json("1")], searchAttributes: ["s": .json("2")])),
            .workflowExecutionCompleted(.init(result: .json("1"), workflowTaskCompletedEventID: 4, newExecutionRunID: "next")),
            .workflowExecutionFailed(.init(failure: failure, retryState: .inProgress, workflowTaskCompletedEventID: 4, newExecutionRunID: "next")),
            .workflowExecutionTimedOut(.init(retryState: .inProgress, newExecutionRunID: "next")),
            .workflowExecutionContinuedAsNew(.init(newExecutionRunID: "n", workflowType: "order", taskQueue: "q", input: nil,
                                                   workflowRunTimeout: nil, workflowTaskTimeout: .seconds(10),
                                                   workflowTaskCompletedEventID: 9, backoffStartInterval: .seconds(7), initiator: .cronSchedule,
                                                   failure: failure, lastCompletionResult: .json("2"), memo: ["m": .json("3")],
                                                   searchAttributes: ["s": .json("4")])),
            // Updates (new event kinds of layout 3).
            .workflowExecutionUpdateAccepted(.init(
                protocolInstanceID: "u1", acceptedRequestMessageID: "u1/request", acceptedRequestSequencingEventID: 5,
                acceptedRequest: UpdateRequest(meta: UpdateMeta(updateID: "u1", identity: "cli"),
                                               input: UpdateInput(name: "approve", args: .json("1"), header: Header(fields: ["h": .json("2")]))))),
            .workflowExecutionUpdateCompleted(.init(meta: UpdateMeta(updateID: "u1", identity: "cli"), acceptedEventID: 33,
                                                    outcome: .success(.json("\"ok\"")))),
            .workflowExecutionUpdateCompleted(.init(meta: UpdateMeta(updateID: "u2"), acceptedEventID: 33, outcome: .failure(failure))),
            .workflowExecutionUpdateCompleted(.init(meta: UpdateMeta(updateID: "u3"), acceptedEventID: 33, outcome: .success(nil))),
            // Layout 4 (related runs): the new events, and the new fields of the old ones set.
            .workflowExecutionStarted(.init(workflowType: "child", taskQueue: "c", input: nil, workflowRunTimeout: nil,
                                            workflowTaskTimeout: .seconds(10), continuedExecutionRunID: "", firstExecutionRunID: "c1",
                                            identity: "history-service", requestID: "", attempt: 1,
                                            parent: ParentExecutionInfo(namespace: "default", execution: WorkflowExecution(workflowID: "p", runID: "p1"),
                                                                        initiatedEventID: 5, rootExecution: WorkflowExecution(workflowID: "root", runID: "r0")))),
            .workflowExecutionSignaled(.init(signalName: "go", input: nil, identity: "history-service", requestID: "x",
                                             externalWorkflowExecution: WorkflowExecution(workflowID: "p", runID: "p1"))),
            .workflowExecutionCancelRequested(.init(cause: "stop", identity: "history-service", externalInitiatedEventID: 9,
                                                    externalWorkflowExecution: WorkflowExecution(workflowID: "p", runID: "p1"))),
            .startChildWorkflowExecutionInitiated(.init(
                namespace: "default", workflowID: "c", workflowType: "child", taskQueue: "c", input: .json("1"),
                workflowExecutionTimeout: .seconds(60), workflowRunTimeout: .seconds(30), workflowTaskTimeout: nil,
                parentClosePolicy: .requestCancel, control: "ctl", workflowTaskCompletedEventID: 4,
                workflowIDReusePolicy: .rejectDuplicate, retryPolicy: RetryPolicy(maximumAttempts: 2), cronSchedule: "@daily",
                header: Header(fields: ["h": .json("1")]), memo: ["m": .json("1")], searchAttributes: ["s": .json("2")],
                priority: Priority(priorityKey: 2))),
            .startChildWorkflowExecutionFailed(.init(namespace: "default", workflowID: "c", workflowType: "child",
                                                     cause: .workflowAlreadyExists, control: "ctl", initiatedEventID: 5,
                                                     workflowTaskCompletedEventID: 4)),
            .childWorkflowExecutionStarted(.init(namespace: "default", initiatedEventID: 5,
                                                 workflowExecution: WorkflowExecution(workflowID: "c", runID: "c1"), workflowType: "child",
                                                 header: Header(fields: ["h": .json("1")]))),
        ] + ([.completed(result: .json("1")), .failed(failure: failure, retryState: .maximumAttemptsReached),
              .canceled(details: .binary([1])), .timedOut(retryState: .timeout), .terminated]
             as [ChildWorkflowExecutionClosedEventAttributes.Outcome]).map { outcome in
            .childWorkflowExecutionClosed(.init(outcome: outcome, namespace: "default", workflowExecution: WorkflowExecution(workflowID: "c", runID: "c2"),
                                                workflowType: "child", initiatedEventID: 5, startedEventID: 6))
        } + [
            .signalExternalWorkflowExecutionInitiated(.init(workflowTaskCompletedEventID: 4, namespace: "default",
                                                            workflowExecution: WorkflowExecution(workflowID: "t", runID: ""), signalName: "go",
                                                            input: .json("2"), control: "ctl", childWorkflowOnly: true,
                                                            header: Header(fields: ["h": .json("1")]))),
            .signalExternalWorkflowExecutionFailed(.init(cause: .externalWorkflowExecutionNotFound, workflowTaskCompletedEventID: 4,
                                                         namespace: "default", workflowExecution: WorkflowExecution(workflowID: "t", runID: ""),
                                                         initiatedEventID: 5, control: "ctl")),
            .externalWorkflowExecutionSignaled(.init(initiatedEventID: 5, namespace: "default",
                                                     workflowExecution: WorkflowExecution(workflowID: "t", runID: "t1"), control: "ctl")),
            .requestCancelExternalWorkflowExecutionInitiated(.init(workflowTaskCompletedEventID: 4, namespace: "default",
                                                                   workflowExecution: WorkflowExecution(workflowID: "t", runID: ""),
                                                                   control: "ctl", childWorkflowOnly: false, reason: "stop")),
            .requestCancelExternalWorkflowExecutionFailed(.init(cause: .externalWorkflowExecutionNotFound, workflowTaskCompletedEventID: 4,
                                                                namespace: "default", workflowExecution: WorkflowExecution(workflowID: "t", runID: ""),
                                                                initiatedEventID: 5, control: "ctl")),
            .externalWorkflowExecutionCancelRequested(.init(initiatedEventID: 5, namespace: "default",
                                                            workflowExecution: WorkflowExecution(workflowID: "t", runID: "t1"))),
        ]
        return attributes.enumerated().map { HistoryEvent(eventID: Int64($0.offset + 1), eventTime: time, attributes: $0.element) }
    }

    static func sampleRecord() -> TransitionRecord {
        let events = sampleEvents()
        let changes: [StateChange] = events.map { .event($0) } + [
            .bufferedEvent(events[22]), .flushedEvent(events[22]),
            .activityStarted(scheduledEventID: 5, attempt: 2, time: time, identity: "w", requestID: "r"),
            .activityRetryScheduled(scheduledEventID: 5, attempt: 3, time: time, failure: .timeout(.startToClose)),
            .activityHeartbeat(scheduledEventID: 5, details: .binary([4, 4]), time: time),
            .stickyTaskQueue(name: "sticky", scheduleToStartTimeout: .seconds(5)),
            .stickyTaskQueue(name: nil, scheduleToStartTimeout: nil),
            .workflowTaskBackoff(scheduledEventID: 12, time: time),
            .transientWorkflowTaskScheduled(attempt: 2, time: time),
            .transientWorkflowTaskStarted(scheduledEventID: 12, time: time, identity: "w", requestID: "r"),
            .transientWorkflowTaskEnded(scheduledEventID: 12, attempt: 2),
            .speculativeWorkflowTaskScheduled(time: time),
        ]
        return TransitionRecord(runs: [.init(key: ExecutionKey(namespace: "default", workflowID: "w-é", runID: "r1"), changes: changes)])
    }

    @Test func everyEventTypeRoundTrips() throws {
        let events = Self.sampleEvents()
        let covered = Set(events.map(\.eventType))
        #expect(covered == Set(EventType.allCases))
        let record = Self.sampleRecord()
        let decoded = try TransitionRecord.decode(record.encoded(), context: "test")
        #expect(decoded == record)
    }

    @Test func truncatedRecordsThrowInsteadOfTrapping() {
        let bytes = Self.sampleRecord().encoded()
        for length in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: SpoolError.self) { try TransitionRecord.decode(Array(bytes[..<length]), context: "test") }
        }
    }

    @Test func damagedRecordsThrowOrDecodeButNeverTrap() {
        let bytes = Self.sampleRecord().encoded()
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var failures = 0
        for _ in 0..<2000 {
            var damaged = bytes
            for _ in 0..<3 {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                damaged[Int(state >> 33) % damaged.count] = UInt8(truncatingIfNeeded: state >> 17)
            }
            do { _ = try TransitionRecord.decode(damaged, context: "test") } catch { failures += 1 }
        }
        #expect(failures > 0)
    }

    @Test func unknownVersionIsRejectedWithItsNumber() {
        var bytes = Self.sampleRecord().encoded()
        bytes[0] = 9
        #expect {
            try TransitionRecord.decode(bytes, context: "record at offset 3")
        } throws: { error in
            let error = error as? SpoolError
            return error?.code == .corruptRecord && error?.message.contains("version 9") == true
        }
    }

    @Test func varintsRoundTripAtTheEdges() throws {
        var w = BinaryWriter()
        let values: [Int64] = [0, 1, -1, 63, -64, 64, Int64.max, Int64.min, 1 << 35]
        for value in values { w.signed(value) }
        w.unsigned(UInt64.max)
        var r = BinaryReader<SpoolError>(w.bytes, context: "test")
        for value in values { #expect(try r.signed() == value) }
        #expect(try r.unsigned() == UInt64.max)
        #expect(r.isAtEnd)
        var overlong = BinaryReader<SpoolError>([UInt8](repeating: 0xFF, count: 11) + [0], context: "test")
        #expect(throws: SpoolError.self) { try overlong.unsigned() }
    }
}
