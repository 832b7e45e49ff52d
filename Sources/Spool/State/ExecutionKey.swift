import Synchronization

/// A run, fully named: the key of the engine's registry and of every task and timer.
struct ExecutionKey: Hashable, Sendable, CustomStringConvertible {
    var namespace: String
    var workflowID: String
    var runID: String

    var execution: WorkflowExecution { WorkflowExecution(workflowID: workflowID, runID: runID) }
    var workflowKey: WorkflowKey { WorkflowKey(namespace: namespace, workflowID: workflowID) }
    var description: String { "\(namespace)/\(workflowID)/\(runID)" }

    func error(_ code: SpoolError.Code, _ message: String, eventID: Int64? = nil) -> SpoolError {
        SpoolError(code, message, namespace: namespace, workflowID: workflowID, runID: runID, eventID: eventID)
    }
}

/// A workflow id within its namespace: the key of the "current run" map.
struct WorkflowKey: Hashable, Sendable {
    var namespace: String
    var workflowID: String
}

/// Generates the request ids the engine gives the polls it serves (recorded in WorkflowTaskStarted
/// and ActivityTaskStarted): a random per-process prefix and a counter, unique without a system
/// call per id.
enum RequestID {
    private static let prefix = RunID.generate().prefix(23)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        prefix + RunID.hexDigits(counter.add(1, ordering: .relaxed).newValue, 12)
    }
}

/// Generates run ids: random 128-bit UUIDs (version 4) in their usual text form.
enum RunID {
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        var high = generator.next() as UInt64
        var low = generator.next() as UInt64
        high = (high & ~0xF000) | 0x4000                       // version 4
        low = (low & ~(0xC << 60)) | (0x8 << 60)               // RFC 4122 variant
        let hex = hexDigits(high, 16) + hexDigits(low, 16)
        let characters = Array(hex)
        func part(_ range: Range<Int>) -> String { String(characters[range]) }
        return part(0..<8) + "-" + part(8..<12) + "-" + part(12..<16) + "-" + part(16..<20) + "-" + part(20..<32)
    }

    static func hexDigits(_ value: UInt64, _ width: Int) -> String {
        var text = String(value, radix: 16)
        while text.count < width { text = "0" + text }
        return text
    }
}
