import Testing
@testable import Spool

/// ScheduleActivityTask's timeouts validated and filled in as Temporal's
/// `validateActivityScheduleAttributes` does; ActivityTaskScheduled records the filled values.
@Suite struct SpoolEngineActivityTimeoutTests {
    enum Outcome {
        case success(ActivityTaskScheduledEventAttributes)
        case failure(WorkflowTaskFailedEventAttributes)

        func get() throws -> ActivityTaskScheduledEventAttributes {
            guard case .success(let attributes) = self else { throw SpoolError(.notFound, "the command was rejected") }
            return attributes
        }
    }

    /// Schedules `command` in the first workflow task of a run with `runTimeout`; returns the
    /// recorded attributes, or the rejection.
    func schedule(_ command: Command, runTimeout: Duration?) async throws
        -> (EngineHarness, WorkflowExecution, Outcome) {
        let h = try EngineHarness()
        let run = try await h.start(runTimeout: runTimeout)
        _ = try await h.completeWorkflowTask([command])
        let history = try await h.history(run)
        switch history[3].attributes {
        case .workflowTaskCompleted:
            guard case .activityTaskScheduled(let scheduled) = history[4].attributes else { throw SpoolError(.notFound, "no activity") }
            return (h, run, .success(scheduled))
        case .workflowTaskFailed(let failed):
            return (h, run, .failure(failed))
        default:
            throw SpoolError(.notFound, "neither completed nor failed")
        }
    }

    func scheduled(_ command: Command, runTimeout: Duration?) async throws -> ActivityTaskScheduledEventAttributes {
        let (_, _, result) = try await schedule(command, runTimeout: runTimeout)
        return try result.get()
    }

    @Test func startToCloseAloneTakesTheRunTimeoutForTheOthers() async throws {
        let a = try await scheduled(scheduleActivity(startToClose: .seconds(30)), runTimeout: .seconds(600))
        #expect(a.scheduleToCloseTimeout == .seconds(600))
        #expect(a.scheduleToStartTimeout == .seconds(600))
        #expect(a.startToCloseTimeout == .seconds(30))
        #expect(a.heartbeatTimeout == nil)
        // A run without a run timeout: no limit.
        let unlimited = try await scheduled(scheduleActivity(startToClose: .seconds(30)), runTimeout: nil)
        #expect(unlimited.scheduleToCloseTimeout == nil && unlimited.scheduleToStartTimeout == nil)
        #expect(unlimited.startToCloseTimeout == .seconds(30))
    }

    @Test func scheduleToCloseIsTheDefaultAndTheCapOfTheOthers() async throws {
        let alone = try await scheduled(scheduleActivity(startToClose: nil, scheduleToClose: .seconds(50)), runTimeout: nil)
        #expect(alone.scheduleToCloseTimeout == .seconds(50))
        #expect(alone.scheduleToStartTimeout == .seconds(50))
        #expect(alone.startToCloseTimeout == .seconds(50))
        let capped = try await scheduled(scheduleActivity(startToClose: .seconds(40), scheduleToClose: .seconds(20),
                                                          scheduleToStart: .seconds(30), heartbeat: .seconds(50)), runTimeout: nil)
        #expect(capped.scheduleToCloseTimeout == .seconds(20))
        #expect(capped.scheduleToStartTimeout == .seconds(20))
        #expect(capped.startToCloseTimeout == .seconds(20))
        #expect(capped.heartbeatTimeout == .seconds(20))
    }

    @Test func everyTimeoutIsCappedByTheRunTimeout() async throws {
        let a = try await scheduled(scheduleActivity(startToClose: .seconds(500), scheduleToClose: .seconds(1000),
                                                     scheduleToStart: .seconds(900), heartbeat: .seconds(700)), runTimeout: .seconds(60))
        #expect(a.scheduleToCloseTimeout == .seconds(60))
        #expect(a.scheduleToStartTimeout == .seconds(60))
        #expect(a.startToCloseTimeout == .seconds(60))
        #expect(a.heartbeatTimeout == .seconds(60))
    }

    @Test func zeroMeansUnset() async throws {
        let a = try await scheduled(scheduleActivity(startToClose: .zero, scheduleToClose: .seconds(10), scheduleToStart: .zero,
                                                     heartbeat: .zero), runTimeout: nil)
        #expect(a.startToCloseTimeout == .seconds(10))
        #expect(a.scheduleToStartTimeout == .seconds(10))
        #expect(a.heartbeatTimeout == nil)
        let b = try await scheduled(scheduleActivity(startToClose: .seconds(5), scheduleToClose: .zero), runTimeout: .seconds(90))
        #expect(b.scheduleToCloseTimeout == .seconds(90) && b.startToCloseTimeout == .seconds(5))
    }

    @Test func neitherScheduleToCloseNorStartToCloseIsRejected() async throws {
        for (startToClose, scheduleToClose) in [(nil, nil), (Duration.zero, Duration.zero)] as [(Duration?, Duration?)] {
            let (h, run, result) = try await schedule(scheduleActivity(startToClose: startToClose, scheduleToClose: scheduleToClose,
                                                                       scheduleToStart: .seconds(5)), runTimeout: .seconds(60))
            guard case .failure(let failed) = result else { Issue.record("accepted"); continue }
            #expect(failed.cause == .badScheduleActivityAttributes)
            #expect(failed.failure?.message.contains("A valid StartToClose or ScheduleToCloseTimeout is not set on command.") == true)
            #expect(try h.describe(run).pendingActivities.isEmpty)
        }
    }

    @Test func aNegativeTimeoutIsRejected() async throws {
        let (_, _, result) = try await schedule(scheduleActivity(startToClose: .seconds(5), heartbeat: .seconds(-1)), runTimeout: nil)
        guard case .failure(let failed) = result else { Issue.record("accepted"); return }
        #expect(failed.cause == .badScheduleActivityAttributes)
        #expect(failed.failure?.message.contains("Invalid HeartbeatTimeout: negative duration") == true)
    }

    @Test func theFilledTimeoutsReachTheWorkerAndSurviveAReopen() async throws {
        let (h, run, result) = try await schedule(scheduleActivity(startToClose: .seconds(30)), runTimeout: .seconds(600))
        _ = try result.get()
        let task = try #require(try await h.pollActivityTask())
        #expect(task.scheduleToCloseTimeout == .seconds(600) && task.startToCloseTimeout == .seconds(30))
        let history = try await h.history(run)
        try await h.closeAndReopen()
        #expect(try await h.history(run) == history)
        // Unstarted for its schedule-to-start (the run timeout): never times out before the run does.
        #expect(try h.describe(run).pendingActivities.first?.expirationTime == history[4].eventTime.advanced(by: .seconds(600)))
    }
}
