#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolPrimitives
import ArgumentParser
import SpoolLog
import SpoolToolSupport

/// `spool torture`: crash the log again and again and check that it keeps its promises.
struct TortureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torture",
        abstract: "Crash a durable log workload again and again (SIGKILL, or simulated power loss) and verify every acknowledged record.",
        discussion: """
        Default: the parent spawns a child (`spool torture --child`, the same executable) that appends \
        from --appenders tasks in .sync mode (single records of random size and append(contentsOf:) \
        batches, with a few flushes) and prints each acknowledged offset as soon as the append \
        returns; the parent kills it with SIGKILL at a random moment, reopens the log, verifies it, \
        and starts the next child on the same, growing, directory.

        --power-loss: the same workload in-process through PowerLossSyscalls; each crash is a power \
        cut at a random system call, after which every byte not fdatasync'ed and every directory \
        entry not fsync'ed is dropped (--torn keeps a random subset of the unsynced pages instead).

        Verified after every crash: the log opens; every acknowledged record is at its offset with \
        its bytes (outside .sync mode: every record covered by a completed sync, a flush or a segment \
        roll); every record returned is one some append wrote, intact, and appears once; a record \
        returned once is returned at every later open. The seed replays the run's choices (not the \
        thread interleaving). Exit status 1 when anything was lost, duplicated or corrupt.

        --workload tasks: the child runs the durable task queues (SpoolQueue) instead of the bare log: \
        --appenders producers add tasks (each reported once durable), half as many consumers poll them, \
        complete most (reported once the completion is durable), fail some (retried, dead-lettered after \
        3 attempts) and leave some in flight. Verified after every kill: the store opens; every \
        acknowledged task (and every task an earlier open showed) is queued or dead-lettered until its \
        completion is durable; no task is queued twice, queued or delivered again after a durable \
        completion, or corrupt. Real kills only.

        --workload workflows: the child runs the engine with two in-process workers and --appenders \
        starters; each workflow runs two activities in sequence (some first attempts fail and are \
        retried) and completes with a result fixed by its id. Verified after every kill: the engine \
        opens; every acknowledged start has its run; each history numbers its events from 1, begins \
        with WorkflowExecutionStarted, closes at most once and last, completes no activity twice, and \
        extends what earlier opens showed. After the last kill, workers run until every workflow has \
        closed: each must complete with its expected result. Real kills only.

        --damage (with --workload tasks, the default with --damage, or workflows): after every kill \
        and check, the parent copies the store into a data directory under <data>/torture-damage, \
        damages the copy with one case of the damage catalogue drawn at random (a segment, index, \
        checkpoint, marker, manifest, lock or kind file flipped, cut, deleted, replaced by a \
        directory, made unreadable, or swapped with an older copy's), and checks: `spool recover` \
        (check, the spool beside spool-lab) exiting 0 means the store opens with every acknowledged \
        task or run; an open missing any is a silent loss (must be 0) unless it refuses, and then \
        check must have exited non-zero; `spool recover --mode salvage` on a second damaged copy \
        exits 0 with the store opening and every loss named among the offsets removed, or exits \
        non-zero saying why. Exit status 1 on any silent loss or disagreement.
        """
    )

    @Option(name: .long, help: "Crashes to run.")
    var kills = 20

    @Option(name: .long, help: "Seed of the run's choices (random when omitted; printed either way).")
    var seed: UInt64?

    @Option(name: .long, help: "Parent of the scratch log directory (<data>/torture, removed at the start).")
    var data = "./spool-data"

    @Option(name: .long, help: "Concurrent appenders (with --workload tasks: producers).")
    var appenders = 8

    @Option(name: .customLong("workload"),
            help: "What the child runs: log (appends to a bare log), tasks (the durable task queues) or workflows (the engine); default log, tasks with --damage.")
    var workloadOption: String?

    /// The workload: as given, else tasks with --damage, else log.
    var workload: String { workloadOption ?? (damage ? "tasks" : "log") }

    @Flag(name: .long, help: "Between kills, damage a copy of the store at random and check that nothing acknowledged is lost silently (tasks or workflows).")
    var damage = false

    @Option(name: .long, help: "Durability: sync, none or interval:<ms> (--power-loss only; real kills always use sync).")
    var durability = "sync"

    @Flag(name: .long, help: "Simulated power loss in-process instead of killing a child process.")
    var powerLoss = false

    @Flag(name: .long, help: "With --power-loss: keep a random subset of unsynced pages (torn, out-of-order write-back).")
    var torn = false

    @Option(name: .long, help: "Longest a child runs before it is killed, in milliseconds (uniform from 5; three times in four counted from its first report, else from its spawn).")
    var maxLifeMs = 300

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Flag(name: .long, help: .hidden)
    var child = false

    @Option(name: .long, help: .hidden)
    var round = 0

    @Option(name: .long, help: .hidden)
    var directory: String?

    func validate() throws {
        guard kills >= 1 else { throw ValidationError("--kills must be at least 1 (got \(kills))") }
        guard appenders >= 1 && appenders <= 1024 else { throw ValidationError("--appenders must be between 1 and 1024 (got \(appenders))") }
        guard maxLifeMs >= 5 else { throw ValidationError("--max-life-ms must be at least 5 (got \(maxLifeMs))") }
        guard parsedDurability != nil else { throw ValidationError("--durability must be sync, none or interval:<ms> (got \(durability))") }
        if !powerLoss && parsedDurability != .sync { throw ValidationError("real kills test .sync only; use --power-loss for \(durability)") }
        if torn && !powerLoss { throw ValidationError("--torn needs --power-loss") }
        guard ["log", "tasks", "workflows"].contains(workload) else {
            throw ValidationError("--workload must be log, tasks or workflows (got \(workload))")
        }
        if workload != "log" && powerLoss { throw ValidationError("--workload \(workload) runs real kills only; drop --power-loss") }
        if damage && workload == "log" { throw ValidationError("--damage damages a task store or an engine: give --workload tasks or workflows") }
    }

    var parsedDurability: Durability? {
        if durability == "sync" { return .sync }
        if durability == "none" { return Durability.none }
        if durability.hasPrefix("interval:"), let ms = Int(durability.dropFirst(9)), ms >= 1 { return .interval(milliseconds: ms) }
        return nil
    }

    /// Small segments so that the log rolls often; everything else as shipped.
    static func logConfiguration(_ durability: Durability) -> LogConfiguration {
        var configuration = LogConfiguration(durability: durability)
        configuration.segmentBytes = 1 << 20
        configuration.maxRecordBytes = 64 << 10
        configuration.preallocationBytes = 256 << 10
        configuration.compressionThresholdBytes = 1024
        return configuration
    }

    func run() async throws {
        if child {
            guard let directory else { throw ValidationError("--child needs --directory") }
            if workload != "log" {
                let status = workload == "tasks"
                    ? await TaskTorture.runChild(directory: directory, seed: seed ?? 0, round: round, producers: appenders)
                    : await WorkflowTorture.runChild(directory: directory, seed: seed ?? 0, round: round, starters: appenders)
                if status != 0 { throw ExitCode(status) }
                return
            }
            let status = await TortureChild.run(directory: directory, configuration: Self.logConfiguration(.sync),
                                                seed: seed ?? 0, round: round, appenders: appenders)
            if status != 0 { throw ExitCode(status) }
            return
        }
        let seed = self.seed ?? Self.randomSeed()
        try makeDirectory(data)
        let directory = data + "/torture"
        removeTree(directory)
        let started = monotonicNanoseconds()
        var report: TortureReport
        if powerLoss {
            var run = PowerLossTorture(directory: directory, seed: seed, durability: parsedDurability!, torn: torn,
                                       appenders: appenders, configuration: Self.logConfiguration(parsedDurability!))
            await run.run(crashes: kills, progress: !json)
            report = run.report
        } else if workload == "tasks" {
            report = try await taskKillLoop(directory: directory, seed: seed)
        } else if workload == "workflows" {
            report = try await workflowKillLoop(directory: directory, seed: seed)
        } else {
            report = try await killLoop(directory: directory, seed: seed)
        }
        report.seconds = Double(monotonicNanoseconds() - started) / 1e9
        report.seed = seed
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let i = arguments.firstIndex(of: "--seed") { arguments.removeSubrange(i..<min(i + 2, arguments.count)) }
        report.command = arguments.filter { !$0.hasPrefix("--seed=") }.joined(separator: " ")
        print(json ? report.json.text : report.text)
        if !report.ledger.problems.isEmpty || report.ledger.lost > 0 || report.ledger.corrupt > 0 || report.ledger.duplicated > 0
            || report.ledger.failedOpens > 0 || !(report.damage?.isClean ?? true) {
            throw ExitCode(1)
        }
    }

    static func randomSeed() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return UInt64(time.tv_sec) &* 1_000_003 &+ UInt64(time.tv_nsec) ^ UInt64(getpid())
    }

    // MARK: Real kills

    private func killLoop(directory: String, seed: UInt64) async throws -> TortureReport {
        var random = SplitMix64(seed: seed)
        var report = TortureReport(mode: "kill", durability: "sync")
        let configuration = Self.logConfiguration(.sync)
        for round in 0..<kills {
            let life = nextLife(&random)
            let childSeed = random.next()
            let outcome = try spawnAndKill(arguments: ["torture", "--child", "--directory", directory, "--seed", String(childSeed),
                                                       "--round", String(round), "--appenders", String(appenders)],
                                           life: life)
            outcome.count(round: round, into: &report.ledger)
            report.ledger.acknowledged += outcome.acknowledgements.count
            for (offset, id) in outcome.acknowledgements { report.ledger.promise(offset: offset, id: id) }
            let log: Log
            do {
                log = try Log.open(directory: directory, configuration: configuration)
            } catch {
                report.ledger.failedOpens += 1
                report.ledger.problem("round \(round): open failed: \(error)")
                break
            }
            report.ledger.verify(log, round: round)
            // Half the time the parent closes cleanly, so the next child takes the clean-open path.
            if random.below(2) == 0 { try? log.close() } else { log.abandon() }
            if !json { writeStandardError("\rkill \(round + 1)/\(kills): \(report.ledger.acknowledged) acknowledged, \(report.ledger.records) records, lost \(report.ledger.lost)   ") }
        }
        if !json { writeStandardError("\n") }
        return report
    }

    /// The kill loop of `--workload tasks`.
    private func taskKillLoop(directory: String, seed: UInt64) async throws -> TortureReport {
        var tasks = TaskTortureLedger()
        var report = try await storeKillLoop("tasks", directory: directory, seed: seed, ledger: &tasks)
        report.ledger.acknowledged = tasks.acknowledged
        report.tasks = tasks
        return report
    }

    /// The kill loop of `--workload workflows`, then a drain that runs every workflow to its end.
    private func workflowKillLoop(directory: String, seed: UInt64) async throws -> TortureReport {
        var workflows = WorkflowTortureLedger()
        var report = try await storeKillLoop("workflows", directory: directory, seed: seed, ledger: &workflows)
        if !json { writeStandardError("draining: running every workflow to its end\n") }
        if report.ledger.failedOpens == 0 { await workflows.drain(directory: directory, seconds: 120, into: &report.ledger) }
        report.ledger.acknowledged = workflows.acknowledgedStarts
        report.workflows = workflows
        return report
    }

    /// Kills a child running `workload` --kills times; after each kill `store` reads what the child
    /// reported and checks the reopened store.
    private func storeKillLoop<Ledger: KillLoopLedger>(_ workload: String, directory: String, seed: UInt64,
                                                       ledger store: inout Ledger) async throws -> TortureReport {
        var random = SplitMix64(seed: seed)
        // Damage draws from its own stream: the kills of a seed are the same with and without --damage.
        var damageRandom = SplitMix64(seed: seed ^ 0xDA3A_6E00_0000_0001)
        var report = TortureReport(mode: "kill", durability: "sync", workload: workload)
        let damageScratch = data + "/torture-damage"
        if damage {
            removeTree(damageScratch)
            mkdir(damageScratch, 0o700)
            report.damage = DamageTortureTally()
        }
        for round in 0..<kills {
            let life = nextLife(&random)
            let outcome = try spawnAndKill(arguments: ["torture", "--child", "--workload", workload, "--directory", directory,
                                                       "--seed", String(random.next()), "--round", String(round),
                                                       "--appenders", String(appenders)],
                                           life: life)
            outcome.count(round: round, into: &report.ledger)
            store.apply(outcome.lines, round: round, into: &report.ledger)
            // Half the time the parent closes cleanly, so the next child takes the clean-open path.
            let reopened = await store.check(directory: directory, round: round, closingCleanly: random.below(2) == 0,
                                             into: &report.ledger)
            guard reopened else { break }
            if damage {
                await DamageTorture.round(store, directory: directory, scratch: damageScratch, round: round, random: &damageRandom,
                                          tally: &report.damage!, into: &report.ledger)
            }
            if !json {
                writeStandardError("\rkill \(round + 1)/\(kills): \(store.progress(report.ledger))"
                                   + (report.damage.map { ", damage: \($0.silentLosses) silent losses, \($0.refusals) refusals" } ?? "") + "   ")
            }
        }
        if !json { writeStandardError("\n") }
        if damage { removeTree(damageScratch) }
        return report
    }

    /// How long a child lives before it is killed.
    struct ChildLife {
        var milliseconds: Int
        /// Counted from the child's first report (it has opened the store and acknowledged
        /// something), rather than from its spawn. A life counted from the spawn may end while the
        /// child is still starting and recovering, which is a crash point worth testing; but when
        /// every life is counted that way, a slow start (a debug build on a loaded machine) can
        /// leave every child killed before it did anything.
        var fromFirstReport: Bool
    }

    /// The longest a child may take to report anything before it is killed anyway (and the run
    /// reports it).
    static let startUpLimitSeconds = 120

    /// Uniform from 5 ms to --max-life-ms; three lives in four counted from the first report.
    func nextLife(_ random: inout SplitMix64) -> ChildLife {
        ChildLife(milliseconds: 5 + random.below(maxLifeMs - 4), fromFirstReport: random.below(4) != 0)
    }

    struct ChildOutcome {
        /// Every line the child wrote, in order.
        var lines: [String] = []
        var acknowledgements: [(UInt64, UInt64)] = []
        var killed = false
        /// Killed at the start-up limit, with its life counted from a first report that never came.
        var silent = false
        var status: Int32 = 0

        /// Counts the crash in `ledger`, and as a problem a child that was not killed as planned.
        func count(round: Int, into ledger: inout TortureLedger) {
            ledger.crashes += 1
            if !killed {
                ledger.problem("round \(round): the child exited by itself (status \(status)) before it was killed")
            }
            if silent {
                ledger.problem("round \(round): the child reported nothing in \(TortureCommand.startUpLimitSeconds) s; killed")
            }
        }
    }

    /// Spawns this executable with `arguments`, reads its acknowledgements until its `life` is
    /// over, kills it with SIGKILL, and reads what it wrote before dying.
    private func spawnAndKill(arguments: [String], life: ChildLife) throws -> ChildOutcome {
        let (pid, output) = try spawnSelf(arguments)
        defer { close(output) }
        var outcome = ChildOutcome()
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        let lifeNanoseconds = UInt64(life.milliseconds) * 1_000_000
        let spawned = monotonicNanoseconds()
        var deadline = life.fromFirstReport ? spawned + UInt64(Self.startUpLimitSeconds) * 1_000_000_000 : spawned + lifeNanoseconds
        var waitingForReport = life.fromFirstReport
        var open = true
        func drain(_ n: Int) {
            pending.append(contentsOf: buffer[0..<n])
            var start = 0
            for i in pending.indices where pending[i] == UInt8(ascii: "\n") {
                let text = String(decoding: pending[start..<i], as: UTF8.self)
                outcome.lines.append(text)
                let line = text.split(separator: " ")
                if line.count == 2, let offset = UInt64(line[0]), let id = UInt64(line[1]) { outcome.acknowledgements.append((offset, id)) }
                start = i + 1
            }
            pending.removeFirst(start)
        }
        while open {
            let now = monotonicNanoseconds()
            if now >= deadline { break }
            var poller = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, (deadline - now) / 1_000_000)))
            if ready <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if n > 0 { drain(n) } else if n == 0 { open = false }
            if waitingForReport && !outcome.lines.isEmpty {
                waitingForReport = false
                deadline = monotonicNanoseconds() + lifeNanoseconds
            }
        }
        if open {
            kill(pid, SIGKILL)
            outcome.killed = true
            outcome.silent = waitingForReport
            // Whatever the child wrote before it died is still in the pipe.
            while true {
                let n = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
                if n > 0 { drain(n) } else if n == 0 || errno != EINTR { break }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        outcome.status = status
        return outcome
    }
}

