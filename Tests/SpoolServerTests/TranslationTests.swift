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

    @Test func payloadsKeepTheirMetadata() {
        var payload = Temporal_Api_Common_V1_Payload()
        payload.metadata = ["encoding": Data("json/plain".utf8)]
        payload.data = Data("\"Spool\"".utf8)
        var proto = Temporal_Api_Common_V1_Payloads()
        proto.payloads = [payload]
        let bytes = payloads(proto, isSet: true)
        #expect(bytes != nil)
        #expect(protoPayloads(bytes!) == proto)
        #expect(payloads(proto, isSet: false) == nil)
    }

    @Test func bytesOfAnInProcessWorkerBecomeOneBinaryPayload() {
        let raw: [UInt8] = [0xff, 0xfe, 0x00]
        let proto = protoPayloads(raw)
        #expect(proto.payloads.count == 1)
        #expect(proto.payloads[0].metadata["encoding"] == Data("binary/plain".utf8))
        #expect([UInt8](proto.payloads[0].data) == raw)
    }

    @Test func applicationFailuresRoundTrip() {
        // Details as the server stores them: a Payloads message in the engine's bytes.
        let details = payloads(protoPayloads([1, 2]), isSet: true)
        let failure = Failure(message: "card declined", type: "PaymentError", nonRetryable: true, details: details,
                              nextRetryDelay: .seconds(2))
        let back = Failure(failure.proto)
        #expect(back.message == failure.message)
        #expect(back.type == failure.type)
        #expect(back.nonRetryable)
        #expect(back.nextRetryDelay == .seconds(2))
        #expect(back.details == failure.details)
    }

    @Test func timeoutFailuresSayWhichTimeout() {
        let proto = Failure.timeout(.heartbeat).proto
        #expect(proto.timeoutFailureInfo.timeoutType == .heartbeat)
        #expect(Failure(proto).timeoutType == .heartbeat)
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
    @Test(.timeLimit(.minutes(1))) func closingEndsAWaitingPollAndLaterOnesDoNotRun() async throws {
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
    @Test(.timeLimit(.minutes(1))) func aTaskTakenAsTheGateClosesIsStillAnswered() async throws {
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
    @Test(.timeLimit(.minutes(1))) func aTaskTakenAfterTheClientLeftIsHandedBack() async throws {
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
