import ArgumentParser
import Spool
import SpoolMatching
import SpoolServerProtos
import SpoolToolSupport

/// `spool task-queue`: describe, configure, pause and resume the engine's task queues in a data directory.
struct TaskQueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task-queue",
        abstract: "Describe, configure, pause and resume the workflow and activity task queues of a data directory.",
        discussion: """
            `describe` opens the engine read-only: it shows the queue's durable settings and the \
            backlog rebuilt from the history; pollers are only visible in the process they poll \
            (a describe through the Swift API there lists them). `config`, `pause` and `resume` \
            open the engine (taking the data directory's lock: not while another process has it \
            open) and write DIR/task-queues, which every later open applies. \
            Exit status: 0 done, 1 rejected by the engine (a bad value), 2 the directory cannot be \
            used, 64 bad options.
            """,
        subcommands: [TaskQueueDescribe.self, TaskQueueConfigure.self, TaskQueuePause.self, TaskQueueResume.self]
    )
}

/// `--data DIR --task-queue NAME [--namespace NS] [--kind workflow|activity]`.
struct TaskQueueTarget: ParsableArguments {
    @OptionGroup var options: EndpointOptions

    @Option(name: .long, help: "The task queue's name.")
    var taskQueue: String

    @Option(name: .long, help: "The namespace.")
    var namespace: String = defaultNamespace

    @Option(name: .long, help: "Which queue of the name: workflow or activity.")
    var kind: TaskQueueKindOption = .activity

    func validate() throws {
        do { try TaskQueueName.validate(taskQueue) } catch {
            throw ValidationError("bad --task-queue '\(IdentifierText.shown(taskQueue))': \(error.message)")
        }
        if let problem = IdentifierText.problem(in: namespace) {
            throw ValidationError("bad --namespace '\(IdentifierText.shown(namespace))': \(problem)")
        }
    }
}

/// `--kind workflow|activity`.
enum TaskQueueKindOption: String, ExpressibleByArgument, CaseIterable {
    case workflow, activity
    var kind: TaskQueueKind { self == .workflow ? .workflow : .activity }
    var protoType: Temporal_Api_Enums_V1_TaskQueueType { self == .workflow ? .workflow : .activity }
}

struct TaskQueueDescribe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe", abstract: "Show a task queue's settings, effective rate, partitions and backlog per priority.")

    @OptionGroup var target: TaskQueueTarget

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        let command = "task-queue describe"
        if let server = try target.options.remote(command: command) {
            var request = Temporal_Api_Workflowservice_V1_DescribeTaskQueueRequest()
            request.namespace = target.namespace
            request.taskQueue.name = target.taskQueue
            request.taskQueueType = target.kind.protoType
            request.reportStats = true
            request.reportConfig = true
            let response = try await server.call { client, options, metadata in
                try await client.describeTaskQueue(request, metadata: metadata, options: options)
            }
            print(json ? protoJSON(response) : RemoteRendering.taskQueueLines(response, target: target).joined(separator: "\n"))
            return
        }
        let engine = try target.options.directory.openEngine(command: command, create: false, readOnly: true)
        let info: TaskQueueInfo
        do {
            info = try engine.describeTaskQueue(namespace: target.namespace, taskQueue: target.taskQueue, kind: target.kind.kind)
        } catch {
            try await reject(error, engine: engine, command: command)
        }
        try await closeEngine(engine, command: command)
        print(json ? info.json.text : info.lines.joined(separator: "\n"))
    }
}

