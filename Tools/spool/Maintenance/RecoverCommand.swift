#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spool
import SpoolLog
import SpoolQueue
import SpoolToolSupport

/// `spool recover`: verify a stopped data directory's log, or repair it.
struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Verify a data directory's log (read-only), or repair it by truncating or salvaging around damage.",
        discussion: """
        Modes:
          check     (default) read-only: verifies every batch (header, CRC32C, payload, offset order) of every \
        segment, every index against its segment, the recovery-point, clean-shutdown and swap-manifest files, \
        and offsets across segments; for the engine's history, its invariants and that the visibility index \
        an open builds agrees with the one its histories give (reported by run). Changes nothing.
          truncate  cuts the log at the first damaged batch: the rest of that segment and every later segment \
        are removed. Rebuilds indexes and checkpoints.
          salvage   keeps every intact batch, also after damage, with its offsets (leaving gaps); removes only \
        damaged bytes. Rebuilds indexes and checkpoints.
        truncate and salvage copy every file they change or delete into --backup-dir (default \
        <DIR>/../<name>.backup-<UTC time>) first, unless --no-backup, and report exactly what was removed.

        A data directory holds one log per store (DIR/history for the engine, DIR/tasks for the task \
        queues); each is checked or repaired in turn, or only the one named with --log. A directory with \
        segments at its top level is itself one log.

        Exit status: 0 clean (or repaired clean), 1 problems found (or left), 2 a log cannot be used \
        (missing, empty, foreign, open by another process, unreadable); the highest over the logs.
        --json prints one JSON object per log, one per line, with a "log" field naming it.
        """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case check, truncate, salvage
    }

    @Option(name: .long, help: "The data directory (its logs are DIR/history and DIR/tasks, or DIR itself).")
    var data: String

    @Option(name: .customLong("log"), help: "Only this log of the data directory (history, tasks).")
    var logName: String?

    @Option(name: .long, help: "check, truncate or salvage.")
    var mode: Mode = .check

    @Flag(name: .long, help: "Do not copy the files a repair changes.")
    var noBackup = false

    @Option(name: .long, help: "Where to copy the files a repair changes (must not exist).")
    var backupDir: String?

    @Option(name: .long, help: "Index density of rebuilt indexes, in bytes (the log's indexIntervalBytes).")
    var indexInterval = 4096

    @Flag(name: .long, help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        if noBackup && backupDir != nil { throw ValidationError("give --no-backup or --backup-dir, not both") }
        if mode == .check && (noBackup || backupDir != nil) { throw ValidationError("check changes nothing and makes no backup") }
        guard indexInterval >= 64 else { throw ValidationError("--index-interval must be at least 64 (got \(indexInterval))") }
    }

    func run() async throws {
        let directory = try DataDirectoryLogs(data, log: logName, command: "recover")
        if backupDir != nil && directory.logs.count > 1 {
            printError("spool recover: \(directory.path) holds \(directory.logs.count) logs; --backup-dir needs one, chosen with --log")
            // An option combination the directory makes invalid: a usage error, not an unusable directory.
            throw ExitCode.usage
        }
        var status: Int32 = 0
        // A kind marker every open would refuse: reported by check, rewritten from the layout by a repair.
        if mode == .check {
            if reportKindMarkers(directory.directory) { status = 1 }
        } else if rewriteKindMarkers(directory.directory) {
            status = 1
        }
        for (name, path) in directory.logs {
            do {
                try await recover(path, named: name, in: directory)
            } catch let exit as ExitCode {
                status = max(status, exit.rawValue)
            }
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// Checks or repairs one log; throws `ExitCode(1)` when problems are left, `ExitCode(2)` when it cannot be used.
    private func recover(_ path: String, named name: String, in directory: DataDirectoryLogs) async throws {
        let log = try directory.open(path, writable: mode != .check, command: "recover")
        defer { log.close() }
        let progress = PhaseProgress(enabled: !json)
        do {
            switch mode {
            case .check:
                let verification = try log.verify(progress: progress.callback)
                progress.finish()
                // The engine's invariants, for the engine's history log (DIR/history beside DIR/checkpoint).
                var engine: HistoryVerification?
                if name == DataDirectory.historyName {
                    do {
                        engine = try SpoolEngine.verifyHistory(directory: directory.path)
                    } catch {
                        report(verification, log: name)
                        printError("spool recover: cannot check the engine's invariants: \(error)")
                        throw ExitCode(2)
                    }
                }
                let checkpoint = Self.taskStoreDirectory(ofLog: path, named: name).map { store in
                    TaskStore.assessCheckpoint(directory: store, logEnd: verification.segments.last?.summary.nextOffset ?? 0,
                                               logClosedCleanly: verification.cleanShutdown)
                }
                // The visibility index an open builds, against the one the histories give (only
                // when the engine opens: a damaged log or broken invariants are reported first).
                var visibility: VisibilityVerification?
                var visibilityUnchecked: String?
                if name == DataDirectory.historyName, verification.opensCleanly, let engine, Self.engineProblems(engine).isEmpty {
                    log.close()
                    do {
                        visibility = try await SpoolEngine.verifyVisibility(directory: directory.path)
                    } catch {
                        // The engine does not open (a damaged kind marker, reported above, is one
                        // cause): the index cannot be built to compare; a problem left, not a crash.
                        visibilityUnchecked = error.message
                    }
                }
                report(verification, engine: engine, visibility: visibility, checkpoint: checkpoint, log: name)
                if let visibilityUnchecked {
                    if !json { print("visibility index: not checked: the engine does not open: \(visibilityUnchecked)") }
                    throw ExitCode(1)
                }
                // A checkpoint the next open ignores (and rebuilds from the log) loses nothing: a warning.
                if !verification.isClean || !(engine.map { Self.engineProblems($0).isEmpty } ?? true) { throw ExitCode(1) }
                if let visibility, !visibility.isClean { throw ExitCode(1) }
            case .truncate, .salvage:
                let backup = noBackup ? nil : (backupDir ?? log.defaultBackupDirectory)
                let repair = try log.repair(mode == .truncate ? .truncate : .salvage, backupDirectory: backup,
                                            indexIntervalBytes: indexInterval, progress: progress.callback)
                progress.finish()
                // Which runs lost history records (the engine's history log only).
                var affected: [WorkflowExecution]?
                if name == DataDirectory.historyName && !repair.lost.isEmpty {
                    let lost = repair.lost.map { $0.offsets ?? ($0.firstPossibleOffset ?? 0)..<UInt64.max }
                    log.close()
                    affected = try? SpoolEngine.runsAffected(directory: directory.path, lost: lost)
                }
                // A task store checkpoint the next open would not trust is rebuilt after the log's repair:
                // judged now, so that the report says so instead of "nothing to repair".
                let store = Self.taskStoreDirectory(ofLog: path, named: name)
                let checkpoint = store.map { store in
                    TaskStore.assessCheckpoint(directory: store, logEnd: repair.after.segments.last?.summary.nextOffset ?? 0,
                                               logClosedCleanly: repair.after.cleanShutdown)
                }
                report(repair, affected: affected, checkpointDamage: checkpoint?.damage, log: name)
                if let store {
                    log.close()
                    try await rebuildCheckpointIfDamaged(store)
                }
                if !repair.after.isClean { throw ExitCode(1) }
            }
        } catch let error as LogError {
            progress.finish()
            printError("spool recover: \(error)")
            throw ExitCode(2)
        }
    }

    /// The task store whose log is `path`: the directory holding it as `log` (DIR/tasks/log, or
    /// a task store given as --data); nil for the engine's history or a bare log.
    static func taskStoreDirectory(ofLog path: String, named name: String) -> String? {
        guard name != DataDirectory.historyName else { return nil }
        let store = DataDirectory.parent(of: path)
        guard DataDirectory.StoreDirectory(store).log == DataDirectory.normalised(path) else { return nil }
        return store
    }

    /// The engine's findings that make the next open lose, hide or misreport runs: all but a
    /// checkpoint the open ignores (it replays the whole log instead, losing nothing).
    static func engineProblems(_ engine: HistoryVerification) -> [HistoryFinding] {
        engine.findings.filter { $0.kind != .checkpointUnreadable }
    }

    /// After a repair: a task store checkpoint the next open would not trust is rebuilt from the
    /// log now, explicitly — the store is opened (replaying the whole log) and closed (writing a
    /// new checkpoint); the damaged file is kept beside it as `checkpoint.damaged`.
    private func rebuildCheckpointIfDamaged(_ store: String) async throws {
        let layout = DataDirectory.StoreDirectory(store)
        let logEnd: UInt64
        let cleanly: Bool
        do {
            let offline = try OfflineLog.open(directory: layout.log)
            defer { offline.close() }
            let verification = try offline.verify()
            logEnd = verification.segments.last?.summary.nextOffset ?? 0
            cleanly = verification.cleanShutdown
        } catch {
            printError("spool recover: \(DataDirectory.explain(error, path: layout.log))")
            throw ExitCode.unusableDataDirectory
        }
        let assessment = TaskStore.assessCheckpoint(directory: store, logEnd: logEnd, logClosedCleanly: cleanly)
        guard let damage = assessment.damage else { return }
        var kept: String?
        if !assessment.isDirectory && rename(assessment.path, assessment.path + ".damaged") == 0 { kept = assessment.path + ".damaged" }
        do {
            let opened = try TaskStore.open(directory: store)
            let report = opened.recoveryReport
            try await opened.close()
            kept = kept ?? report.movedCheckpoint
            let message = "checkpoint: \(assessment.path) \(damage); rebuilt from the log (\(report.recordsReplayed) records replayed)"
                + (kept.map { "; the damaged one is kept as \($0)" } ?? "")
            if json {
                print(JSON.object([("mode", .string(mode.rawValue)), ("log", .string("tasks")),
                                   ("checkpointRebuilt", .object([("path", .string(assessment.path)), ("damage", .string(damage)),
                                                                  ("keptAs", .string(kept ?? ""))]))]).text)
            } else {
                print(message)
            }
        } catch {
            printError("spool recover: \(assessment.path) \(damage), and the task store cannot be opened to rebuild it: \(error)")
            throw ExitCode(1)
        }
    }

    private func logField(_ name: String) -> [(String, JSON)] {
        name.isEmpty ? [] : [("log", .string(name))]
    }

    private func report(_ verification: LogVerification, engine: HistoryVerification? = nil, visibility: VisibilityVerification? = nil,
                        checkpoint: StoreCheckpointAssessment? = nil, log name: String) {
        if json {
            var object: [(String, JSON)] = [("mode", .string("check"))] + logField(name) + fields(of: verification.json)
            if let engine { object.append(("engine", Self.json(engine))) }
            if let visibility { object.append(("visibility", Self.json(visibility))) }
            if let checkpoint {
                var fields: [(String, JSON)] = [("path", .string(checkpoint.path)), ("present", .bool(checkpoint.present)),
                                                ("damaged", .bool(checkpoint.damage != nil))]
                if let level = checkpoint.ackLevel { fields.append(("ackLevel", .integer(Int(clamping: level)))) }
                fields.append(("message", .string(checkpoint.consequence)))
                object.append(("checkpoint", .object(fields)))
            }
            print(JSON.object(object).text)
            return
        }
        print("spool recover: checked \(verification.directory)")
        for line in verification.lines { print(line) }
        print(verdict(verification))
        if let checkpoint {
            if checkpoint.damage != nil || checkpoint.aheadOfTruncatedLog {
                print("task store checkpoint: warning: \(checkpoint.path): \(checkpoint.consequence); "
                      + "to rewrite it now, run `spool recover --data \(data) --mode salvage`")
            } else {
                print("task store checkpoint: \(checkpoint.consequence)")
            }
        }
        if let engine {
            print("engine: \(engine.records) records, \(engine.runs) runs (\(engine.openRuns) open), checkpoint: "
                  + (engine.hasCheckpoint ? "\(engine.checkpointRuns) runs" : "none"))
            let problems = Self.engineProblems(engine)
            for finding in engine.findings where finding.kind == .checkpointUnreadable {
                print("  warning: \(finding) (nothing is lost; the next checkpoint replaces it)")
            }
            for finding in problems { print("  problem: \(finding)") }
            print(engine.isClean ? "engine invariants hold: histories, outstanding tasks and the checkpoint agree"
                  : problems.isEmpty ? "engine invariants hold: histories and outstanding tasks agree; the next open ignores the checkpoint (see the warning)"
                  : "engine invariants broken: \(problems.count) problem\(problems.count == 1 ? "" : "s") (the first in log order is the cause; "
                    + "later ones of the same run are not reported)")
        }
        if let visibility {
            for finding in visibility.findings { print("  visibility: \(finding)") }
            print(visibility.isClean
                  ? "visibility index agrees with the histories: \(visibility.indexedRuns) runs indexed"
                  : "visibility index disagrees with the histories for \(visibility.findings.count) run\(visibility.findings.count == 1 ? "" : "s") "
                    + "(\(visibility.indexedRuns) indexed, \(visibility.runsFromHistory) from the histories)")
        }
    }

    static func json(_ visibility: VisibilityVerification) -> JSON {
        .object([("clean", .bool(visibility.isClean)), ("indexedRuns", .integer(visibility.indexedRuns)),
                 ("runsFromHistory", .integer(visibility.runsFromHistory)),
                 ("disagreements", .array(visibility.findings.map { finding in
                     .object([("namespace", .string(finding.namespace)), ("workflowID", .string(finding.execution.workflowID)),
                              ("runID", .string(finding.execution.runID)), ("message", .string(finding.message))])
                 }))])
    }

    static func json(_ engine: HistoryVerification) -> JSON {
        .object([("clean", .bool(engine.isClean)), ("records", .integer(engine.records)), ("runs", .integer(engine.runs)),
                 ("openRuns", .integer(engine.openRuns)), ("checkpoint", .bool(engine.hasCheckpoint)),
                 ("checkpointRuns", .integer(engine.checkpointRuns)),
                 ("problems", .array(engine.findings.map { finding in
                     var fields: [(String, JSON)] = [("kind", .string(finding.kind.rawValue)), ("file", .string(finding.file))]
                     if let position = finding.position { fields.append(("position", .integer(position))) }
                     if let offset = finding.offset { fields.append(("offset", .integer(Int(offset)))) }
                     if let execution = finding.execution {
                         fields += [("namespace", .string(finding.namespace ?? "")), ("workflowID", .string(execution.workflowID)),
                                    ("runID", .string(execution.runID))]
                     }
                     if let eventID = finding.eventID { fields.append(("eventID", .integer(Int(eventID)))) }
                     fields.append(("message", .string(finding.message)))
                     return .object(fields)
                 }))])
    }

    private func verdict(_ verification: LogVerification) -> String {
        if verification.isClean { return "clean: the log opens and every record reads back" }
        if verification.opensCleanly {
            return "the log opens and every record reads back; the next open or `spool recover --mode truncate` fixes the rest"
        }
        let lostFiles = verification.problems.filter { $0.kind == "segmentMissing" || $0.kind == "segmentShortened" }
        if !lostFiles.isEmpty {
            // Bytes that were on stable storage are gone: a backup may still have them; salvage only accepts the loss.
            return "damaged: \(lostFiles.count) segment file\(lostFiles.count == 1 ? " is" : "s are") missing or cut short "
                + "(open refuses the log); restore \(lostFiles.count == 1 ? "it" : "them") from a backup if you can, or run "
                + "`spool recover --data \(data) --mode salvage` to accept the loss (it reports the offsets lost)"
        }
        return "damaged: run `spool recover --data \(data) --mode truncate` (keep the log up to the first damage) "
            + "or `--mode salvage` (keep every intact batch)"
    }

    private func report(_ repair: RepairReport, affected: [WorkflowExecution]?, checkpointDamage: String?, log name: String) {
        if json {
            var object: [(String, JSON)] = [("mode", .string(repair.mode.rawValue))] + logField(name)
            if let affected {
                object.append(("affectedExecutions", .array(affected.map { .object([("workflowID", .string($0.workflowID)),
                                                                                     ("runID", .string($0.runID))]) })))
            }
            object += [("before", repair.before.json), ("after", repair.after.json),
                       ("lost", .array(repair.lost.map(\.json))),
                       ("lostOffsets", .array(repair.lostOffsets.map { jsonOffsets($0) })),
                       ("changedFiles", .array(repair.changedFiles.map { .string($0) })),
                       ("deletedFiles", .array(repair.deletedFiles.map { .string($0) })),
                       ("backupDirectory", .string(repair.backupDirectory ?? "")),
                       ("backedUpFiles", .array(repair.backedUpFiles.map { .string($0) }))]
            print(JSON.object(object).text)
            return
        }
        print("spool recover --mode \(repair.mode.rawValue): \(repair.before.directory)")
        print("before:")
        for line in repair.before.lines { print(line) }
        if repair.changedNothing {
            if let checkpointDamage {
                print("the log needs no repair; the task store's checkpoint \(checkpointDamage): rebuilding it from the log")
            } else {
                print("nothing to repair")
            }
            return
        }
        if let backup = repair.backupDirectory {
            print("backup: \(repair.backedUpFiles.count) file\(repair.backedUpFiles.count == 1 ? "" : "s") copied to \(backup)")
        } else if !noBackup {
            print("backup: none needed")
        } else {
            print("backup: none (--no-backup)")
        }
        if repair.lost.isEmpty {
            print("removed: no records")
        } else {
            print("removed:")
            for lost in repair.lost { print("  \(lost)") }
            let exact = repair.lostOffsets
            print("records lost (exact offsets of intact batches removed): "
                  + (exact.isEmpty ? "none" : exact.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ", ")))
            if name == "tasks" { print("tasks lost: a task's id is its log offset; the offsets above are the ids of the tasks removed") }
            if let affected {
                print("executions affected (history records lost): " + (affected.isEmpty ? "none found"
                      : affected.map { "\($0.workflowID)/\($0.runID)" }.joined(separator: ", ")))
            }
        }
        if !repair.changedFiles.isEmpty { print("changed: " + repair.changedFiles.map(Self.name).joined(separator: ", ")) }
        // An index is deleted before its segment is rewritten and then written anew: list it once, as changed.
        let deleted = repair.deletedFiles.filter { !repair.changedFiles.contains($0) }
        if !deleted.isEmpty { print("deleted: " + deleted.map(Self.name).joined(separator: ", ")) }
        print("after:")
        for line in repair.after.lines { print(line) }
        print(repair.after.isClean ? "repaired: the log opens and every kept record reads back" : verdict(repair.after))
    }

    private func fields(of json: JSON) -> [(String, JSON)] {
        if case .object(let fields) = json { return fields }
        return []
    }

    static func name(_ path: String) -> String { String(path.split(separator: "/").last ?? Substring(path)) }
}
