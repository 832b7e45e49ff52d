import ArgumentParser
import Spool
import SpoolMatching
import SpoolServerProtos
import SpoolToolSupport

/// `spool workflow`: the engine's client operations on a data directory, for scripts and people.
struct WorkflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow",
        abstract: "Start, inspect, signal, cancel and terminate workflow executions in a data directory.",
        discussion: """
            Each command opens the engine on --data (the directory must exist; the history is in \
            DIR/history), does one client call and closes it. The command only records: workflow and \
            activity tasks are run by the process that runs workers on the directory (for example your \
            app, or `spool demo`), and so are timers. A command the engine rejects appends nothing. \
            Exit status: 0 done, 1 not found or rejected by the engine (already started, already \
            closed), 2 the directory cannot be used (missing, open in another process, corrupt), \
            64 bad options.
            """,
        subcommands: [WorkflowStart.self, WorkflowDescribe.self, WorkflowShow.self, WorkflowList.self, WorkflowCount.self,
                      WorkflowSignal.self, WorkflowCancel.self, WorkflowTerminate.self]
    )
}

struct WorkflowStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start a workflow execution.")

    @OptionGroup var options: EndpointOptions

    @Option(name: .long, help: "The workflow id.")
    var id: String

    @Option(name: .long, help: "The workflow type.")
    var type: String

    @Option(name: .long, help: "The task queue of its workflow tasks.")
    var taskQueue: String

    @Option(name: .long, help: "Its input, as text (one `binary/plain` payload).")
    var input: String?

    @Option(name: .long, help: "When a closed run with this id exists: allow-duplicate, allow-duplicate-failed-only, reject-duplicate, terminate-if-running.")
    var idReusePolicy: ReusePolicyOption = .allowDuplicate

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        try checkIdentifier(id, option: "--id")
        try checkIdentifier(type, option: "--type")
        do { try TaskQueueName.validate(taskQueue) } catch {
            throw ValidationError("bad --task-queue '\(IdentifierText.shown(taskQueue))': \(error.message)")
        }
    }

    func run() async throws {
        if let server = try options.remote(command: "workflow start") {
            var request = Temporal_Api_Workflowservice_V1_StartWorkflowExecutionRequest()
            request.namespace = RemoteServer.namespace
            request.workflowID = id
            request.workflowType.name = type
            request.taskQueue.name = taskQueue
            if let input { request.input.payloads = [plainTextPayload(input)] }
            request.identity = "spool-cli"
            request.requestID = randomRequestID()
            request.workflowIDReusePolicy = Temporal_Api_Enums_V1_WorkflowIdReusePolicy(rawValue: Int(idReusePolicy.policy.rawValue)) ?? .unspecified
            let response = try await server.call { client, options, metadata in
                try await client.startWorkflowExecution(request, metadata: metadata, options: options)
            }
            printStarted(runID: response.runID, started: response.started, place: server.address)
            return
        }
        let engine = try options.directory.openEngine(command: "workflow start", create: true)
        let request = StartWorkflowExecutionRequest(workflowID: id, workflowType: type, taskQueue: taskQueue,
                                                    input: input.map { Payloads.binary($0) }, identity: "spool-cli",
                                                    workflowIDReusePolicy: idReusePolicy.policy)
        let response: StartWorkflowExecutionResponse
        do {
            response = try await engine.startWorkflowExecution(request)
        } catch {
            try await reject(error, engine: engine, command: "workflow start")
        }
        try await closeEngine(engine, command: "workflow start")
        printStarted(runID: response.runID, started: response.started, place: "\(options.directory)")
    }

    private func printStarted(runID: String, started: Bool, place: String) {
        if json {
            print(JSON.object([("workflowId", .string(id)), ("runId", .string(runID)), ("started", .bool(started))]).text)
        } else {
            print("started workflow '\(id)' run \(runID) (type \(type), task queue \(taskQueue)) in \(place)")
        }
    }
}

struct WorkflowDescribe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe", abstract: "Show a run's status, type, times, pending activities and pending workflow task.")

    @OptionGroup var options: EndpointOptions
    @OptionGroup var target: ExecutionOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        if let server = try options.remote(command: "workflow describe") {
            var request = Temporal_Api_Workflowservice_V1_DescribeWorkflowExecutionRequest()
            request.namespace = RemoteServer.namespace
            request.execution = server.execution(target)
            let response = try await server.call { client, options, metadata in
                try await client.describeWorkflowExecution(request, metadata: metadata, options: options)
            }
            print(json ? protoJSON(response) : RemoteRendering.describeLines(response).joined(separator: "\n"))
            return
        }
        let engine = try openForExistingRun(options, target, command: "workflow describe", readOnly: true)
        let description: DescribeWorkflowExecutionResponse
        do {
            description = try engine.describeWorkflowExecution(execution: target.execution)
        } catch {
            try await reject(error, engine: engine, command: "workflow describe")
        }
        try await closeEngine(engine, command: "workflow describe")
        if json {
            print(description.json.text)
        } else {
            for line in description.lines { print(line) }
        }
    }
}

