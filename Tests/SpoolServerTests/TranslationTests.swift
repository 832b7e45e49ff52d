import FoundationEssentials
import Spool
@testable import SpoolServer
import SpoolServerProtos
import SwiftProtobuf
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
    @Test func closingAnswersAWaitingPollEmptyAtOnce() async throws {
        let gate = PollGate()
        let waiting = Task {
            try await gate.run { () async throws(SpoolError) -> Int? in
                try? await Task.sleep(for: .seconds(60))
                return 1
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        gate.close()
        let answer = try await waiting.value
        #expect(answer == nil)
        #expect(ContinuousClock.now - started < .seconds(5))
        // Later polls are answered empty without running.
        let later = try await gate.run { () async throws(SpoolError) -> Int? in 2 }
        #expect(later == nil)
    }

    @Test func aPollThatFinishesAnswersItsResult() async throws {
        let gate = PollGate()
        let answer = try await gate.run { () async throws(SpoolError) -> Int? in 7 }
        #expect(answer == 7)
    }
}
