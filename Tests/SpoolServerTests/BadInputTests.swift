import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Spool
import SpoolServer
import SpoolTestSupport
import Synchronization
import Testing

/// Issue 22, "Bad input": corrupt, truncated, oversized and wrong-typed protobuf bodies sent to
/// every implemented RPC each get a gRPC error, write nothing, and leave the server serving.
@Suite struct BadInputTests {
    /// The implemented methods of Temporal's WorkflowService.
    static let methods = [
        "GetSystemInfo", "DescribeNamespace", "StartWorkflowExecution", "GetWorkflowExecutionHistory",
        "SignalWorkflowExecution", "RequestCancelWorkflowExecution", "TerminateWorkflowExecution",
        "DescribeWorkflowExecution", "PollWorkflowTaskQueue", "RespondWorkflowTaskCompleted", "RespondWorkflowTaskFailed",
        "PollActivityTaskQueue", "RecordActivityTaskHeartbeat", "RespondActivityTaskCompleted", "RespondActivityTaskFailed",
        "RespondActivityTaskCanceled", "ShutdownWorker", "QueryWorkflow", "RespondQueryTaskCompleted",
        "SignalWithStartWorkflowExecution", "RespondActivityTaskCompletedById", "RespondActivityTaskFailedById",
        "RespondActivityTaskCanceledById", "RecordActivityTaskHeartbeatById", "ListWorkflowExecutions",
        "ScanWorkflowExecutions", "CountWorkflowExecutions", "ResetStickyTaskQueue", "GetWorkflowExecutionHistoryReverse",
        "RegisterNamespace", "ListNamespaces", "UpdateNamespace", "GetSearchAttributes", "DescribeTaskQueue",
        "UpdateTaskQueueConfig",
    ]

    /// The request size limit of the server under test (small, so the oversized body is cheap).
    static let limit = 64 << 10

    /// Bodies no WorkflowService request decodes from, or that break the size limit.
    static let bodies: [(name: String, bytes: [UInt8], expected: Set<RPCError.Code>)] = [
        // A tag whose varint never ends.
        ("corrupt", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], [.invalidArgument, .internalError]),
        // Field 1 announces 16 bytes and carries 3.
        ("truncated", [0x0A, 0x10, 0x61, 0x62, 0x63], [.invalidArgument, .internalError]),
        // Field 1 (a string or message in every request that has fields) as a 64-bit number,
        // then an end-group tag that was never opened.
        ("wrong-typed", [0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x0C], [.invalidArgument, .internalError]),
        // Field 9999 (no request has it), 70 KB of bytes: decodes, and is over the limit.
        ("oversized", varint(9999 << 3 | 2) + varint(70 << 10) + [UInt8](repeating: 0x61, count: 70 << 10), [.resourceExhausted]),
    ]

    static func varint(_ value: Int) -> [UInt8] {
        var value = UInt64(value), bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        return bytes + [UInt8(value)]
    }

    struct RawBytes: MessageSerializer, MessageDeserializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
        func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
            bytes.withUnsafeBytes { Array($0) }
        }
    }

    // The limit catches a hang, not slowness: in the full suite the sync tests that wait for
    // `spool` child processes hold the two cooperative threads this in-process server's handlers
    // also need, and the 100-odd calls took 170 s once on a loaded machine (1 s alone).
    @Test(.timeLimit(.minutes(10))) func everyImplementedMethodRefusesBadBodiesAndWritesNothing() async throws {
        let dir = TemporaryDirectory()
        let engine = try SpoolEngine.open(directory: dir.path + "/data")
        let server = TemporalServer(engine: engine, configuration: .init(host: "127.0.0.1", port: 0, pollTimeout: .seconds(1),
                                                                          maxRequestBytes: Self.limit))
        let address = Mutex<String?>(nil)
        let serving = Task { try await server.run { bound in address.withLock { $0 = bound } } }
        while address.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
        let port = Int(address.withLock { $0 }!.split(separator: ":").last!)!
        let before = fileStamps(dir.path + "/data")

        var outcomes: [String] = []
        try await withGRPCClient(transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)) { client in
            for method in Self.methods {
                let descriptor = MethodDescriptor(fullyQualifiedService: "temporal.api.workflowservice.v1.WorkflowService", method: method)
                for body in Self.bodies {
                    do {
                        _ = try await client.unary(request: ClientRequest(message: body.bytes), descriptor: descriptor,
                                                   serializer: RawBytes(), deserializer: RawBytes(), options: .defaults) { try $0.message }
                        outcomes.append("\(method) \(body.name): answered OK")
                    } catch let error as RPCError {
                        if !body.expected.contains(error.code) { outcomes.append("\(method) \(body.name): \(error.code) \(error.message)") }
                    }
                }
            }
            // Still serving: a well-formed call works.
            let info = MethodDescriptor(fullyQualifiedService: "temporal.api.workflowservice.v1.WorkflowService", method: "GetSystemInfo")
            let answer = try await client.unary(request: ClientRequest(message: []), descriptor: info, serializer: RawBytes(),
                                                deserializer: RawBytes(), options: .defaults) { try $0.message }
            #expect(!answer.isEmpty)
        }
        #expect(outcomes.isEmpty, "\(outcomes.joined(separator: "\n"))")
        #expect(fileStamps(dir.path + "/data") == before)
        server.beginShutdown()
        try await serving.value
        try await engine.close()
    }
}
