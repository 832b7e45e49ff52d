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
            Task {
                await self.handle(task)
                self.activitySlots.release()
            }
        }
    }

    func handle(_ task: ActivityTask) async {
        let token = task.taskToken
        do {
            if task.activityType == Session.completionActivityType, sessions != nil {
                try await completeSession(task)
                return
            }
            guard let function = registrations.withLock({ $0.activities[task.activityType] }) else {
                try await engine.respondActivityTaskFailed(
                    taskToken: token,
                    failure: .application("activity type '\(task.activityType)' is not registered with worker '\(identity)'",
                                      type: "NotFoundError", source: SpoolWorker.failureSource),
                    identity: identity)
                return
            }
            let context = ActivityContext(task: task, engine: engine, identity: identity)
            do {
                let result = try await function(context)
                if isKilled { return }
                try await engine.respondActivityTaskCompleted(taskToken: token, result: result, identity: identity)
            } catch let failure as ActivityFailure {
                try await engine.respondActivityTaskFailed(taskToken: token, failure: failure.failure, identity: identity)
            } catch is CancellationError {
                try await engine.respondActivityTaskCanceled(taskToken: token, identity: identity)
            } catch {
                try await engine.respondActivityTaskFailed(
                    taskToken: token, failure: .application("\(error)", type: String(describing: type(of: error)), source: SpoolWorker.failureSource), identity: identity)
            }
        } catch {
            logger.info("an activity task could not be answered", metadata: ["activity": "\(task.activityID)", "error": "\(error)"])
        }
    }
}
