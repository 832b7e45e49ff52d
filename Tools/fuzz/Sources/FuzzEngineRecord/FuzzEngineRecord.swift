@testable import Spool
import SpoolLog

/// Any bytes as one of the engine's encodings, picked by the first byte (`selector % 4`):
/// 0 a log record (`TransitionRecord.decode`: events, state changes, failures, retry policies),
/// 1 the engine checkpoint (`EngineCheckpoint.decode`, with `ExecutionState`), 2 a task token
/// (`TaskToken(serialized:)`, bytes a worker sends back), 3 a history page token (a client's).
/// Each must return or throw, never trap. When `selector & 0x80` is set the guard is fixed up so
/// that the decoder proper is reached: the version byte, and for the checkpoint its magic,
/// version and CRC32C. A decoded value must round-trip: `decode(encode(x))` succeeds and equals
/// `x` (or, where a NaN or a duplicate map key makes `==` too strict, encodes to the same bytes).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEngineRecord(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let selector = data[0]
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let fixUp = selector & 0x80 != 0
    switch selector % 4 {
    case 0:
        if fixUp && !bytes.isEmpty { bytes[0] = TransitionRecord.version }
        guard let record = try? TransitionRecord.decode(bytes, context: "fuzz") else { return 0 }
        let again: TransitionRecord
        do { again = try TransitionRecord.decode(record.encoded(), context: "re-encoded") } catch {
            preconditionFailure("a decoded record does not decode after re-encoding: \(error)")
        }
        precondition(again == record || again.encoded() == record.encoded(), "a record does not round-trip")
    case 1:
        if fixUp { bytes = EngineFuzzSeeds.sealedCheckpoint(body: bytes) }
        guard let checkpoint = try? EngineCheckpoint.decode(bytes) else { return 0 }
        let again: EngineCheckpoint
        do { again = try EngineCheckpoint.decode(checkpoint.encoded()) } catch {
            preconditionFailure("a decoded checkpoint does not decode after re-encoding: \(error)")
        }
        precondition(again == checkpoint || again.encoded() == checkpoint.encoded(), "a checkpoint does not round-trip")
    case 2:
        if fixUp && !bytes.isEmpty { bytes[0] = 1 }
        guard let token = try? TaskToken(serialized: bytes) else { return 0 }
        precondition((try? TaskToken(serialized: token.serialized)) == token, "a task token does not round-trip")
    default:
        if fixUp && !bytes.isEmpty { bytes[0] = 1 }
        guard let token = try? HistoryPageToken(serialized: bytes) else { return 0 }
        let again = try? HistoryPageToken(serialized: token.serialized)
        precondition(again?.runID == token.runID && again?.nextEventID == token.nextEventID, "a page token does not round-trip")
    }
    return 0
}

