#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import Spool

/// The engine on the system clock, where event times are real time and the task dispatcher's
/// clock is monotonic: what crosses between the two (a task's age, a poller's last access) must
/// be converted. Every other engine test runs on one manual clock, where the two agree. Only
/// lower and ordering bounds are asserted (a loaded machine only makes waits longer).
@Suite struct SpoolEngineSystemClockTests {
    func openEngine(_ scratch: TemporaryDirectory) throws -> SpoolEngine {
        var configuration = SpoolEngineConfiguration()
        configuration.log = LogConfiguration(durability: .none)
        return try SpoolEngine.open(directory: scratch.path + "/data", configuration: configuration)
    }

    @Test("a queued workflow task's age in describe grows while it waits")
    func backlogAgeIsRealTime() async throws {
        let scratch = TemporaryDirectory("spool-system-clock")
        let engine = try openEngine(scratch)
        _ = try await engine.startWorkflowExecution(.init(workflowID: "waits", workflowType: "order", taskQueue: "q"))
        try await Task.sleep(for: .milliseconds(60))
        let info = try engine.describeTaskQueue(taskQueue: "q", kind: .workflow)
        let oldest = info.backlog.compactMap(\.oldestAge).max()
        // 60 ms slept, less the coarse clock's tick (≤ 4 ms) and a margin.
        #expect(oldest.map { $0 >= .milliseconds(50) } == true, "oldest age \(String(describing: oldest)) after sleeping 60 ms")
        #expect(oldest.map { $0 < .seconds(24 * 3600) } == true, "oldest age \(String(describing: oldest)) is not a clock's offset")
        try await engine.close()
    }

    @Test("a poller's last access time is the real time of its poll")
    func pollerLastAccessIsRealTime() async throws {
        let scratch = TemporaryDirectory("spool-system-clock")
        let engine = try openEngine(scratch)
        let before = EngineClock.system.now()
        _ = try await engine.pollActivityTaskQueue(taskQueue: "acts", identity: "worker-1", timeout: .milliseconds(1))
        let after = EngineClock.system.now()
        let poller = try #require(try engine.describeTaskQueue(taskQueue: "acts", kind: .activity).pollers.first)
        // Within the poll's span, with the coarse monotonic clock's tick (≤ 4 ms) of slack on each side.
        #expect(poller.lastAccessTime >= before.advanced(by: .milliseconds(-10)), "\(poller.lastAccessTime) before \(before)")
        #expect(poller.lastAccessTime <= after.advanced(by: .milliseconds(10)), "\(poller.lastAccessTime) after \(after)")
        try await engine.close()
    }
}
