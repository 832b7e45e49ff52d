import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import Spool

/// Bytes in the flat value layout (record version 1), written by hand from the layout in
/// Docs/file-format.md — not by the engine's encoders.
struct FlatBytes {
    var bytes: [UInt8] = []
    mutating func byte(_ value: UInt8) { bytes.append(value) }
    mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 { bytes.append(UInt8(value & 0x7F) | 0x80); value >>= 7 }
        bytes.append(UInt8(value))
    }
    mutating func zigzag(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }
    mutating func string(_ value: String) { blob(Array(value.utf8)) }
    mutating func blob(_ value: [UInt8]) { varint(UInt64(value.count)); bytes += value }
    mutating func absent() { byte(0) }
    mutating func present() { byte(1) }

    /// A flat failure: message, type, non-retryable, details?, next retry delay?, timeout type?, last heartbeat details?.
    mutating func failure(message: String, type: String, nonRetryable: Bool, details: [UInt8]?, nextRetryDelay: Duration?,
                          timeoutType: UInt8?, lastHeartbeatDetails: [UInt8]?) {
        string(message); string(type); byte(nonRetryable ? 1 : 0)
        if let details { present(); blob(details) } else { absent() }
        if let nextRetryDelay { present(); zigzag(Int64(nextRetryDelay.components.seconds) * 1_000_000_000) } else { absent() }
        if let timeoutType { present(); byte(timeoutType) } else { absent() }
        if let lastHeartbeatDetails { present(); blob(lastHeartbeatDetails) } else { absent() }
    }

    /// `temporal.api.common.v1.Payloads` with one payload, serialized by hand (what `spool serve`
    /// stored): field 1 { field 1 map entry { 1: key, 2: value }, field 2 data }.
    static func envelope(encoding: String, data: [UInt8]) -> [UInt8] {
        func field(_ number: UInt8, _ body: [UInt8]) -> [UInt8] { [number << 3 | 2, UInt8(body.count)] + body }
        let entry = field(1, Array("encoding".utf8)) + field(2, Array(encoding.utf8))
        let payload = field(1, entry) + field(2, data)
        return field(1, payload)
    }
}

@Suite struct LegacyRecordDecodingTests {
    static let time: Int64 = 1_750_000_000_000_000_000

    /// A version 1 record of run `runID`: WorkflowExecutionStarted (input: a `spool serve`
    /// envelope) and WorkflowTaskScheduled.
    static func startRecord(workflowID: String, runID: String) -> [UInt8] {
        var b = FlatBytes()
        b.byte(1)                                             // record version 1
        b.varint(1)                                           // one run
        b.string("default"); b.string(workflowID); b.string(runID)
        b.varint(2)                                           // two changes
        b.byte(1)                                             // event
        b.zigzag(1); b.zigzag(time); b.byte(1)                // id 1, time, WorkflowExecutionStarted
        b.string("order"); b.string("q")
        b.present(); b.blob(FlatBytes.envelope(encoding: "json/plain", data: Array("\"hi\"".utf8)))
        b.absent()                                            // run timeout
        b.zigzag(10_000_000_000)                              // task timeout 10 s
        b.string(""); b.string(runID); b.string("starter"); b.string("req-1"); b.zigzag(1)
        b.byte(1)                                             // event
        b.zigzag(2); b.zigzag(time); b.byte(5)                // id 2, WorkflowTaskScheduled
        b.string("q"); b.zigzag(10_000_000_000); b.zigzag(1)
        return b.bytes
    }