/// The figures of a run.
struct TortureReport {
    var mode: String
    var durability: String
    var workload = "log"
    /// The task workload's figures (`--workload tasks`).
    var tasks: TaskTortureLedger?
    /// The workflow workload's figures (`--workload workflows`).
    var workflows: WorkflowTortureLedger?
    /// The damaged copies' figures (`--damage`).
    var damage: DamageTortureTally?
    var ledger = TortureLedger()
    var seed: UInt64 = 0
    var seconds = 0.0
    var command = ""
    /// Outside `.sync` mode: acknowledged records lost as the mode allows, and the oldest of them.
    var acknowledgedButLost = 0
    var oldestLostMilliseconds = 0.0
    var longestSyncMilliseconds = 0.0

    var text: String {
        var lines = [
            "spool torture (\(workload), \(mode), \(durability)): \(ledger.crashes) crashes in \(format(seconds, decimals: 1)) s, seed \(seed)",
        ]
        if let tasks {
            lines.append("  acknowledged adds: \(tasks.acknowledged)   deliveries: \(tasks.deliveries)   durable completions: \(tasks.completions) (+ \(tasks.silentCompletions) found durable at a reopen)   "
                         + "queued at the end: \(tasks.queuedAtEnd) (+ \(tasks.deadLettersAtEnd) dead letters)")
        } else if let workflows {
            lines.append("  acknowledged starts: \(workflows.acknowledgedStarts)   runs: \(workflows.started.count)   "
                         + "completed with the expected result after the drain: \(workflows.completedAtEnd)")
        } else {
            lines.append("  acknowledged records: \(ledger.acknowledged)   records in the log at the end: \(ledger.records)")
        }
        lines += [
            "  lost: \(ledger.lost)   duplicated: \(ledger.duplicated)   corrupt: \(ledger.corrupt)   failed opens: \(ledger.failedOpens)   torn tails cut: \(ledger.tornTailsCut)",
        ]
        if let damage { lines.append(damage.text) }
        if durability != "sync" {
            lines.append("  acknowledged but not yet durable, lost as the mode allows: \(acknowledgedButLost) (oldest \(format(oldestLostMilliseconds, decimals: 2)) ms before the power cut; longest fdatasync \(format(longestSyncMilliseconds, decimals: 2)) ms)")
        }
        lines.append("  replay: spool \(command) --seed \(seed)")
        for problem in ledger.problems.prefix(20) { lines.append("  PROBLEM: \(problem)") }
        for note in ledger.notes.prefix(10) { lines.append("  note: \(note)") }
        return lines.joined(separator: "\n")
    }

    var json: JSON {
        .object([
            ("mode", .string(mode)), ("durability", .string(durability)), ("workload", .string(workload)), ("seed", .string(String(seed))),
            ("deliveries", .integer(tasks?.deliveries ?? 0)), ("completions", .integer(tasks?.completions ?? 0)),
            ("workflowsCompleted", .integer(workflows?.completedAtEnd ?? 0)),
            ("crashes", .integer(ledger.crashes)), ("acknowledged", .integer(ledger.acknowledged)),
            ("records", .integer(ledger.records)), ("lost", .integer(ledger.lost)), ("duplicated", .integer(ledger.duplicated)),
            ("corrupt", .integer(ledger.corrupt)), ("failedOpens", .integer(ledger.failedOpens)),
            ("tornTailsCut", .integer(ledger.tornTailsCut)), ("acknowledgedButLost", .integer(acknowledgedButLost)),
            ("oldestLostMilliseconds", .number(oldestLostMilliseconds)), ("longestSyncMilliseconds", .number(longestSyncMilliseconds)),
            ("seconds", .number(seconds)), ("problems", .array(ledger.problems.map { .string($0) })),
        ] + (damage.map { [("damage", JSON.object($0.json))] } ?? []))
    }
}
