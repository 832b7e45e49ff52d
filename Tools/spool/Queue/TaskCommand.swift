#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
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
            Lines are added in input order, so ids increase with line numbers: the lines available \
            at the time (up to 128) are added as one batch, which shares one fdatasync. Output line \
            N is the id of input line N, printed (and flushed) once that task and every earlier one \
            is durable under --durability: a script killed at any moment knows exactly which tasks \
            were acknowledged. With --json (or --format jsonl) each output line is {"id":…,"line":…}.

            --format text (the default): each line's bytes are the payload, without its \\n. Only \
            lines a line of text carries exactly are accepted: valid UTF-8 without control \
            characters other than tab (no \\r, NUL, …). --format jsonl: each line is \
            {"payload_base64":"…"}, the payload in base64 (RFC 4648, with padding): any bytes.

            A line that cannot be added (bad text, bad JSON, too large, disk full) stops the \
            command with exit status 1 and "line N: why; K task(s) before it were added": the \
            lines before it stay added, their ids printed; nothing after it is added.
            """
    )

    @OptionGroup var store: TaskStoreOptions
    @OptionGroup var target: QueueOptions

    @Option(name: .long, help: "Priority 1 (highest) … 5 (lowest).")
    var priority: Int = TaskPriority.default

    @Option(name: .long, help: "A fairness key (tasks of one priority with keys are dispatched fairly between keys).")
    var key: String?

    @Option(name: .long, help: "Input: text (one payload per line, UTF-8 text) or jsonl ({\"payload_base64\":\"…\"} per line, any bytes).")
    var format: PayloadFormat = .text

    @Flag(name: .long, help: "Print JSON lines ({\"id\":…,\"line\":…}); implied by --format jsonl.")
    var json = false

    func run() async throws {
        try target.check(command: "task add")
        guard TaskPriority.all.contains(priority) else {
            printError("spool task add: bad --priority \(priority): priorities are 1 (highest) … 5 (lowest)")
            throw ExitCode.usage
        }
        if let key, key.isEmpty || key.utf8.count > FairnessKey.maximumUTF8Length {
            printError("spool task add: bad --key: a fairness key is 1…\(FairnessKey.maximumUTF8Length) UTF-8 bytes")
            throw ExitCode.usage
        }
        guard let opened = try store.open(command: "task add", create: true) else { return }
        let queue = try opened.queue(target.queue, kind: target.kind.kind)
        let adder = TaskAdder(format: format, options: TaskOptions(priority: priority, fairness: key.map { FairnessKey($0) }))
        let jsonOutput = json || format == .jsonl
        var lines = InputLines()
        let outcome = await adder.run(lines: &lines, queue: queue, store: opened) { line, id in
            printLine(jsonOutput ? JSON.object([("id", .integer(Int(clamping: id))), ("line", .integer(line))]).text : String(id))
        }
        if let failure = outcome.failure {
            // The store may be poisoned (a failed write): its close failure says nothing more.
            try? await opened.close()
            printError("spool task add: line \(failure.line): \(failure.message); "
                       + "\(outcome.added) task(s) before it were added (their ids are printed)")
            throw ExitCode(1)
        }
        try await closeStore(opened, command: "task add")
    }
}

/// `spool task poll`: takes tasks, prints them, completes them.
struct TaskPoll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poll",
        abstract: "Take up to --max tasks from a queue, print them, and complete them.",
        discussion: """
            Each task is printed (and flushed) before it is completed, so a task is never completed \
            unseen; a poll killed between the two delivers the task again later (at least once). \
            Output: one line per task, `id<TAB>priority<TAB>attempt<TAB>payload`; with --format \
            jsonl {"id":…,"priority":…,"attempt":…,"payload_base64":"…"} (any bytes); with --json \
            the same with "payload":"…" as a JSON string. A payload the format cannot show exactly \
            (in text, one that is not UTF-8 without control characters other than tab) stops the \
            command with exit status 1, that task not completed: poll again with --format jsonl. \
            With --no-complete the tasks stay in flight until this command exits; they are \
            delivered again afterwards.
            """
    )

    @OptionGroup var store: TaskStoreOptions
    @OptionGroup var target: QueueOptions

    @Option(name: .long, help: "The most tasks to take.")
    var max: Int = 1

    @Option(name: .long, help: "Seconds to wait for the first and each further task (0: only tasks available now).")
    var timeout: Double = 0

    @OptionGroup var output: TaskOutputOptions

    @Flag(name: .customLong("no-complete"), help: "Leave the tasks in flight instead of completing them.")
    var noComplete = false

    func run() async throws {
        try target.check(command: "task poll")
        guard max >= 1 else {
            printError("spool task poll: bad --max \(max): must be at least 1")
            throw ExitCode.usage
        }
        guard timeout.isFinite, timeout >= 0, timeout <= 86_400 else {
            printError("spool task poll: bad --timeout \(timeout): seconds between 0 and 86400")
            throw ExitCode.usage
        }
        guard let opened = try store.open(command: "task poll", create: false) else { return }
        var failure: (any Error)?
        do {
            let queue = try opened.queue(target.queue, kind: target.kind.kind)
            for _ in 0..<max {
                guard let task = try await queue.poll(timeout: .milliseconds(Int64(timeout * 1000))) else { break }
                switch output.line(id: task.id, priority: task.priority, attempt: task.attempt, payload: task.payload) {
                case .success(let line): printLine(line)
                case .failure(let problem): throw problem
                }
                if !noComplete { try opened.complete(task.id) }
            }
        } catch {
            failure = error
        }
        try await closeStore(opened, command: "task poll")
        if let failure {
            printError("spool task poll: \((failure as? QueueError).map(store.explain) ?? "\(failure)")")
            throw ExitCode(1)
        }
    }
}
