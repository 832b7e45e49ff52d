#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolLog
import SpoolMatching
import SpoolQueue
import SpoolToolSupport

/// The options every `spool task` and `spool queue` command takes: the data directory, and
/// the durability of what the command writes. The task store lives in `DIR/tasks` (see
/// `DataDirectory`; the engine keeps its history in `DIR/history`).
struct TaskStoreOptions: ParsableArguments {
    @OptionGroup var location: DataDirectoryOptions

    @Option(name: .long, help: "Log durability when writing: sync (fdatasync before acknowledging), interval, or none.")
    var durability: DurabilityOption = .sync

    /// The data directory `--data` names.
    var directory: DataDirectory { location.directory }

    /// The task store's directory, `DIR/tasks`.
    var storeDirectory: String { directory.taskStore.path }

    /// Opens the store, or prints why it cannot and exits with status 2.
    ///
    /// A command that may create tasks or queue state (`create`) creates a missing data
    /// directory (mode 0700) and the store in it. One that only reads or changes what is already
    /// there refuses a missing data directory with the common message (exit status 2), and
    /// returns nil, creating nothing, when the directory holds no task store yet.
    ///
    /// A command that only reads (`readOnly`: list, describe, peek) opens the store read-only:
    /// it writes nothing at all (no marker, no checkpoint, no repair), so a stopped store on a
    /// read-only file system or another user's store can be inspected.
    func open(command: String, create: Bool, readOnly: Bool = false) throws -> TaskStore? {
        try directory.requireDataDirectory(command: command, create: create)
        if !create && !DataDirectory.isDirectory(storeDirectory) { return nil }
        var configuration = TaskStoreConfiguration(durability: durability.durability)
        if readOnly { configuration.log.access = .readOnly }
        // A command-line session is short: no background checkpoints, one at close.
        configuration.checkpointInterval = .seconds(3600)
        do {
            return try TaskStore.open(directory: storeDirectory, configuration: configuration)
        } catch {
            printError("spool \(command): \(explain(error))")
            throw ExitCode.unusableDataDirectory
        }
    }

    func explain(_ error: QueueError) -> String {
        if let log = error.underlying as? LogError, log.code == .wrongDirectoryKind || log.code == .foreignDirectory {
            return DataDirectory.explain(log, path: storeDirectory)
        }
        switch error.code {
        case .directoryLocked:
            return "\(storeDirectory): the task store is open in another process; stop it first (or wait for it to exit)"
        case .directoryMissing:
            return "\(error.path ?? storeDirectory): \(error.message)"
        default:
            return error.description
        }
    }
}

/// `--kind workflow|activity`.
enum KindOption: String, ExpressibleByArgument, CaseIterable {
    case workflow
    case activity

    var kind: TaskQueueKind { self == .workflow ? .workflow : .activity }
}

/// The queue a command works on: `--queue Q [--kind workflow|activity]`, checked before anything is opened.
struct QueueOptions: ParsableArguments {
    @Option(name: .long, help: "The task queue's name (1…1000 UTF-8 bytes, no control characters).")
    var queue: String

    @Option(name: .long, help: "Which of the name's two queues: workflow or activity.")
    var kind: KindOption = .activity

    /// Checks the name before anything is opened, so that a bad name writes nothing.
    func check(command: String) throws {
        do {
            try TaskQueueName.validate(queue)
        } catch {
            let shown = IdentifierText.shown(queue)
            printError("spool \(command): bad --queue '\(shown)': \(error.message)")
            throw ExitCode.usage
        }
    }
}

/// A payload for a summary (`queue describe`): its text when it is printable UTF-8, else the
/// text with each byte that is not (and each backslash) written as `\\xNN` (`\\\\`), so that
/// different payloads never show as the same text.
func payloadText(_ bytes: [UInt8]) -> String {
    if TextPayload.problem(in: bytes) == nil && !bytes.contains(UInt8(ascii: "\\")) { return String(decoding: bytes, as: UTF8.self) }
    var out = ""
    var rest = bytes[...]
    while !rest.isEmpty {
        // The longest printable UTF-8 prefix, then one escaped byte.
        var end = rest.endIndex
        while end > rest.startIndex, TextPayload.problem(in: Array(rest[rest.startIndex..<end])) != nil { end -= 1 }
        let text = String(decoding: rest[rest.startIndex..<end], as: UTF8.self)
        out += text.replacingBackslashes()
        if end < rest.endIndex {
            let byte = rest[end]
            out += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            rest = rest[(end + 1)...]
        } else {
            rest = rest[end...]
        }
    }
    return out
}

extension String {
    fileprivate func replacingBackslashes() -> String {
        var out = ""
        for c in self { out += c == "\\" ? "\\\\" : String(c) }
        return out
    }
}

/// `--format text|jsonl` and `--json` of `task poll` and `queue peek`.
struct TaskOutputOptions: ParsableArguments {
    @Option(name: .long, help: """
        Output: text (`id<TAB>priority<TAB>attempt<TAB>payload`; a payload that is not UTF-8 text without control \
        characters other than tab is refused) or jsonl ({"id":…,"priority":…,"attempt":…,"payload_base64":"…"}, any bytes).
        """)
    var format: PayloadFormat = .text

    @Flag(name: .long, help: "Print JSON lines with the payload as a JSON string (UTF-8 payloads only; --format jsonl takes any bytes).")
    var json = false

    func validate() throws {
        if json && format == .jsonl { throw ValidationError("give --json or --format jsonl, not both") }
    }

    /// The output line for one task, or why its payload cannot be shown in this format.
    func line(id: UInt64, priority: Int, attempt: Int, payload: [UInt8]) -> Result<String, PayloadFormatError> {
        let fields: [(String, JSON)] = [("id", .integer(Int(clamping: id))), ("priority", .integer(priority)), ("attempt", .integer(attempt))]
        switch format {
        case .jsonl:
            return .success(JSON.object(fields + [(PayloadFormat.payloadField, .string(Base64.encode(payload)))]).text)
        case .text where json:
            guard let text = String(validating: payload, as: UTF8.self) else {
                return .failure(PayloadFormatError("task \(id): its payload is not valid UTF-8, so a JSON string cannot carry it; "
                                                   + "use --format jsonl (base64)"))
            }
            return .success(JSON.object(fields + [("payload", .string(text))]).text)
        case .text:
            if let problem = TextPayload.problem(in: payload) {
                return .failure(PayloadFormatError("task \(id): its payload cannot be printed as a line of text (\(problem)); "
                                                   + "use --format jsonl (base64)"))
            }
            return .success("\(id)\t\(priority)\t\(attempt)\t" + String(decoding: payload, as: UTF8.self))
        }
    }
}

/// Closes the store, reporting (not throwing) a failure to stderr with exit status 1.
func closeStore(_ store: TaskStore, command: String) async throws {
    do {
        try await store.close()
    } catch {
        printError("spool \(command): closing the task store: \(error)")
        throw ExitCode(1)
    }
}
