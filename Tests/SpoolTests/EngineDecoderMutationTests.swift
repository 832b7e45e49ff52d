#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing
@testable import Spool

/// "A run of a few seconds per target in the test suite" (issue 6 item 4): the libFuzzer target
/// `FuzzEngineRecord` (Tools/fuzz) is not built by `swift test`, so this feeds a fixed number of
/// seeded mutations of real encodings through the same decoders. Each input must decode or throw
/// (a trap fails the run) and a decoded value must round-trip. Half the checkpoint inputs are
/// sealed with a correct magic, version and CRC, and half of the others get the right version
/// byte, so the field parsing is reached rather than the guard.
@Suite struct EngineDecoderMutationTests {
    static let seed = Mutator.seed(default: 20_261_125)
    static let time = Timestamp(nanosecondsSinceEpoch: 1_700_000_000_123_456_789)
    static let key = ExecutionKey(namespace: "default", workflowID: "order-1", runID: "run-1")

    static func sampleCheckpoint() -> EngineCheckpoint {
        let failure = Failure.application("boom", type: "IOError", nonRetryable: true, details: .binary([1, 2]),
                                          nextRetryDelay: .seconds(3), cause: .timeout(.heartbeat, lastHeartbeatDetails: .binary([9])))
        let scheduled = ActivityTaskScheduledEventAttributes(
            activityID: "a", activityType: "charge", taskQueue: "q", input: .binary([1]), scheduleToCloseTimeout: nil,
            scheduleToStartTimeout: .seconds(5), startToCloseTimeout: .seconds(2), heartbeatTimeout: .seconds(1),
            workflowTaskCompletedEventID: 4, retryPolicy: RetryPolicy(maximumAttempts: 3, nonRetryableErrorTypes: ["Fatal"]))
        let started = WorkflowExecutionStartedEventAttributes(
            workflowType: "order", taskQueue: "q", input: .binary([1, 2, 3]), workflowRunTimeout: .seconds(60), workflowTaskTimeout: .seconds(10),
            continuedExecutionRunID: "", firstExecutionRunID: "run-1", identity: "me", requestID: "req", attempt: 1)
        var state = ExecutionState(key: key, started: started, startTime: time)
        state.nextEventID = 9
        state.buffered = [TransitionRecordCodecTests.sampleEvents()[22]]
        state.workflowTask = WorkflowTaskInfo(scheduledEventID: 2, attempt: 1, taskQueue: "q", startToCloseTimeout: .seconds(10),
                                              scheduledTime: time, startedEventID: 3, startedTime: time, identity: "w", isSticky: true)
        state.activities[5] = ActivityInfo(scheduledEventID: 5, attributes: scheduled, scheduledTime: time, attempt: 2,
                                           attemptScheduledTime: time, startedTime: time, heartbeatDetails: .binary([7]),
                                           lastFailure: failure, lastWorkerIdentity: "w")
        state.activityIDs["a"] = 5
        state.timers["t"] = UserTimerInfo(timerID: "t", startedEventID: 8, fireTime: time)
        state.stickyTaskQueue = "sticky"
        state.stickyScheduleToStartTimeout = .seconds(5)
        // The run options of the extended layout, all set.
        state.attempt = 2
        state.header = Header(fields: ["h": .json("1")])
        state.memo = ["m": .json("1")]
        state.searchAttributes = ["s": .json("2"), "t": .binary([3])]
        state.retryPolicy = RetryPolicy(initialInterval: .seconds(2), maximumAttempts: 4, nonRetryableErrorTypes: ["X"])
        state.cronSchedule = "*/5 * * * *"
        state.workflowExecutionTimeout = .seconds(600)
        state.executionExpirationTime = time.advanced(by: .seconds(600))
        state.executionTime = time.advanced(by: .seconds(3))
        state.firstWorkflowTaskTime = time.advanced(by: .seconds(3))
        state.lastCompletionResult = .json("\"r\"")
        state.startMemo = ["m0": .json("0")]
        state.startSearchAttributes = ["s0": .json("0")]
        var second = ExecutionState(key: ExecutionKey(namespace: "default", workflowID: "order-2", runID: "run-9"), started: started,
                                    startTime: time)
        second.status = .completed
        second.closeTime = time
        return EngineCheckpoint(replayFrom: 42, runs: [.init(state: state, recordOffsets: [3, 17, 40]),
                                                        .init(state: second, recordOffsets: [41])])
    }

