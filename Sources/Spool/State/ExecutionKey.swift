import Synchronization
import SpoolPrimitives

/// A run, fully named: the key of the engine's registry and of every task and timer.
struct ExecutionKey: Hashable, Sendable, CustomStringConvertible {
    var namespace: String
    var workflowID: String
    var runID: String

    var execution: WorkflowExecution { WorkflowExecution(workflowID: workflowID, runID: runID) }
    var workflowKey: WorkflowKey { WorkflowKey(namespace: namespace, workflowID: workflowID) }
    var description: String { "\(namespace)/\(workflowID)/\(runID)" }

    /// The run id alone tells runs apart (a random UUID the engine generated), so only it is hashed:
    /// the engine's maps look keys up about ten times a workflow, and hashing the namespace and
    /// workflow id too cost ~5k instructions a workflow. Equality still compares all three. A key
    /// without a run id (the current run, not resolved yet) hashes all three.
    func hash(into hasher: inout Hasher) {
        hasher.combine(runID)
        if runID.isEmpty {
            hasher.combine(namespace)
            hasher.combine(workflowID)
        }
    }

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
    private static let prefix = Array(RunID.generate().utf8.prefix(23))
    private static let counter = Atomic<UInt64>(0)

    /// Written byte by byte into one allocation: two per workflow (its workflow task's and its
    /// activity's start), and string concatenation made them ~5k instructions each.
    static func next() -> String {
        let value = counter.add(1, ordering: .relaxed).newValue
        return String(unsafeUninitializedCapacity: 35) { buffer in
            for index in 0..<23 { buffer[index] = prefix[index] }
            RunID.writeHex(value, digits: 12, into: buffer, at: 23)
            return 35
        }
    }
}

/// Generates run ids: random 128-bit UUIDs (version 4) in their usual text form.
enum RunID {
    /// One per workflow start: written into one 36-byte allocation (building it from `String`
    /// pieces cost ~50k instructions, a tenth of a one-activity workflow), from the kernel's
    /// random bytes read a page at a time (``SystemRandomPool``), not a system call per half.
    static func generate() -> String {
        var generator = SystemRandomPool()
        var high = generator.next() as UInt64
        var low = generator.next() as UInt64
        high = (high & ~0xF000) | 0x4000                       // version 4
        low = (low & ~(0xC << 60)) | (0x8 << 60)               // RFC 4122 variant
        return String(unsafeUninitializedCapacity: 36) { buffer in
            // 8-4-4-4-12 hex digits: high's 16 digits are the first three groups, low's the last two.
            writeHex(high >> 32, digits: 8, into: buffer, at: 0)
            buffer[8] = UInt8(ascii: "-")
            writeHex(high >> 16, digits: 4, into: buffer, at: 9)
            buffer[13] = UInt8(ascii: "-")
            writeHex(high, digits: 4, into: buffer, at: 14)
            buffer[18] = UInt8(ascii: "-")
            writeHex(low >> 48, digits: 4, into: buffer, at: 19)
            buffer[23] = UInt8(ascii: "-")
            writeHex(low, digits: 12, into: buffer, at: 24)
            return 36
        }
    }

    /// Writes the low `digits` hex digits of `value` (lowercase, zero-padded) at `offset`.
    static func writeHex(_ value: UInt64, digits: Int, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        var rest = value
        for index in stride(from: offset + digits - 1, through: offset, by: -1) {
            let digit = UInt8(truncatingIfNeeded: rest & 0xF)
            buffer[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
            rest >>= 4
        }
    }
}
