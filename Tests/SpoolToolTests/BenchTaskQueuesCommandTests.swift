import SpoolTestSupport
import Testing

/// `spool bench task-queues --quick`: a smoke run. It asserts only that the bench runs and
/// prints every scenario's figures (the figures are wall-clock measurements, not test material).
@Suite("spool bench task-queues")
struct BenchTaskQueuesCommandTests {
    @Test("--quick runs every scenario and prints each figure with its target")
    func quickRun() throws {
        let scratch = ScratchDirectory()
        let result = try SpoolProcess.run(["bench", "task-queues", "--quick", "--data", scratch.path])
        #expect(result.status == 0, "\(result.stderr)")
        for scenario in ["priorities", "fairness", "global rate", "per-key rate", "per-worker rate", "sessions", "describe"] {
            #expect(result.stdout.contains(scenario), "no '\(scenario)' in:\n\(result.stdout)")
        }
        #expect(result.stdout.contains("13 figures in 7 scenarios"), "\(result.stdout)")
        // One row per figure, each with its target and its baseline (the summary line names targets too).
        let rows = result.stdout.split(separator: "\n").filter { $0.contains(" target ") && $0.contains(" baseline ") }
        #expect(rows.count == 13, "\(result.stdout)")
    }

    @Test("--json prints one object with every figure")
    func quickJSON() throws {
        let scratch = ScratchDirectory()
        let result = try SpoolProcess.run(["bench", "task-queues", "--quick", "--json", "--data", scratch.path])
        #expect(result.status == 0, "\(result.stderr)")
        let text = result.stdout
        #expect(text.hasPrefix("{\"benchmark\":\"task-queues\""), "\(text)")
        #expect(occurrences(of: "\"scenario\":", in: text) == 13, "\(text)")
    }

    private func occurrences(of needle: String, in text: String) -> Int {
        let hay = Array(text.utf8), pattern = Array(needle.utf8)
        guard hay.count >= pattern.count else { return 0 }
        return (0...(hay.count - pattern.count)).filter { hay[$0..<($0 + pattern.count)].elementsEqual(pattern) }.count
    }
}