    /// `"SPEC"`, version, `body`, CRC32C.
    static func sealed(_ body: [UInt8]) -> [UInt8] {
        var bytes = EngineCheckpoint.magic + [EngineCheckpoint.version] + body
        let crc = CRC32C.checksum(bytes)
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    @Test func unmutatedEncodingsRoundTrip() throws {
        let record = TransitionRecordCodecTests.sampleRecord()
        #expect(try TransitionRecord.decode(record.encoded(), context: "test") == record)
        let checkpoint = Self.sampleCheckpoint()
        #expect(try EngineCheckpoint.decode(checkpoint.encoded()) == checkpoint)
        #expect(try EngineCheckpoint.decode(Self.sealed(Array(checkpoint.encoded().dropFirst(5).dropLast(4)))) == checkpoint)
        let token = TaskToken(kind: .workflow, key: Self.key, scheduledEventID: 2, startedEventID: 3, attempt: 4)
        #expect(try TaskToken(serialized: token.serialized) == token)
        let page = try HistoryPageToken(serialized: HistoryPageToken(runID: "run-1", nextEventID: 9).serialized)
        #expect(page.runID == "run-1" && page.nextEventID == 9)
    }

    @Test func mutatedTransitionRecordsDecodeOrThrow() {
        let original = TransitionRecordCodecTests.sampleRecord().encoded()
        var rejected = 0
        for i in 0..<20_000 {
            var mutator = Mutator(seed: Self.seed, input: i)
            var bytes = mutator.mutate(original)
            if i % 2 == 0 && !bytes.isEmpty { bytes[0] = TransitionRecord.version }
            guard let record = try? TransitionRecord.decode(bytes, context: "mutation") else { rejected += 1; continue }
            let again = try? TransitionRecord.decode(record.encoded(), context: "re-encoded")
            #expect(again == record || again?.encoded() == record.encoded(), "seed \(Self.seed) input \(i): the record does not round-trip")
        }
        #expect(rejected > 0 && rejected < 20_000, "seed \(Self.seed): \(rejected) of 20000 mutations rejected")
    }

    @Test func mutatedCheckpointsDecodeOrThrow() {
        let original = Self.sampleCheckpoint().encoded()
        let body = Array(original.dropFirst(5).dropLast(4))
        var rejected = 0
        for i in 0..<20_000 {
            var mutator = Mutator(seed: Self.seed, input: i)
            let bytes = i % 2 == 0 ? Self.sealed(mutator.mutate(body)) : mutator.mutate(original)
            guard let checkpoint = try? EngineCheckpoint.decode(bytes) else { rejected += 1; continue }
            let again = try? EngineCheckpoint.decode(checkpoint.encoded())
            #expect(again == checkpoint || again?.encoded() == checkpoint.encoded(),
                    "seed \(Self.seed) input \(i): the checkpoint does not round-trip")
        }
        #expect(rejected > 0 && rejected < 20_000, "seed \(Self.seed): \(rejected) of 20000 mutations rejected")
    }

    @Test func mutatedTokensDecodeOrThrow() {
        let task = TaskToken(kind: .activity, key: Self.key, scheduledEventID: 5, startedEventID: 0, attempt: 2).serialized
        let page = HistoryPageToken(runID: "run-1", nextEventID: 9).serialized
        for i in 0..<30_000 {
            var mutator = Mutator(seed: Self.seed, input: i)
            var bytes = mutator.mutate(i % 3 == 0 ? page : task)
            if i % 2 == 0 && !bytes.isEmpty { bytes[0] = 1 }
            if i % 3 == 0 {
                guard let token = try? HistoryPageToken(serialized: bytes) else { continue }
                let again = try? HistoryPageToken(serialized: token.serialized)
                #expect(again?.runID == token.runID && again?.nextEventID == token.nextEventID,
                        "seed \(Self.seed) input \(i): the page token does not round-trip")
            } else {
                do {
                    let token = try TaskToken(serialized: bytes)
                    #expect((try? TaskToken(serialized: token.serialized)) == token,
                            "seed \(Self.seed) input \(i): the task token does not round-trip")
                } catch {
                    #expect(error.code == .invalidTaskToken, "seed \(Self.seed) input \(i): \(error)")
                }
            }
        }
    }
}

