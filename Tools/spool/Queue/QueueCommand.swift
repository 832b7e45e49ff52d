#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolMatching
import SpoolQueue
import SpoolToolSupport

/// `spool queue`: list, inspect and control the durable task queues of a data directory.
struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "List, describe, pause, resume, purge and peek at durable task queues.",
        subcommands: [QueueList.self, QueueDescribe.self, QueuePause.self, QueueResume.self, QueuePurge.self, QueuePeek.self]
    )
}

struct QueueList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Queues with queued, in-flight or dead-lettered tasks, or a pause or rate limit.")

    @OptionGroup var store: TaskStoreOptions
    @Flag(name: .long, help: "Print one JSON object per queue.") var json = false

    func run() async throws {
        guard let opened = try store.open(command: "queue list", create: false, readOnly: true) else { return }
        let queues = opened.listQueues()
        try await closeStore(opened, command: "queue list")
        if json {
            for queue in queues {
                printLine(JSON.object([("name", .string(queue.name)), ("kind", .string(queue.kind.description)),
                                       ("backlog", .integer(queue.backlogCount)), ("inFlight", .integer(queue.inFlightCount)),
                                       ("deadLetters", .integer(queue.deadLetterCount)), ("paused", .bool(queue.isPaused))]).text)
            }
            return
        }
        guard !queues.isEmpty else {
            printLine("no task queues in \(store.storeDirectory)")
            return
        }
        printLine([pad("NAME", 30, right: false), pad("KIND", 9, right: false), pad("BACKLOG", 10), pad("IN FLIGHT", 10), pad("DEAD", 8), "PAUSED"].joined(separator: " "))
        for queue in queues {
            printLine([pad(queue.name, 30, right: false), pad(queue.kind.description, 9, right: false), pad(String(queue.backlogCount), 10),
                       pad(String(queue.inFlightCount), 10), pad(String(queue.deadLetterCount), 8), queue.isPaused ? "paused" : ""].joined(separator: " "))
        }
    }
}

struct QueueDescribe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe", abstract: "Backlog and oldest age per priority, dead letters, pause state and rate limit of one queue.")

    @OptionGroup var store: TaskStoreOptions
    @OptionGroup var target: QueueOptions
    @Flag(name: .long, help: "Print one JSON object.") var json = false

    func run() async throws {
        try target.check(command: "queue describe")
        guard let opened = try store.open(command: "queue describe", create: false, readOnly: true) else {
            printLine(json ? JSON.object([("name", .string(target.queue)), ("kind", .string(target.kind.rawValue)), ("backlog", .integer(0))]).text
                           : "\(target.queue) (\(target.kind.rawValue)): no task store in \(store.directory) yet")
            return
        }
        let description: QueueDescription
        do { description = try opened.describe(target.queue, kind: target.kind.kind) } catch {
            printError("spool queue describe: \(store.explain(error))")
            throw ExitCode(2)
        }
        let dead = (try? opened.deadLetters(target.queue, kind: target.kind.kind, limit: 20)) ?? []
        try await closeStore(opened, command: "queue describe")
        let levels = description.backlog.map { level -> JSON in
            .object([("priority", .integer(level.priority)), ("count", .integer(level.count)),
                      ("oldestAgeSeconds", level.oldestAge.map { .number($0.seconds) } ?? .string(""))])
        }
        if json {
            var fields: [(String, JSON)] = [
                ("name", .string(description.name)), ("kind", .string(description.kind.description)),
                ("paused", .bool(description.isPaused)), ("backlog", .integer(description.backlogCount)), ("priorities", .array(levels)),
                ("delayed", .integer(description.delayedCount)), ("inFlight", .integer(description.inFlightCount)),
                ("deadLetters", .integer(description.deadLetterCount)),
            ]
            if let limit = description.rateLimit {
                fields.append(("rateLimit", .object([("perSecond", .number(limit.perSecond)), ("burst", .integer(limit.burst))])))
            }
            fields.append(("deadLetterSample", .array(dead.map { letter in
                .object([("id", .integer(Int(clamping: letter.id))), ("attempts", .integer(letter.attempts)),
                         ("reason", .string(letter.reason)), ("payload", .string(payloadText(letter.payload)))])
            })))
            printLine(JSON.object(fields).text)
            return
        }
        printLine("queue \(description.name) (\(description.kind))\(description.isPaused ? ", paused" : "")"
                  + (description.rateLimit.map { ", rate limit \($0)" } ?? ""))
        printLine("  backlog \(description.backlogCount) (\(description.delayedCount) waiting out a retry backoff), "
                  + "dead letters \(description.deadLetterCount)")
        for level in description.backlog where level.count > 0 {
            printLine("  priority \(level.priority): \(level.count) task(s), oldest \(level.oldestAge.map { format($0.seconds, decimals: 1) + " s" } ?? "-")")
        }
        for letter in dead {
            printLine("  dead letter \(letter.id): \(letter.attempts) attempt(s), \(letter.reason): \(preview(letter.payload, limit: 60))")
        }
    }
}