/// Real encodings for the initial corpus (`SPOOL_FUZZ_WRITE_SEEDS=DIR`), and the checkpoint fix-up.
enum EngineFuzzSeeds {
    /// `"SPEC"`, version, `body`, CRC32C: a checkpoint whose guard passes.
    static func sealedCheckpoint(body: [UInt8]) -> [UInt8] {
        var bytes = EngineCheckpoint.magic + [EngineCheckpoint.version] + body
        let crc = CRC32C.checksum(bytes)
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    static let time = Timestamp(nanosecondsSinceEpoch: 1_700_000_000_123_456_789)
    static let key = ExecutionKey(namespace: "default", workflowID: "order-1", runID: "run-1")

    static func seeds() -> [[UInt8]] {
        let payload = Payload(metadata: ["encoding": Array("json/plain".utf8), "k": [0, 255]], data: [1, 2])
        let failure = Failure(message: "boom", source: "GoSDK", stackTrace: "at main", encodedAttributes: payload,
                              cause: .timeout(.heartbeat, lastHeartbeatDetails: [.binary([9])]),
                              info: .application(ApplicationFailureInfo(type: "IOError", nonRetryable: true, details: [payload],
                                                                        nextRetryDelay: .seconds(3), category: .benign)))
        let scheduled = ActivityTaskScheduledEventAttributes(
            activityID: "a", activityType: "charge", taskQueue: "q", input: [payload], scheduleToCloseTimeout: nil,
            scheduleToStartTimeout: .seconds(5), startToCloseTimeout: .seconds(2), heartbeatTimeout: .seconds(1),
            workflowTaskCompletedEventID: 4, retryPolicy: RetryPolicy(maximumAttempts: 3, nonRetryableErrorTypes: ["Fatal"]),
            header: Header(fields: ["trace": payload]))
        let started = WorkflowExecutionStartedEventAttributes(
            workflowType: "order", taskQueue: "q", input: .binary([1, 2, 3]), workflowRunTimeout: .seconds(60), workflowTaskTimeout: .seconds(10),
            continuedExecutionRunID: "", firstExecutionRunID: "run-1", identity: "me", requestID: "req", attempt: 1)
        let events: [HistoryEvent] = [
            HistoryEvent(eventID: 1, eventTime: time, attributes: .workflowExecutionStarted(started)),
            HistoryEvent(eventID: 2, eventTime: time, attributes: .workflowTaskScheduled(.init(taskQueue: "q", startToCloseTimeout: .seconds(10), attempt: 1))),
            HistoryEvent(eventID: 5, eventTime: time, attributes: .activityTaskScheduled(scheduled)),
            HistoryEvent(eventID: 6, eventTime: time, attributes: .activityTaskFailed(.init(failure: failure, scheduledEventID: 5, startedEventID: 0,
                                                                                            identity: "w", retryState: .maximumAttemptsReached))),
            HistoryEvent(eventID: 7, eventTime: time, attributes: .markerRecorded(.init(markerName: "v", details: ["a": [payload], "b": []],
                                                                                        workflowTaskCompletedEventID: 4, failure: nil))),
            HistoryEvent(eventID: 8, eventTime: time, attributes: .timerStarted(.init(timerID: "t", startToFireTimeout: .seconds(30),
                                                                                      workflowTaskCompletedEventID: 4)),
                         userMetadata: UserMetadata(summary: .jsonString("timer"))),
        ]
        let changes: [StateChange] = events.map { .event($0) } + [
            .bufferedEvent(events[1]), .flushedEvent(events[1]),
            .activityStarted(scheduledEventID: 5, attempt: 2, time: time, identity: "w", requestID: "r"),
            .activityRetryScheduled(scheduledEventID: 5, attempt: 3, time: time, failure: .timeout(.startToClose)),
            .activityHeartbeat(scheduledEventID: 5, details: .binary([4, 4]), time: time),
            .stickyTaskQueue(name: "sticky", scheduleToStartTimeout: .seconds(5)),
            .stickyTaskQueue(name: nil, scheduleToStartTimeout: nil),
            .workflowTaskBackoff(scheduledEventID: 12, time: time),
            .transientWorkflowTaskScheduled(attempt: 2, time: time),
            .transientWorkflowTaskStarted(scheduledEventID: 9, time: time, identity: "w", requestID: "r"),
            .transientWorkflowTaskEnded(scheduledEventID: 9, attempt: 2),
            .activityStartReturned(scheduledEventID: 5, attempt: 1),
        ]
        let record = TransitionRecord(runs: [.init(key: key, changes: changes),
                                             .init(key: ExecutionKey(namespace: "default", workflowID: "order-1", runID: "run-2"),
                                                   changes: [.event(events[0])])])
        var state = ExecutionState(key: key, started: started, startTime: time)
        state.nextEventID = 9
        state.buffered = [events[4]]
        state.workflowTask = WorkflowTaskInfo(scheduledEventID: 2, attempt: 1, taskQueue: "q", startToCloseTimeout: .seconds(10),
                                              scheduledTime: time, startedEventID: 3, startedTime: time, identity: "w", isSticky: true)
        state.activities[5] = ActivityInfo(scheduledEventID: 5, attributes: scheduled, scheduledTime: time, attempt: 2,
                                           attemptScheduledTime: time, startedTime: time, heartbeatDetails: .binary([7]),
                                           lastFailure: failure, lastWorkerIdentity: "w")
        state.activityIDs["a"] = 5
        state.timers["t"] = UserTimerInfo(timerID: "t", startedEventID: 8, fireTime: time)
        state.stickyTaskQueue = "sticky"
        state.stickyScheduleToStartTimeout = .seconds(5)
        let checkpoint = EngineCheckpoint(replayFrom: 42, runs: [.init(state: state, recordOffsets: [3, 17, 40])])
        let token = TaskToken(kind: .activity, key: key, scheduledEventID: 5, startedEventID: 0, attempt: 2)
        let page = HistoryPageToken(runID: "run-1", nextEventID: 9)
        return [[0] + record.encoded(), [0x80] + record.encoded(), [1] + checkpoint.encoded(),
                [1] + EngineCheckpoint(replayFrom: 0, runs: []).encoded(),
                [0x81] + Array(checkpoint.encoded().dropFirst(5).dropLast(4)), [2] + token.serialized, [3] + page.serialized]
    }
}