struct WorkflowShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print a run's history as a table (or JSON lines).")

    @OptionGroup var options: EndpointOptions
    @OptionGroup var target: ExecutionOptions

    @Flag(name: .long, help: "Print one JSON object per event.")
    var json = false

    func run() async throws {
        if let server = try options.remote(command: "workflow show") {
            let events = try await server.history(target)
            for line in json ? events.map(protoJSON) : RemoteRendering.historyTable(events) { print(line) }
            return
        }
        let engine = try openForExistingRun(options, target, command: "workflow show", readOnly: true)
        let events: [HistoryEvent]
        do {
            events = try await readHistory(engine, execution: target.execution)
        } catch {
            try await reject(error, engine: engine, command: "workflow show")
        }
        try await closeEngine(engine, command: "workflow show")
        for line in json ? HistoryRendering.jsonLines(events) : HistoryRendering.table(events) { print(line) }
    }
}

struct WorkflowList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List runs, newest start first, or those a visibility query selects.",
        discussion: """
            --query takes Temporal's visibility query language, for example \
            "WorkflowType = 'order' AND ExecutionStatus = 'Running' AND StartTime > '2026-12-01T00:00:00Z'" \
            (Docs/engine.md lists the attributes and operators). A malformed query exits 64 with the \
            column and the problem.
            """)

    @OptionGroup var options: EndpointOptions

    @Option(name: .long, help: "Only runs with this status: running, completed, failed, canceled, terminated, continued-as-new, timed-out.")
    var status: StatusOption?

    @Option(name: .long, help: "Only runs of this workflow type.")
    var type: String?

    @Option(name: .long, help: "A visibility query (instead of --status and --type).")
    var query: String?

    @Option(name: .long, help: "At most this many runs.")
    var limit: Int?

    @Flag(name: .long, help: "Print one JSON object per run.")
    var json = false

    func validate() throws {
        if query != nil, status != nil || type != nil {
            throw ValidationError("--query cannot be combined with --status or --type (write them into the query)")
        }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit)") }
    }

    /// The query the options ask for: --query, or --status and --type written as one.
    var effectiveQuery: String {
        if let query { return query }
        var conditions: [String] = []
        if let status { conditions.append("ExecutionStatus = '\(status.status)'") }
        if let type { conditions.append("WorkflowType = '\(type.replacingAll("'", with: "''"))'") }
        return conditions.joined(separator: " AND ")
    }

    func run() async throws {
        if let server = try options.remote(command: "workflow list") {
            let runs = try await server.list(query: effectiveQuery, limit: limit)
            if json {
                for run in runs { print(protoJSON(run)) }
            } else {
                for line in RunRow.table(RemoteRendering.runRows(runs)) { print(line) }
                print("\(runs.count) run\(runs.count == 1 ? "" : "s") at \(server.address)")
            }
            return
        }
        let directory = options.directory
        try directory.requireDataDirectory(command: "workflow list", create: false)
        var runs: [WorkflowExecutionInfo] = []
        // A directory without a history holds no runs: say so without creating one (a bad query
        // is still reported).
        if directory.hasHistory {
            let engine = try directory.openEngine(command: "workflow list", create: false, readOnly: true)
            do throws(SpoolError) {
                var token: [UInt8]?
                repeat {
                    let page = try engine.listWorkflowExecutions(query: effectiveQuery, pageSize: min(limit ?? 1000, 1000),
                                                                 nextPageToken: token)
                    runs += page.executions
                    token = page.nextPageToken
                } while token != nil && runs.count < (limit ?? .max)
                if let limit, runs.count > limit { runs.removeLast(runs.count - limit) }
            } catch {
                try await rejectQuery(error, engine: engine, command: "workflow list")
            }
            try await closeEngine(engine, command: "workflow list")
        } else {
            do {
                _ = try VisibilityQuery(effectiveQuery)
            } catch {
                printError("spool workflow list: \(error.message)")
                throw ExitCode.validationFailure
            }
        }
        if json {
            for run in runs { print(run.json.text) }
            return
        }
        let rows = runs.map { run in
            RunRow(workflowID: run.execution.workflowID, runID: run.execution.runID, type: run.type, status: run.status.description,
                   startTime: run.startTime, closeTime: run.closeTime, historyLength: run.historyLength)
        }
        for line in RunRow.table(rows) { print(line) }
        print("\(runs.count) run\(runs.count == 1 ? "" : "s") in \(directory)")
    }
}

struct WorkflowCount: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "count", abstract: "Count runs, all or those a visibility query selects; GROUP BY ExecutionStatus counts per status.")

    @OptionGroup var options: EndpointOptions

    @Option(name: .long, help: "A visibility query; `GROUP BY ExecutionStatus` counts per status.")
    var query = ""

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        var count: Int64 = 0
        var groups: [(values: [String], count: Int64)] = []
        if let server = try options.remote(command: "workflow count") {
            var request = Temporal_Api_Workflowservice_V1_CountWorkflowExecutionsRequest()
            request.namespace = RemoteServer.namespace
            request.query = query
            let response = try await server.call(rejectInvalidArgumentAsUsage: true) { client, options, metadata in
                try await client.countWorkflowExecutions(request, metadata: metadata, options: options)
            }
            count = response.count
            groups = response.groups.map { group in
                (group.groupValues.map { value in
                    // Each value is a JSON payload (a status name, a keyword): shown without quotes.
                    let text = String(decoding: value.data, as: UTF8.self)
                    return text.hasPrefix("\"") && text.hasSuffix("\"") && text.count >= 2 ? String(text.dropFirst().dropLast()) : text
                }, group.count)
            }
            printCount(count, groups)
            return
        }
        let directory = options.directory
        try directory.requireDataDirectory(command: "workflow count", create: false)
        if directory.hasHistory {
            let engine = try directory.openEngine(command: "workflow count", create: false, readOnly: true)
            do throws(SpoolError) {
                let result = try engine.countWorkflowExecutions(query: query)
                count = result.count
                groups = result.groups.map { group in (values: group.values.map { $0.plainText }, count: group.count) }
            } catch {
                try await rejectQuery(error, engine: engine, command: "workflow count")
            }
            try await closeEngine(engine, command: "workflow count")
        } else {
            do {
                _ = try VisibilityQuery(query)
            } catch {
                printError("spool workflow count: \(error.message)")
                throw ExitCode.validationFailure
            }
        }
        printCount(count, groups)
    }

    private func printCount(_ count: Int64, _ groups: [(values: [String], count: Int64)]) {
        if json {
            let groupObjects: [JSON] = groups.map { group in
                let values: [JSON] = group.values.map { JSON.string($0) }
                return JSON.object([("values", JSON.array(values)), ("count", JSON.integer(Int(group.count)))])
            }
            print(JSON.object([("count", .integer(Int(count))), ("groups", .array(groupObjects))]).text)
            return
        }
        print("\(count) run\(count == 1 ? "" : "s")")
        for group in groups {
            print("  " + group.values.joined(separator: ", ") + ": " + String(group.count))
        }
    }
}

