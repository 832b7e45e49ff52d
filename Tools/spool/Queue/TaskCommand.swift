#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Synchronization
import SpoolMatching
import SpoolQueue
import SpoolToolSupport

/// `spool task`: add tasks from a script, poll them.
struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task",
        abstract: "Add tasks to durable task queues and poll them.",
        subcommands: [TaskAdd.self, TaskPoll.self]
    )
}

/// `spool task add`: one task per line of standard input; one line per task on standard output,
/// with its id, as soon as it is durable.
struct TaskAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add one task per line of standard input; print each task's id once it is durable.",
        discussion: """
            Lines are added in order, up to 128 at a time (they share fdatasyncs). Output line N is \
            the id of input line N, printed (and flushed) once that task and every earlier one is \
            durable under --durability: a script killed at any moment knows exactly which tasks \
            were acknowledged. With --json each line is {"id":…,"line":…}.
            """
    )

    @OptionGroup var store: TaskStoreOptions
    @OptionGroup var target: QueueOptions

    @Option(name: .long, help: "Priority 1 (highest) … 5 (lowest).")
    var priority: Int = TaskPriority.default

    @Option(name: .long, help: "A fairness key (tasks of one priority with keys are dispatched fairly between keys).")
    var key: String?

    @Flag(name: .long, help: "Print JSON lines.")
    var json = false

    static let window = 128

    func run() async throws {
        try target.check(command: "task add")
        guard TaskPriority.all.contains(priority) else {
            printError("spool task add: bad --priority \(priority): priorities are 1 (highest) … 5 (lowest)")
            throw ExitCode(2)
        }
        if let key, key.isEmpty || key.utf8.count > FairnessKey.maximumUTF8Length {
            printError("spool task add: bad --key: a fairness key is 1…\(FairnessKey.maximumUTF8Length) UTF-8 bytes")
            throw ExitCode(2)
        }
        guard let opened = try store.open(command: "task add", create: true) else { return }
        let queue = try opened.queue(target.queue, kind: target.kind.kind)
        let options = TaskOptions(priority: priority, fairness: key.map { FairnessKey($0) })
        let maxPayload = opened.maxPayloadBytes(queue: target.queue, fairness: options.fairness)
        let printer = OrderedPrinter(json: json)
        await withTaskGroup(of: Void.self) { group in
            var line = 0
            var inFlight = 0
            while printer.failure == nil, let text = readLine(strippingNewline: true) {
                if inFlight >= Self.window {
                    await group.next()
                    inFlight -= 1
                }
                let index = line
                line += 1
                guard text.utf8.count <= maxPayload else {
                    // Refused before it is submitted, so no later line is written either.
                    printer.failed(index, QueueError(.payloadTooLarge, "a payload of \(text.utf8.count) bytes exceeds the limit of \(maxPayload)",
                                                     queue: target.queue))
                    break
                }
                inFlight += 1
                group.addTask {
                    do {
                        let id = try await queue.add(Array(text.utf8), options: options)
                        printer.done(index, id: id)
                    } catch {
                        printer.failed(index, error as? QueueError ?? QueueError(.log, "\(error)"))
                    }
                }
            }
        }
        let error = printer.failure
        try await closeStore(opened, command: "task add")
        if let error {
            printError("spool task add: line \(printer.firstFailedLine.map { $0 + 1 } ?? 0): \(store.explain(error)); "
                       + "\(printer.printedCount) task(s) before it were added (their ids are printed)")
            throw ExitCode(1)
        }
    }
}

/// Prints ids in input order, each as soon as it and all earlier lines are durable; stops at the first failure.
final class OrderedPrinter: Sendable {
    private struct State {
        var next = 0
        var ready: [Int: UInt64] = [:]
        var failedAt: Int?
        var failure: QueueError?
    }
    private let state = Mutex(State())
    private let json: Bool

    init(json: Bool) { self.json = json }

    func done(_ index: Int, id: UInt64) {
        state.withLock { state in
            state.ready[index] = id
            while state.failedAt.map({ state.next < $0 }) ?? true, let id = state.ready.removeValue(forKey: state.next) {
                printLine(json ? JSON.object([("id", .integer(Int(clamping: id))), ("line", .integer(state.next + 1))]).text : String(id))
                state.next += 1
            }
        }
    }

    func failed(_ index: Int, _ error: QueueError) {
        state.withLock { state in
            if state.failedAt.map({ index < $0 }) ?? true {
                state.failedAt = index
                state.failure = error
            }
        }
    }

    var failure: QueueError? { state.withLock { $0.failure } }

    var firstFailedLine: Int? { state.withLock { $0.failedAt } }
    var printedCount: Int { state.withLock { $0.next } }
}

/// `spool task poll`: takes tasks, prints them, completes them.
struct TaskPoll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poll",
        abstract: "Take up to --max tasks from a queue, print them, and complete them.",
        discussion: """
            Each task is printed (and flushed) before it is completed, so a task is never completed \
            unseen; a poll killed between the two delivers the task again later (at least once). \
            Output: one line per task, `id<TAB>priority<TAB>attempt<TAB>payload`, or with --json \
            {"id":…,"priority":…,"attempt":…,"payload":"…"}. With --no-complete the tasks stay \
            in flight until this command exits; they are delivered again afterwards.
            """
    )

    @OptionGroup var store: TaskStoreOptions
    @OptionGroup var target: QueueOptions

    @Option(name: .long, help: "The most tasks to take.")
    var max: Int = 1

    @Option(name: .long, help: "Seconds to wait for the first and each further task (0: only tasks available now).")
    var timeout: Double = 0

    @Flag(name: .long, help: "Print JSON lines.")
    var json = false

    @Flag(name: .customLong("no-complete"), help: "Leave the tasks in flight instead of completing them.")
    var noComplete = false

    func run() async throws {
        try target.check(command: "task poll")
        guard max >= 1 else {
            printError("spool task poll: bad --max \(max): must be at least 1")
            throw ExitCode(2)
        }
        guard timeout.isFinite, timeout >= 0, timeout <= 86_400 else {
            printError("spool task poll: bad --timeout \(timeout): seconds between 0 and 86400")
            throw ExitCode(2)
        }
        guard let opened = try store.open(command: "task poll", create: false) else { return }
        var failure: QueueError?
        do {
            let queue = try opened.queue(target.queue, kind: target.kind.kind)
            for _ in 0..<max {
                guard let task = try await queue.poll(timeout: .milliseconds(Int64(timeout * 1000))) else { break }
                if json {
                    printLine(JSON.object([("id", .integer(Int(clamping: task.id))), ("priority", .integer(task.priority)),
                                           ("attempt", .integer(task.attempt)), ("payload", .string(payloadText(task.payload)))]).text)
                } else {
                    printLine("\(task.id)\t\(task.priority)\t\(task.attempt)\t\(payloadText(task.payload))")
                }
                if !noComplete { try opened.complete(task.id) }
            }
        } catch {
            failure = error
        }
        try await closeStore(opened, command: "task poll")
        if let failure {
            printError("spool task poll: \(store.explain(failure))")
            throw ExitCode(1)
        }
    }
}
