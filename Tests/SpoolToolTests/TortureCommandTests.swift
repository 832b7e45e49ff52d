import SpoolTestSupport
import Testing

/// Short runs of `spool torture` (the executable, as operators run it): a child process is killed
/// with SIGKILL at random moments, and after every kill the parent reopens the store and checks
/// that nothing acknowledged was lost, duplicated or corrupted. Long runs are `spool torture
/// --kills 200` (see Docs/reliability.md). Three children in four live up to 150 ms from their
/// first report, so the workload does work however slowly a loaded machine starts them; the
/// fourth may die while it is still opening the store.
@Suite("spool torture: short runs")
struct TortureCommandTests {
    @Test("durable task queues: 20 kills lose, duplicate and corrupt nothing")
    func taskQueueKills() async throws {
        let scratch = ScratchDirectory()
        let result = try await SpoolProcess.runOnOwnThread(["torture", "--workload", "tasks", "--kills", "20", "--max-life-ms", "150",
                                           "--data", scratch.path])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("20 crashes"), "\(result.stdout)")
        #expect(result.stdout.contains("lost: 0   duplicated: 0   corrupt: 0   failed opens: 0"), "\(result.stdout)")
        // The workload did work: tasks were acknowledged and completed across the kills.
        #expect(!result.stdout.contains("acknowledged adds: 0 "), "\(result.stdout)")
        #expect(!result.stdout.contains("durable completions: 0 "), "\(result.stdout)")
    }

    @Test("engine: 20 kills lose no started workflow, and every workflow then completes as it would have")
    func workflowKills() async throws {
        let scratch = ScratchDirectory()
        let result = try await SpoolProcess.runOnOwnThread(["torture", "--workload", "workflows", "--kills", "20", "--max-life-ms", "150",
                                           "--data", scratch.path])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("20 crashes"), "\(result.stdout)")
        #expect(result.stdout.contains("lost: 0   duplicated: 0   corrupt: 0   failed opens: 0"), "\(result.stdout)")
        #expect(!result.stdout.contains("acknowledged starts: 0 "), "\(result.stdout)")
        // Every run the store holds completed with its expected result after the drain.
        let runs = result.stdout.split(separator: "runs: ").dropFirst().first?.split(separator: " ").first
        #expect(runs != nil && result.stdout.contains("expected result after the drain: \(runs!)"), "\(result.stdout)")
    }

    @Test("--damage: between kills a damaged copy of the store never loses an acknowledged task silently")
    func damagedCopies() async throws {
        let scratch = ScratchDirectory()
        let result = try await SpoolProcess.runOnOwnThread(["torture", "--damage", "--workload", "tasks", "--kills", "8",
                                                            "--max-life-ms", "150", "--data", scratch.path])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("lost: 0   duplicated: 0   corrupt: 0   failed opens: 0"), "\(result.stdout)")
        // Rounds damaged copies (a round whose draws found nothing applicable, 8 times over, is skipped: a
        // young store has few files), and none lost anything silently or had check and open disagree.
        let rounds = result.stdout.split(separator: "damage rounds: ").dropFirst().first?.prefix { $0.isNumber }
        #expect(rounds.flatMap { Int($0) }.map { $0 >= 6 } == true, "\(result.stdout)")
        #expect(result.stdout.contains("   silent losses: 0 (+ "), "\(result.stdout)")
        #expect(result.stdout.contains("check/open disagreements: 0"), "\(result.stdout)")
        #expect(result.stdout.contains(", 0 problems"), "\(result.stdout)")
        #expect(!fileExists(scratch.path + "/torture-damage"), "the damaged copies are removed")
    }
}