/// Reports a rejected visibility call: a bad query is bad input (exit 64), anything else as
/// ``reject(_:engine:command:)``.
func rejectQuery(_ error: SpoolError, engine: SpoolEngine, command: String) async throws -> Never {
    guard error.code == .invalidArgument else { try await reject(error, engine: engine, command: command) }
    printError("spool \(command): \(error.message)")
    try await closeEngine(engine, command: command)
    throw ExitCode.validationFailure
}

extension SearchAttributeValue {
    /// The value without quotes, as a table or JSON shows it.
    var plainText: String {
        switch self {
        case .text(let s), .keyword(let s): s
        default: description
        }
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        for c in self { if c == target { result += replacement } else { result.append(c) } }
        return result
    }
}

struct WorkflowSignal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "signal", abstract: "Send a signal to an open run.")

    @OptionGroup var options: EndpointOptions
    @OptionGroup var target: ExecutionOptions

    @Option(name: .long, help: "The signal's name.")
    var name: String

    @Option(name: .long, help: "Its input, as text (one `binary/plain` payload).")
    var input: String?

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        try checkIdentifier(name, option: "--name")
    }

    func run() async throws {
        if let server = try options.remote(command: "workflow signal") {
            var request = Temporal_Api_Workflowservice_V1_SignalWorkflowExecutionRequest()
            request.namespace = RemoteServer.namespace
            request.workflowExecution = server.execution(target)
            request.signalName = name
            if let input { request.input.payloads = [plainTextPayload(input)] }
            request.identity = "spool-cli"
            request.requestID = randomRequestID()
            _ = try await server.call { client, options, metadata in
                try await client.signalWorkflowExecution(request, metadata: metadata, options: options)
            }
            report(json: json, action: "signaled", target, extra: [("signalName", .string(name))])
            return
        }
        let engine = try openForExistingRun(options, target, command: "workflow signal")
        do {
            try await engine.signalWorkflowExecution(execution: target.execution, signalName: name,
                                                     input: input.map { Payloads.binary($0) }, identity: "spool-cli")
        } catch {
            try await reject(error, engine: engine, command: "workflow signal")
        }
        try await closeEngine(engine, command: "workflow signal")
        report(json: json, action: "signaled", target, extra: [("signalName", .string(name))])
    }
}