    @Test func aVersion1RecordDecodesIntoTheNewTypes() throws {
        var b = FlatBytes()
        b.byte(1); b.varint(1); b.string("default"); b.string("legacy"); b.string("r1")
        b.varint(3)
        // ActivityTaskTimedOut with a flat timeout failure.
        b.byte(1); b.zigzag(7); b.zigzag(Self.time); b.byte(14)
        b.failure(message: "activity StartToClose timeout", type: "TimeoutError", nonRetryable: false, details: nil, nextRetryDelay: nil,
                  timeoutType: 1, lastHeartbeatDetails: [1, 2, 3])
        b.zigzag(5); b.zigzag(6); b.byte(4)
        // A retry after an application failure whose details were an in-process worker's bytes.
        b.byte(5); b.zigzag(5); b.zigzag(2); b.zigzag(Self.time)
        b.failure(message: "declined", type: "CardDeclined", nonRetryable: true, details: Array("abc".utf8), nextRetryDelay: .seconds(2),
                  timeoutType: nil, lastHeartbeatDetails: nil)
        // A signal whose input was an empty Payloads message.
        b.byte(1); b.zigzag(8); b.zigzag(Self.time); b.byte(26)
        b.string("go"); b.present(); b.blob([]); b.string("cli")

        let record = try TransitionRecord.decode(b.bytes, context: "test")
        let changes = try #require(record.runs.first?.changes)
        #expect(changes.count == 3)
        guard case .event(let timedOut) = changes[0], case .activityTaskTimedOut(let t) = timedOut.attributes else {
            Issue.record("ActivityTaskTimedOut"); return
        }
        #expect(t.failure == Failure(message: "activity StartToClose timeout", source: "Server",
                                     info: .timeout(TimeoutFailureInfo(timeoutType: .startToClose, lastHeartbeatDetails: [.binary([1, 2, 3])]))))
        #expect(t.scheduledEventID == 5 && t.startedEventID == 6 && t.retryState == .maximumAttemptsReached)
        #expect(timedOut.userMetadata == nil)
        guard case .activityRetryScheduled(let scheduledEventID, let attempt, _, let failure) = changes[1] else { Issue.record("retry"); return }
        #expect(scheduledEventID == 5 && attempt == 2)
        #expect(failure == .application("declined", type: "CardDeclined", nonRetryable: true, details: [.binary(Array("abc".utf8))],
                                        nextRetryDelay: .seconds(2)))
        guard case .event(let signaled) = changes[2], case .workflowExecutionSignaled(let s) = signaled.attributes else {
            Issue.record("WorkflowExecutionSignaled"); return
        }
        #expect(s.input == [] && s.header == Header() && s.requestID.isEmpty && s.identity == "cli")
    }

    @Test func anEnvelopeOfSpoolServeIsReadAsItsPayloads() throws {
        let record = try TransitionRecord.decode(Self.startRecord(workflowID: "w", runID: "r"), context: "test")
        guard case .event(let event)? = record.runs.first?.changes.first, case .workflowExecutionStarted(let started) = event.attributes else {
            Issue.record("WorkflowExecutionStarted"); return
        }
        #expect(started.input == [Payload(metadata: ["encoding": Array("json/plain".utf8)], data: Array("\"hi\"".utf8))])
        #expect(started.header == Header() && started.identity == "starter" && started.requestID == "req-1")
        // Bytes that are not such a message are one binary/plain payload.
        #expect(LegacyPayloads.payloads(fromFlatBytes: [0x0A, 0x05, 1]) == [.binary([0x0A, 0x05, 1])])
        #expect(LegacyPayloads.payloads(fromFlatBytes: Array("order 42".utf8)) == [.binary(Array("order 42".utf8))])
    }

    @Test func aDataDirectoryWithVersion1RecordsOpensReplaysAndCompacts() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/store"
        let configuration = HistoryFixture.configuration(h.clock)
        try await SpoolEngine.open(directory: data, configuration: configuration).close()
        // Records an older Spool wrote: a run started through `spool serve`.
        let log = try Log.open(directory: data + "/history", configuration: configuration.log)
        _ = try await log.append(Self.startRecord(workflowID: "legacy", runID: "0000-legacy"))
        try log.close()

        let engine = try SpoolEngine.open(directory: data, configuration: configuration)
        let task = try #require(try await engine.pollWorkflowTaskQueue(taskQueue: "q", identity: "w", timeout: .zero))
        #expect(task.workflowExecution == WorkflowExecution(workflowID: "legacy", runID: "0000-legacy"))
        guard case .workflowExecutionStarted(let started) = task.history.first?.attributes else { Issue.record("started"); return }
        #expect(started.input == [Payload(metadata: ["encoding": Array("json/plain".utf8)], data: Array("\"hi\"".utf8))])
        // New records follow the old ones in the same run.
        try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [
            .completeWorkflowExecution(.init(result: [.json("\"done\"")])),
        ], identity: "w", metadata: WorkflowTaskCompletionMetadata(sdkMetadata: WorkflowTaskCompletedMetadata(langUsedFlags: [1])))
        try await engine.close()

        let before = try await HistoryFixture.view(data, clock: h.clock)
        let history = try #require(before.histories["legacy/0000-legacy"])
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskCompleted, .workflowExecutionCompleted])
        #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock) == before)
        #expect(try SpoolEngine.verifyHistory(directory: data).findings == [])
        _ = try SpoolEngine.compactHistory(directory: data, configuration: configuration)
        #expect(try await HistoryFixture.view(data, clock: h.clock) == before)
    }
}
