#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing

/// `spool task-queue describe|config|pause|resume` run as a user runs them (issue 21, point 5).
@Suite struct TaskQueueCommandTests {
    static let usage: Int32 = 64

    /// A data directory whose workflow queue `billing` holds two workflow tasks (two started runs).
    private func makeData(_ scratch: ScratchDirectory) throws -> String {
        let data = scratch.path + "/data"
        for id in ["a", "b"] {
            let started = try SpoolProcess.run(["workflow", "start", "--data", data, "--id", id, "--type", "invoice", "--task-queue", "billing"])
            try #require(started.status == 0, "\(started.stderr)")
        }
        return data
    }

    @Test("describe of an offline store shows the backlog and the settings; config, pause and resume are durable")
    func describeConfigPauseResume() throws {
        let scratch = ScratchDirectory()
        let data = try makeData(scratch)
        let target = ["--data", data, "--task-queue", "billing", "--kind", "workflow"]

        let before = fileStamps(data)
        let describe = try SpoolProcess.run(["task-queue", "describe"] + target)
        #expect(describe.status == 0, "\(describe.stderr)")
        #expect(describe.stdout.contains("backlog        2"), "\(describe.stdout)")
        #expect(describe.stdout.contains("priority 3   2 task(s)"), "\(describe.stdout)")
        #expect(describe.stdout.contains("rate limit     none configured"), "\(describe.stdout)")
        #expect(describe.stdout.contains("pollers        only visible in the process that runs the workers"), "\(describe.stdout)")
        #expect(fileStamps(data) == before, "describe changed the data directory")
        // The activity queue of the same name is empty.
        let activity = try SpoolProcess.run(["task-queue", "describe", "--data", data, "--task-queue", "billing", "--json"])
        #expect(activity.stdout.contains("\"kind\":\"activity\"") && activity.stdout.contains("\"backlogCount\":0"), "\(activity.stdout)")

        let config = try SpoolProcess.run(["task-queue", "config"] + target + ["--rate", "5", "--reason", "quota", "--partitions", "2", "--key-rate", "1.5"])
        #expect(config.status == 0, "\(config.stderr)")
        #expect(config.stdout.contains("rate limit     5.0/s (quota; set by spool-cli"), "\(config.stdout)")
        #expect(config.stdout.contains("key rate limit 1.5/s per fairness key × its weight (quota; set by spool-cli"), "\(config.stdout)")
        #expect(config.stdout.contains("partitions     2"), "\(config.stdout)")
        var settings = stat()
        #expect(stat(data + "/task-queues", &settings) == 0)
        #expect(settings.st_mode & 0o777 == 0o600)

        let pause = try SpoolProcess.run(["task-queue", "pause"] + target + ["--reason", "deploy"])
        #expect(pause.status == 0, "\(pause.stderr)")
        let paused = try SpoolProcess.run(["task-queue", "describe"] + target + ["--json"])
        #expect(paused.status == 0, "\(paused.stderr)")
        for field in ["\"paused\":true", "\"effectiveRateLimit\":5.0", "\"partitions\":2", "\"backlogCount\":2", "\"pauseReason\":\"deploy\"",
                      "\"requestsPerSecond\":5.0", "\"reason\":\"quota\"", "\"pollersVisible\":false"] {
            #expect(paused.stdout.contains(field), "\(field) in \(paused.stdout)")
        }

        let resume = try SpoolProcess.run(["task-queue", "resume"] + target)
        #expect(resume.status == 0, "\(resume.stderr)")
        let cleared = try SpoolProcess.run(["task-queue", "config"] + target + ["--clear-rate", "--clear-partitions", "--clear-key-rate", "--json"])
        #expect(cleared.status == 0, "\(cleared.stderr)")
        #expect(cleared.stdout.contains("\"queueRateLimit\":null") && cleared.stdout.contains("\"partitions\":null")
                && cleared.stdout.contains("\"fairnessKeyRateLimit\":null")
                && cleared.stdout.contains("\"paused\":false"), "\(cleared.stdout)")
        let after = try SpoolProcess.run(["task-queue", "describe"] + target)
        #expect(after.stdout.contains("dispatching    yes") && after.stdout.contains("partitions now 4"), "\(after.stdout)")
    }

    @Test("bad options exit 64 and change nothing; a missing directory exits 2")
    func badInput() throws {
        let scratch = ScratchDirectory()
        let data = try makeData(scratch)
        let before = fileStamps(data)
        for arguments in [["task-queue", "config", "--data", data, "--task-queue", "billing", "--rate", "-1"],
                          ["task-queue", "config", "--data", data, "--task-queue", "billing", "--partitions", "65"],
                          ["task-queue", "config", "--data", data, "--task-queue", "billing", "--rate", "3", "--clear-rate"],
                          ["task-queue", "config", "--data", data, "--task-queue", "billing", "--key-rate", "-2"],
                          ["task-queue", "config", "--data", data, "--task-queue", "billing", "--key-rate", "2", "--clear-key-rate"],
                          ["task-queue", "describe", "--data", data, "--task-queue", "billing", "--kind", "nexus"],
                          ["task-queue", "pause", "--data", data, "--task-queue", ""]] {
            let result = try SpoolProcess.run(arguments)
            #expect(result.status == Self.usage, "\(arguments): \(result.stderr)")
        }
        #expect(fileStamps(data) == before)
        let missing = try SpoolProcess.run(["task-queue", "describe", "--data", scratch.path + "/nothing", "--task-queue", "billing"])
        #expect(missing.status == 2, "\(missing.stderr)")
    }
}