struct QueuePause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Stop handing out a queue's tasks (durable).")

    @OptionGroup var store: TaskStoreOptions
    @OptionGroup var target: QueueOptions

    func run() async throws {
        try target.check(command: "queue pause")
        guard let opened = try store.open(command: "queue pause", create: true) else { return }
        do { try await opened.pause(target.queue, kind: target.kind.kind) } catch {
            printError("spool queue pause: \(store.explain(error))")
            throw ExitCode(1)
        }
        try await closeStore(opened, command: "queue pause")
        printLine("paused \(target.queue) (\(target.kind.rawValue))")
    }
}

struct QueueResume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused queue (durable).")

    @OptionGroup var store: TaskStoreOptions
    @OptionGroup var target: QueueOptions

    func run() async throws {
        try target.check(command: "queue resume")
        guard let opened = try store.open(command: "queue resume", create: true) else { return }
        do { try await opened.resume(target.queue, kind: target.kind.kind) } catch {
            printError("spool queue resume: \(store.explain(error))")
            throw ExitCode(1)
        }
        try await closeStore(opened, command: "queue resume")
        printLine("resumed \(target.queue) (\(target.kind.rawValue))")
    }
}

struct QueuePurge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge", abstract: "Drop every queued task of a queue (durable); --dead-letters drops its dead letters too.")

    @OptionGroup var store: TaskStoreOptions
    @OptionGroup var target: QueueOptions
    @Flag(name: .customLong("dead-letters"), help: "Also drop the queue's dead letters.") var deadLetters = false
    @Flag(name: .long, help: "Print one JSON object.") var json = false

    func run() async throws {
        try target.check(command: "queue purge")
        guard let opened = try store.open(command: "queue purge", create: false) else {
            printLine(json ? JSON.object([("purged", .integer(0))]).text : "purged 0 task(s)")
            return
        }
        let count: Int
        do { count = try await opened.purge(target.queue, kind: target.kind.kind, deadLetters: deadLetters) } catch {
            printError("spool queue purge: \(store.explain(error))")
            throw ExitCode(1)
        }
        try await closeStore(opened, command: "queue purge")
        printLine(json ? JSON.object([("purged", .integer(count))]).text : "purged \(count) task(s) from \(target.queue) (\(target.kind.rawValue))")
    }
}

struct QueuePeek: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peek", abstract: "Show the next queued tasks of a queue, in delivery order, without taking them.")

    @OptionGroup var store: TaskStoreOptions
    @OptionGroup var target: QueueOptions
    @Option(name: .long, help: "The most tasks to show.") var max: Int = 10
    @OptionGroup var output: TaskOutputOptions

    func run() async throws {
        try target.check(command: "queue peek")
        guard max >= 1 else {
            printError("spool queue peek: bad --max \(max): must be at least 1")
            throw ExitCode.usage
        }
        guard let opened = try store.open(command: "queue peek", create: false, readOnly: true) else { return }
        let tasks: [PeekedTask]
        do { tasks = try opened.peek(target.queue, kind: target.kind.kind, limit: max) } catch {
            printError("spool queue peek: \(store.explain(error))")
            throw ExitCode(1)
        }
        try await closeStore(opened, command: "queue peek")
        for task in tasks {
            switch output.line(id: task.id, priority: task.priority, attempt: task.attempt, payload: task.payload) {
            case .success(let line):
                printLine(line)
            case .failure(let problem):
                printError("spool queue peek: \(problem)")
                throw ExitCode(1)
            }
        }
    }
}