struct WorkflowCancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Ask an open run to cancel itself (WorkflowExecutionCancelRequested; the workflow decides).")

    @OptionGroup var options: EndpointOptions
    @OptionGroup var target: ExecutionOptions

    @Option(name: .long, help: "Why.")
    var reason = ""

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        if let server = try options.remote(command: "workflow cancel") {
            var describe = Temporal_Api_Workflowservice_V1_DescribeWorkflowExecutionRequest()
            describe.namespace = RemoteServer.namespace
            describe.execution = server.execution(target)
            var request = Temporal_Api_Workflowservice_V1_RequestCancelWorkflowExecutionRequest()
            request.namespace = RemoteServer.namespace
            request.workflowExecution = server.execution(target)
            request.reason = reason
            request.identity = "spool-cli"
            request.requestID = randomRequestID()
            let closedStatus: String? = try await server.call { client, options, metadata in
                // As on a data directory: a person asking to cancel a closed run is told so.
                let status = try await client.describeWorkflowExecution(describe, metadata: metadata, options: options).workflowExecutionInfo.status
                guard status == .running else { return statusName(status) }
                _ = try await client.requestCancelWorkflowExecution(request, metadata: metadata, options: options)
                return nil
            }
            if let closedStatus {
                printError("spool workflow cancel: \(server.address): the workflow execution is already \(closedStatus)")
                throw WorkflowExit.rejected
            }
            report(json: json, action: "cancel requested", target, extra: [])
            return
        }
        let engine = try openForExistingRun(options, target, command: "workflow cancel")
        do throws(SpoolError) {
            // The engine answers a cancel of a closed run with success, as Temporal does for a
            // client's retry; a person at the command line is told instead.
            let status = try engine.describeWorkflowExecution(execution: target.execution).executionInfo.status
            if status != .running {
                throw SpoolError(.notFound, "the workflow execution is already \(status)",
                                 workflowID: target.execution.workflowID, runID: target.execution.runID)
            }
            try await engine.requestCancelWorkflowExecution(execution: target.execution, reason: reason, identity: "spool-cli")
        } catch {
            try await reject(error, engine: engine, command: "workflow cancel")
        }
        try await closeEngine(engine, command: "workflow cancel")
        report(json: json, action: "cancel requested", target, extra: [])
    }
}

struct WorkflowTerminate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "terminate", abstract: "Close an open run at once (WorkflowExecutionTerminated).")

    @OptionGroup var options: EndpointOptions
    @OptionGroup var target: ExecutionOptions

    @Option(name: .long, help: "Why (recorded in the event).")
    var reason = ""

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        if let server = try options.remote(command: "workflow terminate") {
            var request = Temporal_Api_Workflowservice_V1_TerminateWorkflowExecutionRequest()
            request.namespace = RemoteServer.namespace
            request.workflowExecution = server.execution(target)
            request.reason = reason
            request.identity = "spool-cli"
            _ = try await server.call { client, options, metadata in
                try await client.terminateWorkflowExecution(request, metadata: metadata, options: options)
            }
            report(json: json, action: "terminated", target, extra: [])
            return
        }
        let engine = try openForExistingRun(options, target, command: "workflow terminate")
        do {
            try await engine.terminateWorkflowExecution(execution: target.execution, reason: reason, identity: "spool-cli")
        } catch {
            try await reject(error, engine: engine, command: "workflow terminate")
        }
        try await closeEngine(engine, command: "workflow terminate")
        report(json: json, action: "terminated", target, extra: [])
    }
}

/// Opens the engine for a command about one run; a directory without a history has no runs, so
/// the command fails with status 1 without creating one.
private func openForExistingRun(_ options: EndpointOptions, _ target: ExecutionOptions, command: String,
                                readOnly: Bool = false) throws -> SpoolEngine {
    let directory = options.directory
    try directory.requireDataDirectory(command: command, create: false)
    guard directory.hasHistory else {
        printError("spool \(command): \(directory): no such workflow execution: \(target.named) (the directory holds no workflow history)")
        throw WorkflowExit.rejected
    }
    return try directory.openEngine(command: command, create: false, readOnly: readOnly)
}

