#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
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
        let failure = Failure(message: "boom", type: "IOError", nonRetryable: true, details: [1, 2],
                              nextRetryDelay: .seconds(3), timeoutType: .heartbeat, lastHeartbeatDetails: [9])
        let scheduled = ActivityTaskScheduledEventAttributes(
            activityID: "a", activityType: "charge", taskQueue: "q", input: [1], scheduleToCloseTimeout: nil,
            scheduleToStartTimeout: .seconds(5), startToCloseTimeout: .seconds(2), heartbeatTimeout: .seconds(1),
            workflowTaskCompletedEventID: 4, retryPolicy: RetryPolicy(maximumAttempts: 3, nonRetryableErrorTypes: ["Fatal"]))
        let started = WorkflowExecutionStartedEventAttributes(
            workflowType: "order", taskQueue: "q", input: [1, 2, 3], workflowRunTimeout: .seconds(60), workflowTaskTimeout: .seconds(10),
            continuedExecutionRunID: "", firstExecutionRunID: "run-1", identity: "me", requestID: "req", attempt: 1)
        var state = ExecutionState(key: key, started: started, startTime: time)
        state.nextEventID = 9
        state.buffered = [TransitionRecordCodecTests.sampleEvents()[22]]
        state.workflowTask = WorkflowTaskInfo(scheduledEventID: 2, attempt: 1, taskQueue: "q", startToCloseTimeout: .seconds(10),
                                              scheduledTime: time, startedEventID: 3, startedTime: time, identity: "w", isSticky: true)
        state.activities[5] = ActivityInfo(scheduledEventID: 5, attributes: scheduled, scheduledTime: time, attempt: 2,
                                           attemptScheduledTime: time, startedTime: time, heartbeatDetails: [7],
                                           lastFailure: failure, lastWorkerIdentity: "w")
        state.activityIDs["a"] = 5
        state.timers["t"] = UserTimerInfo(timerID: "t", startedEventID: 8, fireTime: time)
        state.stickyTaskQueue = "sticky"
        state.stickyScheduleToStartTimeout = .seconds(5)
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

// MARK: - Seeded mutations (the same in each module's decoder mutation tests)

/// A deterministic stream of mutated inputs: input `i` of seed `s` is always the same bytes, so a
/// failure names both and reproduces with them (`SPOOL_MUTATION_SEED` overrides the seed).
private struct Mutator {
    let seed: UInt64
    private var state: UInt64

    static func seed(default value: UInt64) -> UInt64 {
        if let text = getenv("SPOOL_MUTATION_SEED"), let seed = UInt64(String(cString: text)) { return seed }
        return value
    }

    init(seed: UInt64, input: Int) {
        self.seed = seed
        state = seed ^ (UInt64(input) &* 0x9E37_79B9_7F4A_7C15)
        _ = next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

    /// One to four mutations of `bytes`: bit flips, bytes set to edge values, truncation,
    /// extension, insertion or deletion of a run, a copied slice, or random bytes of random length.
    mutating func mutate(_ original: [UInt8]) -> [UInt8] {
        var bytes = original
        let edge: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0xFE]
        for _ in 0...below(4) {
            switch below(9) {
            case 0, 1:
                if !bytes.isEmpty { bytes[below(bytes.count)] ^= UInt8(1) << UInt8(below(8)) }
            case 2:
                if !bytes.isEmpty { bytes[below(bytes.count)] = edge[below(edge.count)] }
            case 3:
                bytes = Array(bytes.prefix(below(bytes.count + 1)))
            case 4:
                for _ in 0..<(1 + below(16)) { bytes.append(UInt8(truncatingIfNeeded: next())) }
            case 5:
                let at = below(bytes.count + 1)
                bytes.insert(contentsOf: (0..<(1 + below(8))).map { _ in UInt8(truncatingIfNeeded: next()) }, at: at)
            case 6:
                if !bytes.isEmpty {
                    let from = below(bytes.count)
                    bytes.removeSubrange(from..<min(bytes.count, from + 1 + below(8)))
                }
            case 7:
                if !bytes.isEmpty {
                    let from = below(bytes.count), length = 1 + below(min(16, bytes.count - from))
                    bytes.insert(contentsOf: bytes[from..<(from + length)], at: below(bytes.count + 1))
                }
            default:
                if below(8) == 0 { bytes = (0..<below(64)).map { _ in UInt8(truncatingIfNeeded: next()) } }
                else if bytes.count >= 8 {
                    // A varint or length field set to a huge value.
                    let at = below(bytes.count - 7)
                    for k in 0..<8 { bytes[at + k] = 0xFF &- UInt8(below(2)) }
                }
            }
        }
        return bytes
    }
}