struct TaskQueueConfigure: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Set or clear a task queue's rate limits and partitions (durable); with none, show its settings.")

    @OptionGroup var target: TaskQueueTarget

    @Option(name: .long, help: "Tasks per second across all workers (0 holds every task back); takes precedence over pollers' rates.")
    var rate: Double?

    @Flag(name: .long, help: "Remove the configured rate (pollers' rates apply again).")
    var clearRate = false

    @Option(name: .long, help: "Tasks per second for each fairness key, scaled by the key's weight (Temporal's fairness_keys_rate_limit_default; 0 holds back every task with a key).")
    var keyRate: Double?

    @Flag(name: .long, help: "Remove the per-fairness-key rate.")
    var clearKeyRate = false

    @Option(name: .long, help: "Why (recorded with the rate).")
    var reason: String = ""

    @Option(name: .long, help: "Partitions of the queue, 1…64 (a queue in use gets them at the next open).")
    var partitions: Int?

    @Flag(name: .long, help: "Return to the engine's default partitions.")
    var clearPartitions = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        if rate != nil && clearRate { throw ValidationError("--rate and --clear-rate cannot be used together") }
        if partitions != nil && clearPartitions { throw ValidationError("--partitions and --clear-partitions cannot be used together") }
        if let rate, !(rate.isFinite && rate >= 0) { throw ValidationError("--rate must be a number of tasks per second ≥ 0 (got \(rate))") }
        if keyRate != nil && clearKeyRate { throw ValidationError("--key-rate and --clear-key-rate cannot be used together") }
        if let keyRate, !(keyRate.isFinite && keyRate >= 0) { throw ValidationError("--key-rate must be a number of tasks per second ≥ 0 (got \(keyRate))") }
        if let partitions, !(1...64).contains(partitions) { throw ValidationError("--partitions must be 1…64 (got \(partitions))") }
    }

    func run() async throws {
        let command = "task-queue config"
        let changes = rate != nil || clearRate || partitions != nil || clearPartitions || keyRate != nil || clearKeyRate
        if let server = try target.options.remote(command: command) {
            try await runRemote(server, changes: changes)
            return
        }
        let engine = try target.options.directory.openEngine(command: command, create: false, readOnly: !changes)
        let config: TaskQueueConfig
        do {
            if changes {
                var request = UpdateTaskQueueConfigRequest(namespace: target.namespace, taskQueue: target.taskQueue, kind: target.kind.kind,
                                                           identity: "spool-cli")
                if let rate { request.queueRateLimit = .set(requestsPerSecond: rate, reason: reason) }
                if clearRate { request.queueRateLimit = .unset(reason: reason) }
                if let keyRate { request.fairnessKeyRateLimit = .set(requestsPerSecond: keyRate, reason: reason) }
                if clearKeyRate { request.fairnessKeyRateLimit = .unset(reason: reason) }
                if let partitions { request.partitions = .some(partitions) }
                if clearPartitions { request.partitions = .some(nil) }
                config = try engine.updateTaskQueueConfig(request)
            } else {
                config = try engine.taskQueueConfig(namespace: target.namespace, taskQueue: target.taskQueue, kind: target.kind.kind)
            }
        } catch {
            try await reject(error, engine: engine, command: command)
        }
        try await closeEngine(engine, command: command)
        print(json ? config.json.text : config.lines.joined(separator: "\n"))
    }

    /// Through a server: the queue rate with Temporal's UpdateTaskQueueConfig (partitions are
    /// not in Temporal's API); without a change, the configuration DescribeTaskQueue reports.
    private func runRemote(_ server: RemoteServer, changes: Bool) async throws {
        if partitions != nil || clearPartitions {
            printError("spool task-queue config: --partitions and --clear-partitions are not in Temporal's API: "
                       + "set them with --data while the server is stopped")
            throw ExitCode.validationFailure
        }
        let config: Temporal_Api_Taskqueue_V1_TaskQueueConfig
        if changes {
            var request = Temporal_Api_Workflowservice_V1_UpdateTaskQueueConfigRequest()
            request.namespace = target.namespace
            request.taskQueue = target.taskQueue
            request.taskQueueType = target.kind.protoType
            request.identity = "spool-cli"
            // A rate sets a limit; an update without one removes it, as in Temporal.
            func update(_ rate: Double?) -> Temporal_Api_Workflowservice_V1_UpdateTaskQueueConfigRequest.RateLimitUpdate {
                var update = Temporal_Api_Workflowservice_V1_UpdateTaskQueueConfigRequest.RateLimitUpdate()
                update.reason = reason
                if let rate { update.rateLimit.requestsPerSecond = Float(rate) }
                return update
            }
            if rate != nil || clearRate { request.updateQueueRateLimit = update(rate) }
            if keyRate != nil || clearKeyRate { request.updateFairnessKeyRateLimitDefault = update(keyRate) }
            config = try await server.call { client, options, metadata in
                try await client.updateTaskQueueConfig(request, metadata: metadata, options: options).config
            }
        } else {
            var request = Temporal_Api_Workflowservice_V1_DescribeTaskQueueRequest()
            request.namespace = target.namespace
            request.taskQueue.name = target.taskQueue
            request.taskQueueType = target.kind.protoType
            request.reportConfig = true
            config = try await server.call { client, options, metadata in
                try await client.describeTaskQueue(request, metadata: metadata, options: options).config
            }
        }
        print(json ? protoJSON(config) : RemoteRendering.configLines(config).joined(separator: "\n"))
    }
}

struct TaskQueuePause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Pause a task queue (durable): polls get nothing, added tasks are kept.")

    @OptionGroup var target: TaskQueueTarget

    @Option(name: .long, help: "Why.")
    var reason: String = ""

    func run() async throws {
        let command = "task-queue pause"
        try refuseRemote(target, command: command)
        let engine = try target.options.directory.openEngine(command: command, create: false)
        do {
            try engine.pauseTaskQueue(namespace: target.namespace, taskQueue: target.taskQueue, kind: target.kind.kind,
                                      reason: reason, identity: "spool-cli")
        } catch {
            try await reject(error, engine: engine, command: command)
        }
        try await closeEngine(engine, command: command)
        print("paused the \(target.kind.rawValue) task queue '\(target.taskQueue)' in \(target.options.directory)")
    }
}

struct TaskQueueResume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused task queue (durable).")

    @OptionGroup var target: TaskQueueTarget

    func run() async throws {
        let command = "task-queue resume"
        try refuseRemote(target, command: command)
        let engine = try target.options.directory.openEngine(command: command, create: false)
        do {
            try engine.resumeTaskQueue(namespace: target.namespace, taskQueue: target.taskQueue, kind: target.kind.kind)
        } catch {
            try await reject(error, engine: engine, command: command)
        }
        try await closeEngine(engine, command: command)
        print("resumed the \(target.kind.rawValue) task queue '\(target.taskQueue)' in \(target.options.directory)")
    }
}

