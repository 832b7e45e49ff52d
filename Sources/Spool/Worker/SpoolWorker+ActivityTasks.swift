import Logging
import SpoolPrimitives

/// Activity tasks: the poll loop of the activity queue, running a function and responding.
extension SpoolWorker {
    func pollActivityTasks(_ queue: String) async {
        while !isStopping {
            await activitySlots.acquire()
            if isStopping {
                activitySlots.release()
                break
            }
            let polled: ActivityTask?
            do {
                polled = try await engine.pollActivityTaskQueue(namespace: namespace, taskQueue: queue, identity: identity,
                                                                timeout: .seconds(30), maxTasksPerSecond: maxTaskQueueActivitiesPerSecond,
                                                                workerMaxTasksPerSecond: maxActivitiesPerSecond)
            } catch {
                activitySlots.release()
                guard await shouldPollAgain(after: error) else { break }
                continue
            }
            guard let task = polled else {
                activitySlots.release()
                continue
            }
            runners.submit {
                await self.handle(task)
                self.activitySlots.release()
            }
        }
    }

    /// Runs an activity task and responds.
    ///
    /// Every call allocates this async function's frame (and a task's first calls a new slab of
    /// its allocator from `malloc`): running the function and responding are functions of their
    /// own, not inlined, so that each frame holds only what one of them keeps across its `await`s.
    func handle(_ task: ActivityTask) async {
        if task.activityType == Session.completionActivityType, sessions != nil {
            do { try await completeSession(task) } catch { notAnswered(task, error) }
            return
        }
        let outcome = await perform(task)
        // A killed worker runs no more of its tasks to the end: the activity times out instead.
        if case .completed = outcome, isKilled { return }
        await respond(outcome, to: task)
    }

    /// How an activity function ended.
    private enum ActivityOutcome {
        case completed(Payloads?)
        case failed(Failure)
        case canceled
    }

    /// Runs the function registered for the task's activity type; an unregistered type fails
    /// the attempt with `NotFoundError`.
    @inline(never)
    private func perform(_ task: ActivityTask) async -> ActivityOutcome {
        guard let function = registrations.withLock({ $0.activities[task.activityType] })?.function else {
            return .failed(.application("activity type '\(task.activityType)' is not registered with worker '\(identity)'",
                                        type: "NotFoundError", source: SpoolWorker.failureSource))
        }
        do {
            return .completed(try await function(ActivityContext(task: task, engine: engine, identity: identity)))
        } catch let failure as ActivityFailure {
            return .failed(failure.failure)
        } catch is CancellationError {
            return .canceled
        } catch {
            return .failed(.application("\(error)", type: String(describing: type(of: error)), source: SpoolWorker.failureSource))
        }
    }

    /// Reports `outcome` to the engine; a response it refuses (the attempt timed out meanwhile,
    /// the run closed) is logged.
    @inline(never)
    private func respond(_ outcome: ActivityOutcome, to task: ActivityTask) async {
        do {
            switch outcome {
            case .completed(let result):
                try await engine.respondActivityTaskCompleted(taskToken: task.taskToken, result: result, identity: identity)
            case .failed(let failure):
                try await engine.respondActivityTaskFailed(taskToken: task.taskToken, failure: failure, identity: identity)
            case .canceled:
                try await engine.respondActivityTaskCanceled(taskToken: task.taskToken, identity: identity)
            }
        } catch {
            notAnswered(task, error)
        }
    }

    @inline(never)
    private func notAnswered(_ task: ActivityTask, _ error: SpoolError) {
        logger.info("an activity task could not be answered", metadata: ["activity": "\(task.activityID)", "error": "\(error)"])
    }
}
