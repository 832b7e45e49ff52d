import SpoolLog
@testable import Spool

// Writers of the flat value layout (records version 1, checkpoints 1–2, tables 1), as Spool
// wrote it before payload metadata, from the layout in Docs/file-format.md: for tests that
// need old files. Only what those tests' runs hold: single `binary/plain` payloads (written as
// their bytes), no buffered events, pending activities without a last failure.
extension ExecutionState {
    func encodeFlat(into w: inout BinaryWriter) {
        w.string(key.namespace); w.string(key.workflowID); w.string(key.runID)
        w.string(workflowType); w.string(taskQueue); w.flatPayload(input); w.duration(workflowRunTimeout)
        w.duration(workflowTaskTimeout); w.string(firstExecutionRunID); w.string(requestID); w.timestamp(startTime)
        w.byte(status.rawValue); w.optional(closeTime) { $0.timestamp($1) }; w.signed(nextEventID)
        precondition(buffered.isEmpty, "the flat writer has no buffered events")
        w.count(0)
        w.optional(workflowTask) { w, task in
            w.signed(task.scheduledEventID); w.signed(Int64(task.attempt)); w.string(task.taskQueue)
            w.duration(task.startToCloseTimeout); w.timestamp(task.scheduledTime); w.signed(task.startedEventID)
            w.optional(task.startedTime) { $0.timestamp($1) }; w.string(task.identity); w.bool(task.isSticky)
            w.optional(task.dispatchTime) { $0.timestamp($1) }
        }
        w.signed(previousStartedEventID)
        w.count(activities.count)
        for activity in activities.values.sorted(by: { $0.scheduledEventID < $1.scheduledEventID }) {
            let a = activity.attributes
            precondition(activity.lastFailure == nil && a.header.isEmpty, "the flat writer has no failures or headers")
            // The ActivityTaskScheduled event, flat: id, time, type, its fields (no user metadata, no header).
            w.signed(activity.scheduledEventID); w.timestamp(activity.scheduledTime); w.byte(EventType.activityTaskScheduled.rawValue)
            w.string(a.activityID); w.string(a.activityType); w.string(a.taskQueue); w.flatPayload(a.input)
            w.duration(a.scheduleToCloseTimeout); w.duration(a.scheduleToStartTimeout); w.duration(a.startToCloseTimeout)
            w.duration(a.heartbeatTimeout); w.signed(a.workflowTaskCompletedEventID); a.retryPolicy.encode(into: &w)
            w.signed(Int64(activity.attempt)); w.timestamp(activity.attemptScheduledTime)
            w.optional(activity.startedTime) { $0.timestamp($1) }; w.string(activity.startedIdentity)
            w.string(activity.startedRequestID); w.flatPayload(activity.heartbeatDetails)
            w.optional(activity.lastHeartbeatTime) { $0.timestamp($1) }; w.signed(activity.cancelRequestedEventID)
            w.bool(false); w.string(activity.lastWorkerIdentity)
        }
        w.count(timers.count)
        for timer in timers.values.sorted(by: { $0.startedEventID < $1.startedEventID }) {
            w.string(timer.timerID); w.signed(timer.startedEventID); w.timestamp(timer.fireTime)
        }
        w.bool(cancelRequested)
        w.optional(newExecutionRunID) { $0.string($1) }
        w.optional(stickyTaskQueue) { $0.string($1) }
        w.duration(stickyScheduleToStartTimeout)
    }
}

extension BinaryWriter {
    /// A flat payloads field: presence byte, then the one `binary/plain` payload's bytes.
    mutating func flatPayload(_ value: Payloads?) {
        optional(value) { w, payloads in
            precondition(payloads.count == 1 && payloads[0].encoding == "binary/plain", "the flat writer has one binary payload")
            w.payload(payloads[0].data)
        }
    }
}

extension EngineCheckpoint.Run {
    func encodeFlat(into w: inout BinaryWriter) {
        state.encodeFlat(into: &w)
        w.count(recordOffsets.count)
        var previous: UInt64 = 0
        for offset in recordOffsets {
            w.unsigned(offset &- previous)
            previous = offset
        }
    }
}