/// Pause and resume are Spool's own (Temporal's API has neither): they need the data directory.
private func refuseRemote(_ target: TaskQueueTarget, command: String) throws {
    guard target.options.address != nil else { return }
    printError("spool \(command): pausing and resuming a task queue is not in Temporal's API: "
               + "use --data while the server is stopped, or the Swift API in the process that runs the engine")
    throw ExitCode.validationFailure
}

private func nullable(_ value: Double?) -> JSON { value.map { .number($0) } ?? .number(.nan) }
private func rateText(_ value: Double?) -> String { value.map { "\($0)/s" } ?? "none" }

extension TaskQueueConfig {
    var json: JSON {
        .object([
            ("queueRateLimit", queueRateLimit.map { limit in
                .object([("requestsPerSecond", .number(limit.requestsPerSecond)), ("reason", .string(limit.reason)),
                         ("updateIdentity", .string(limit.updateIdentity)), ("updateTime", .string("\(limit.updateTime)"))])
            } ?? .number(.nan)),
            ("fairnessKeyRateLimit", fairnessKeyRateLimit.map { limit in
                .object([("requestsPerSecond", .number(limit.requestsPerSecond)), ("reason", .string(limit.reason)),
                         ("updateIdentity", .string(limit.updateIdentity)), ("updateTime", .string("\(limit.updateTime)"))])
            } ?? .number(.nan)),
            ("partitions", partitions.map { .integer($0) } ?? .number(.nan)),
            ("paused", .bool(pause != nil)),
            ("pauseReason", .string(pause?.reason ?? "")),
        ])
    }

    var lines: [String] {
        var lines = ["rate limit     " + (queueRateLimit.map { "\($0.requestsPerSecond)/s (\($0.reason.isEmpty ? "no reason given" : $0.reason); set by \($0.updateIdentity.isEmpty ? "?" : $0.updateIdentity) at \($0.updateTime))" } ?? "none configured")]
        lines.append("key rate limit " + (fairnessKeyRateLimit.map { "\($0.requestsPerSecond)/s per fairness key × its weight (\($0.reason.isEmpty ? "no reason given" : $0.reason); set by \($0.updateIdentity.isEmpty ? "?" : $0.updateIdentity) at \($0.updateTime))" } ?? "none configured"))
        lines.append("partitions     " + (partitions.map(String.init) ?? "engine default"))
        lines.append("paused         " + (pause.map { "yes (\($0.reason.isEmpty ? "no reason given" : $0.reason); since \($0.time))" } ?? "no"))
        return lines
    }
}

extension TaskQueueInfo {
    var json: JSON {
        .object([
            ("namespace", .string(namespace)), ("taskQueue", .string(name)), ("kind", .string(kind.description)),
            ("config", config.json), ("pollerRateLimit", nullable(pollerRateLimit)), ("effectiveRateLimit", nullable(effectiveRateLimit)),
            ("paused", .bool(isPaused)), ("partitions", .integer(partitions)), ("backlogCount", .integer(backlogCount)),
            ("backlog", .array(backlog.map { entry in
                .object([("priority", .integer(entry.priority)), ("count", .integer(entry.count)),
                         ("oldestAgeSeconds", nullable(entry.oldestAge.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }))])
            })),
            ("added", .integer(added)), ("dispatched", .integer(dispatched)), ("addRate", .number(addRate)), ("dispatchRate", .number(dispatchRate)),
            ("pollersVisible", .bool(pollersVisible)),
            ("pollers", .array(pollers.map { poller in
                .object([("identity", .string(poller.identity)), ("lastAccessTime", .string("\(poller.lastAccessTime)")),
                         ("ratePerSecond", nullable(poller.ratePerSecond)), ("dispatched", .integer(poller.dispatched))])
            })),
        ])
    }

    var lines: [String] {
        var lines = ["task queue     \(name) (\(kind), namespace \(namespace))"]
        lines += config.lines
        lines.append("effective rate \(rateText(effectiveRateLimit))" + (pollerRateLimit.map { " (pollers ask \($0)/s)" } ?? ""))
        lines.append("dispatching    " + (isPaused ? "held back" : "yes"))
        lines.append("partitions now \(partitions)")
        lines.append("backlog        \(backlogCount)")
        for entry in backlog where entry.count > 0 {
            lines.append("  priority \(entry.priority)   \(entry.count) task(s), oldest waiting \(entry.oldestAge.map { "\($0)" } ?? "-")")
        }
        if pollersVisible {
            lines.append("pollers        \(pollers.count)")
            for poller in pollers {
                lines.append("  \(poller.identity)   last poll \(poller.lastAccessTime), rate \(rateText(poller.ratePerSecond)), \(poller.dispatched) dispatched")
            }
        } else {
            lines.append("pollers        only visible in the process that runs the workers")
        }
        return lines
    }
}