private func report(json: Bool, action: String, _ target: ExecutionOptions, extra: [(String, JSON)]) {
    if json {
        var fields: [(String, JSON)] = [("workflowId", .string(target.id))]
        if !target.runID.isEmpty { fields.append(("runId", .string(target.runID))) }
        print(JSON.object(fields + [("result", .string(action))] + extra).text)
    } else {
        print("\(target.named): \(action)")
    }
}

extension WorkflowExecutionInfo {
    var json: JSON {
        .object([
            ("workflowId", .string(execution.workflowID)), ("runId", .string(execution.runID)), ("type", .string(type)),
            ("taskQueue", .string(taskQueue)), ("status", .string(status.description)), ("startTime", .string(isoTime(startTime))),
            ("closeTime", closeTime.map { .string(isoTime($0)) } ?? .string("")), ("historyLength", .integer(Int(historyLength))),
        ])
    }
}

extension DescribeWorkflowExecutionResponse {
    var json: JSON {
        var fields: [(String, JSON)] = [("executionInfo", executionInfo.json), ("cancelRequested", .bool(cancelRequested)),
                                        ("bufferedEventCount", .integer(bufferedEventCount))]
        if let task = pendingWorkflowTask {
            fields.append(("pendingWorkflowTask", .object([
                ("state", .string(task.started ? "started" : "scheduled")), ("scheduledEventId", .integer(Int(task.scheduledEventID))),
                ("scheduledTime", .string(isoTime(task.scheduledTime))), ("attempt", .integer(Int(task.attempt))),
                ("taskQueue", .string(task.taskQueue)),
            ])))
        }
        fields.append(("pendingActivities", .array(pendingActivities.map { activity in
            var entry: [(String, JSON)] = [
                ("activityId", .string(activity.activityID)), ("activityType", .string(activity.activityType)),
                ("scheduledEventId", .integer(Int(activity.scheduledEventID))), ("state", .string(activity.state.name)),
                ("attempt", .integer(Int(activity.attempt))),
            ]
            if let details = activity.heartbeatDetails { entry.append(("heartbeatDetails", .string(details.map { String(decoding: $0.data, as: UTF8.self) }.joined(separator: ",")))) }
            if let failure = activity.lastFailure { entry.append(("lastFailure", .string(failure.description))) }
            return .object(entry)
        })))
        fields.append(("pendingTimerIds", .array(pendingTimerIDs.map { .string($0) })))
        return .object(fields)
    }

    var lines: [String] {
        let info = executionInfo
        var out = [
            "workflow id    \(info.execution.workflowID)",
            "run id         \(info.execution.runID)",
            "type           \(info.type)",
            "task queue     \(info.taskQueue)",
            "status         \(info.status)\(cancelRequested ? " (cancel requested)" : "")",
            "started        \(isoTime(info.startTime))",
            "closed         \(info.closeTime.map(isoTime) ?? "-")",
            "history        \(info.historyLength) events",
        ]
        if let task = pendingWorkflowTask {
            out.append("workflow task  \(task.started ? "started" : "scheduled") (event \(task.scheduledEventID), attempt \(task.attempt), "
                       + "queue \(task.taskQueue), scheduled \(isoTime(task.scheduledTime)))")
        } else {
            out.append("workflow task  none")
        }
        if pendingActivities.isEmpty {
            out.append("activities     none pending")
        } else {
            out.append("activities     \(pendingActivities.count) pending:")
            for activity in pendingActivities {
                var line = "  \(activity.activityType) id=\(activity.activityID) event=\(activity.scheduledEventID) \(activity.state.name) attempt=\(activity.attempt)"
                if let details = activity.heartbeatDetails { line += " heartbeat=\(details.map { preview($0.data, limit: 40) }.joined(separator: ","))" }
                if let failure = activity.lastFailure { line += " lastFailure='\(failure)'" }
                out.append(line)
            }
        }
        if !pendingTimerIDs.isEmpty { out.append("timers         \(pendingTimerIDs.joined(separator: ", "))") }
        if bufferedEventCount > 0 { out.append("buffered       \(bufferedEventCount) events") }
        return out
    }
}

extension PendingActivityState {
    var name: String {
        switch self {
        case .scheduled: "scheduled"
        case .started: "started"
        case .cancelRequested: "cancelRequested"
        }
    }
}
