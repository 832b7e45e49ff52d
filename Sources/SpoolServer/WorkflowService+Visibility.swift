import FoundationEssentials
import GRPCCore
import Spool
import SpoolServerProtos

/// List, Scan and Count with the visibility query language; the reverse history reader.
extension WorkflowService {
    func listWorkflowExecutions(request: Temporal_Api_Workflowservice_V1_ListWorkflowExecutionsRequest,
                                context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_ListWorkflowExecutionsResponse {
        let page = try await list(namespace: request.namespace, query: request.query, pageSize: request.pageSize,
                                  token: request.nextPageToken)
        var response = Temporal_Api_Workflowservice_V1_ListWorkflowExecutionsResponse()
        response.executions = page.executions.map(\.proto)
        if let next = page.nextPageToken { response.nextPageToken = Data(next) }
        return response
    }

    /// Temporal's Scan is List without an order guarantee; Spool's List order serves both.
    func scanWorkflowExecutions(request: Temporal_Api_Workflowservice_V1_ScanWorkflowExecutionsRequest,
                                context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_ScanWorkflowExecutionsResponse {
        let page = try await list(namespace: request.namespace, query: request.query, pageSize: request.pageSize,
                                  token: request.nextPageToken)
        var response = Temporal_Api_Workflowservice_V1_ScanWorkflowExecutionsResponse()
        response.executions = page.executions.map(\.proto)
        if let next = page.nextPageToken { response.nextPageToken = Data(next) }
        return response
    }

    private func list(namespace ns: String, query: String, pageSize: Int32, token: Data) async throws -> WorkflowExecutionPage {
        try await engineCall { () async throws(SpoolError) in
            // Temporal treats a page size of 0 or less as its default.
            try engine.listWorkflowExecutions(namespace: namespace(ns), query: query, pageSize: max(0, Int(pageSize)),
                                              nextPageToken: token.isEmpty ? nil : [UInt8](token))
        }
    }

    func countWorkflowExecutions(request: Temporal_Api_Workflowservice_V1_CountWorkflowExecutionsRequest,
                                 context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_CountWorkflowExecutionsResponse {
        let counted = try await engineCall { () async throws(SpoolError) in
            try engine.countWorkflowExecutions(namespace: namespace(request.namespace), query: request.query)
        }
        var response = Temporal_Api_Workflowservice_V1_CountWorkflowExecutionsResponse()
        response.count = counted.count
        response.groups = counted.groups.map { group in
            var g = Temporal_Api_Workflowservice_V1_CountWorkflowExecutionsResponse.AggregationGroup()
            g.groupValues = group.values.map(\.searchAttributePayload)
            g.count = group.count
            return g
        }
        return response
    }

    /// The run's history newest event first, paged. The token is the id of the next (older)
    /// event to return and the run it belongs to.
    func getWorkflowExecutionHistoryReverse(request: Temporal_Api_Workflowservice_V1_GetWorkflowExecutionHistoryReverseRequest,
                                            context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_GetWorkflowExecutionHistoryReverseResponse {
        let ns = namespace(request.namespace)
        var execution = WorkflowExecution(request.execution)
        var below = Int64.max
        if !request.nextPageToken.isEmpty {
            guard let token = ReverseHistoryToken(request.nextPageToken) else {
                throw RPCError(code: .invalidArgument, message: "next_page_token is not a reverse history page token")
            }
            execution = WorkflowExecution(workflowID: execution.workflowID, runID: token.runID)
            below = token.nextEventID + 1
        }
        let pageSize = request.maximumPageSize > 0 ? Int(request.maximumPageSize) : 1000
        let engine = self.engine
        let target = execution
        // The engine reads forward: read the run whole, then take the page from its end.
        let (events, run) = try await engineCall { () async throws(SpoolError) in
            var events: [HistoryEvent] = []
            var token: [UInt8]?
            var run = target
            repeat {
                let page = try await engine.getWorkflowExecutionHistory(namespace: ns, execution: target, maximumPageSize: 1000,
                                                                        nextPageToken: token)
                events += page.history
                run = page.execution
                token = page.nextPageToken
            } while token != nil
            return (events, run)
        }
        let older = events.filter { $0.eventID < below }
        let page = Array(older.suffix(pageSize).reversed())
        var translator = HistoryTranslator(events: events, execution: run)
        if translator.runTaskQueue.isEmpty, !events.isEmpty,
           let described = try? engine.describeWorkflowExecution(namespace: ns, execution: run) {
            translator.runTaskQueue = described.executionInfo.taskQueue
        }
        var response = Temporal_Api_Workflowservice_V1_GetWorkflowExecutionHistoryReverseResponse()
        response.history = translator.history(page)
        if let last = page.last, last.eventID > 1 {
            response.nextPageToken = ReverseHistoryToken(runID: run.runID, nextEventID: last.eventID - 1).data
        }
        return response
    }

    func resetStickyTaskQueue(request: Temporal_Api_Workflowservice_V1_ResetStickyTaskQueueRequest,
                              context: ServerContext) async throws -> Temporal_Api_Workflowservice_V1_ResetStickyTaskQueueResponse {
        try await engineCall { () async throws(SpoolError) in
            try await engine.resetStickyTaskQueue(namespace: namespace(request.namespace), execution: WorkflowExecution(request.execution))
        }
        return Temporal_Api_Workflowservice_V1_ResetStickyTaskQueueResponse()
    }
}

/// Where a reverse history read goes on: the run, and the id of the next (older) event.
struct ReverseHistoryToken {
    var runID: String
    var nextEventID: Int64

    init(runID: String, nextEventID: Int64) {
        self.runID = runID
        self.nextEventID = nextEventID
    }

    /// Version byte 1, the event id as 8 big-endian bytes, then the run id's UTF-8.
    init?(_ data: Data) {
        let bytes = [UInt8](data)
        guard bytes.count > 9, bytes[0] == 1 else { return nil }
        var id: Int64 = 0
        for byte in bytes[1..<9] { id = id << 8 | Int64(byte) }
        guard id >= 1, let run = String(validating: bytes[9...], as: UTF8.self) else { return nil }
        runID = run
        nextEventID = id
    }

    var data: Data {
        var bytes: [UInt8] = [1]
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: nextEventID >> Int64(shift))) }
        return Data(bytes + Array(runID.utf8))
    }
}

extension WorkflowExecutionInfo {
    /// Temporal's `WorkflowExecutionInfo` of a run, as List and Describe return it.
    var proto: Temporal_Api_Workflow_V1_WorkflowExecutionInfo {
        var execution = Temporal_Api_Workflow_V1_WorkflowExecutionInfo()
        execution.execution = self.execution.proto
        execution.type = protoWorkflowType(type)
        execution.startTime = startTime.proto
        // The start time plus the first workflow task's backoff (start delay, cron, retry).
        execution.executionTime = (executionTime ?? startTime).proto
        if let closeTime {
            execution.closeTime = closeTime.proto
            // Temporal counts it from the execution time; a run closed during its start delay took none.
            execution.executionDuration = max(.zero, closeTime.duration(since: executionTime ?? startTime)).proto
        }
        execution.status = status.proto
        execution.historyLength = historyLength
        execution.taskQueue = taskQueue
        // Temporal names the parent's namespace by id; Spool's namespace ids are their names.
        if let parent = parentExecution {
            execution.parentNamespaceID = parentNamespace
            execution.parentExecution = parent.proto
        }
        execution.rootExecution = (rootExecution ?? self.execution).proto
        // Temporal answers empty messages when the run has none, and the search attributes as
        // the client or worker sent them (typed payloads).
        execution.memo = protoMemo(memo)
        execution.searchAttributes = protoSearchAttributes(searchAttributes)
        execution.firstRunID = firstRunID
        return execution
    }
}

extension SearchAttributeValue {
    /// The value as Temporal encodes a search attribute: a `json/plain` payload with its type
    /// in the `type` metadata.
    var searchAttributePayload: Temporal_Api_Common_V1_Payload {
        var payload = Temporal_Api_Common_V1_Payload()
        payload.metadata = ["encoding": Data("json/plain".utf8), "type": Data(type.description.utf8)]
        func jsonString(_ s: String) -> String { String(decoding: Payload.jsonString(s).data, as: UTF8.self) }
        let json: String
        switch self {
        case .text(let s), .keyword(let s): json = jsonString(s)
        case .int(let n): json = String(n)
        case .double(let d): json = d.isFinite ? String(d) : "null"
        case .bool(let b): json = b ? "true" : "false"
        case .datetime: json = jsonString(description.trimmingCharacters(in: ["'"]))
        case .keywordList(let list): json = "[" + list.map(jsonString).joined(separator: ",") + "]"
        }
        payload.data = Data(json.utf8)
        return payload
    }
}
