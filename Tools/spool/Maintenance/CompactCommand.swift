#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spool
import SpoolLog
import SpoolQueue
import SpoolToolSupport

/// `spool compact`: reclaim the space of a stopped data directory's logs.
struct CompactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Drop acknowledged tasks and expired workflow histories from a stopped data directory's logs.",
        discussion: """
        Each log of the data directory is compacted in turn (or only the one named with --log):
          tasks    (DIR/tasks) keeps tasks not completed (pending, waiting to retry, dead letters) and \
        queue control records; drops acknowledged tasks, acks records and everything below the ack level.
          history  (DIR/history) drops the records of runs closed longer than the retention (--retention, \
        default 7d, the engine's default) and of runs the engine already forgot; keeps every record an open \
        run or a run within its retention needs. The checkpoint (DIR/checkpoint) is rewritten first.
        Records keep their offsets, so task ids and history positions stay valid. Sealed segments are \
        rewritten as *.cleaned files and swapped in through a swap-manifest (the commit point): a crash at \
        any step leaves the old or the new log, finished or discarded by the next open. The active (last) \
        segment is never rewritten.

        --dry-run reads the logs without opening them for writing and reports what would be dropped \
        (bytes after are an estimate, without compression); nothing in DIR changes.

        Exit status: 0 compacted (or nothing to do), 1 a log could not be compacted (damaged: run \
        `spool recover`; I/O error), 2 the directory cannot be used (missing, empty, foreign, in use by a \
        running engine or task store), 64 usage. --json prints one JSON object per log, one per line.
        """
    )

    enum LogName: String, ExpressibleByArgument, CaseIterable {
        case history, tasks
    }

    @Option(name: .long, help: "The data directory (its logs are DIR/history and DIR/tasks).")
    var data: String

    @Option(name: .customLong("log"), help: "Only this log: history or tasks.")
    var logName: LogName?

    @Flag(name: .long, help: "Report what would be dropped; write nothing.")
    var dryRun = false

    @Option(name: .long, help: "Drop runs closed longer than this (e.g. 7d, 12h, 30m, 90s, 0s). Default: 7d.")
    var retention: String?

    @Flag(name: .long, help: "Print one JSON object per log instead of text.")
    var json = false

    func validate() throws {
        if let retention, Self.parseDuration(retention) == nil {
            throw ValidationError("--retention must be a number followed by d, h, m or s (got '\(retention)')")
        }
        if retention != nil && logName == .tasks { throw ValidationError("--retention applies to the history log only") }
    }

    /// `7d`, `12h`, `30m`, `90s`, `0` (seconds).
    static func parseDuration(_ text: String) -> Duration? {
        guard let last = text.last else { return nil }
        let units: [Character: Int64] = ["d": 86_400, "h": 3_600, "m": 60, "s": 1]
        let (digits, unit) = units[last] != nil ? (text.dropLast(), units[last]!) : (Substring(text), Int64(1))
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber), let value = Int64(digits), value <= Int64.max / 86_400 / 1000 else { return nil }
        return .seconds(value * unit)
    }

    func run() async throws {
        let stores = try Self.stores(of: DataDirectory(data), only: logName)
        var status: Int32 = 0
        for store in stores {
            do {
                try compact(store)
            } catch let exit as ExitCode {
                status = max(status, exit.rawValue)
            }
        }
        if status != 0 { throw ExitCode(status) }
    }

    struct Store {
        var name: LogName
        /// The store's directory (the engine's is the data directory itself).
        var directory: String
        var logDirectory: String
        /// Files of the store that the compaction may rewrite, besides its log.
        var checkpoint: String
    }

    /// The stores of a data directory, or a message and exit status 2 when it holds none.
    static func stores(of data: DataDirectory, only: LogName?) throws -> [Store] {
        try data.requireExisting(command: "compact")
        let path = data.path
        let tasks = data.taskStore
        let all = [Store(name: .history, directory: path, logDirectory: data.history, checkpoint: data.checkpoint),
                   Store(name: .tasks, directory: tasks.path, logDirectory: tasks.log, checkpoint: tasks.checkpoint)]
        let present = all.filter { DataDirectory.isDirectory($0.logDirectory) }
        if let only {
            guard let store = present.first(where: { $0.name == only }) else {
                printError("spool compact: \(path): no \(only.rawValue) log"
                           + (present.isEmpty ? " (it holds no Spool log)" : " (logs here: \(present.map(\.name.rawValue).joined(separator: ", ")))"))
                throw ExitCode(2)
            }
            return [store]
        }
        if present.isEmpty {
            let names = directoryNames(path)
            if names.isEmpty {
                printError("spool compact: \(path): is empty; is this a Spool data directory?")
            } else {
                printError("spool compact: \(path): not a Spool data directory: no history/ or tasks/ log "
                           + "(it holds \(names.prefix(4).joined(separator: ", "))\(names.count > 4 ? ", …" : ""))")
            }
            throw ExitCode(2)
        }
        return present
    }

    struct Outcome {
        var summary: CompactionSummary
        var runsKept: Int?
        var runsDropped: Int?
    }

    private func compact(_ store: Store) throws {
        // Refuse early, without writing, when the log cannot be used: missing, empty, foreign, or
        // held by a running engine or store (a read-only handle takes the lock shared).
        do {
            let probe = try OfflineLog.open(directory: store.logDirectory)
            probe.close()
        } catch {
            let reason = error.code == .directoryLocked
                ? "\(store.logDirectory): in use by a running engine or task store (its log is locked); stop it first"
                : DataDirectory.explain(error, path: store.logDirectory)
            printError("spool compact: \(reason)")
            throw ExitCode(2)
        }
        let before = bytesOnDisk(store.logDirectory, plus: [store.checkpoint])
        let counter = SharedCounter()
        let total = SharedCounter()
        let bar = BarHolder()
        let showProgress = !json && !dryRun && isatty(STDOUT_FILENO) != 0
        let progress: CompactionProgress? = showProgress ? { done, all in
            total.value.store(Int(clamping: all), ordering: .relaxed)
            counter.value.store(Int(clamping: done), ordering: .relaxed)
            if bar.bar == nil {
                bar.bar = ProgressBar(title: "compact \(store.name.rawValue)", total: Int(clamping: all), unit: "records", enabled: true) {
                    counter.value.load(ordering: .relaxed)
                }
            }
        } : nil
        let started = ContinuousClock.now
        let outcome: Outcome
        do {
            switch store.name {
            case .tasks:
                outcome = Outcome(summary: try TaskStore.compact(directory: store.directory, dryRun: dryRun, progress: progress))
            case .history:
                var configuration = SpoolEngineConfiguration()
                if let retention { configuration.closedRunRetention = Self.parseDuration(retention) }
                let summary = try SpoolEngine.compactHistory(directory: store.directory, configuration: configuration, dryRun: dryRun, progress: progress)
                outcome = Outcome(summary: summary.log, runsKept: summary.runsKept, runsDropped: summary.runsDropped)
            }
        } catch {
            bar.bar?.finish()
            let text = "\(error)"
            if text.contains("directoryLocked") {
                printError("spool compact: \(store.logDirectory): in use by a running engine or task store (its log is locked); stop it first")
                throw ExitCode(2)
            }
            printError("spool compact: \(store.logDirectory): \(text)")
            throw ExitCode(1)
        }
        let seconds = max((ContinuousClock.now - started).seconds, 1e-9)
        bar.bar?.finish()
        let after = dryRun ? before - outcome.summary.bytesBefore + outcome.summary.bytesAfter
                           : bytesOnDisk(store.logDirectory, plus: [store.checkpoint])
        report(store, outcome, before: before, after: after, seconds: seconds)
    }

    private func report(_ store: Store, _ outcome: Outcome, before: Int, after: Int, seconds: Double) {
        let s = outcome.summary
        let rate = Double(s.bytesBefore) / seconds / 1e6
        if json {
            var fields: [(String, JSON)] = [
                ("log", .string(store.name.rawValue)), ("directory", .string(store.logDirectory)), ("dryRun", .bool(dryRun)),
                ("bytesBefore", .integer(before)), ("bytesAfter", .integer(after)), ("bytesAfterEstimated", .bool(dryRun)),
                ("recordsKept", .integer(s.recordsKept)), ("recordsDropped", .integer(s.recordsDropped)),
                ("segmentsRewritten", .integer(s.segmentsRewritten)), ("segmentsWritten", .integer(s.segmentsWritten)),
                ("bytesRead", .integer(s.bytesBefore)), ("seconds", .number(seconds)), ("megabytesPerSecond", .number(rate)),
            ]
            if let kept = outcome.runsKept, let dropped = outcome.runsDropped {
                fields += [("runsKept", .integer(kept)), ("runsDropped", .integer(dropped))]
            }
            print(JSON.object(fields).text)
            return
        }
        print("spool compact\(dryRun ? " --dry-run" : ""): \(store.name.rawValue) (\(store.logDirectory))")
        print("  bytes on disk: \(formatCount(Double(before))) before, \(formatCount(Double(after))) after\(dryRun ? " (estimated)" : "")")
        print("  records: \(formatCount(Double(s.recordsKept))) kept, \(formatCount(Double(s.recordsDropped))) dropped")
        if let kept = outcome.runsKept, let dropped = outcome.runsDropped {
            print("  runs: \(kept) kept, \(dropped) dropped (closed past retention)")
        }
        print("  segments: \(s.segmentsRewritten) \(dryRun ? "would be rewritten" : "rewritten") as \(s.segmentsWritten)")
        print("  read \(formatCount(Double(s.bytesBefore))) bytes in \(format(seconds, decimals: 3)) s (\(format(rate, decimals: 0)) MB/s)")
        if dryRun { print("  dry run: nothing was written") }
    }
}

/// The progress bar, created on the first report (when the total is known).
final class BarHolder: @unchecked Sendable {
    // Only touched from the compaction's thread, one call at a time.
    var bar: ProgressBar?
}
