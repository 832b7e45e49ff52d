import SpoolLog

/// The payload of one log record: the changes of one state transition, for one run or (for
/// continue-as-new and terminate-and-start) two runs that must change together.
///
/// Layout:
///
/// ```
/// version u8 | run count varint | per run: namespace str, workflow id str, run id str,
///                                  change count varint, changes
/// change: tag u8 | fields (see encode)
/// ```
///
/// The version is the ``ValueLayout`` of the events, payloads and failures inside: 3 (extended)
/// is written; 2 (whole) and 1 (flat, before payload metadata) are still read. The state-change
/// tags of transient workflow-task attempts (9–11) and of speculative workflow tasks (12) exist
/// only from layout 3.
struct TransitionRecord: Sendable, Equatable {
    static let version: UInt8 = ValueLayout.current.rawValue

    struct RunChanges: Sendable, Equatable {
        var key: ExecutionKey
        var changes: [StateChange]
    }

    var runs: [RunChanges]

    func encoded() -> [UInt8] {
        Self.encoded(runCount: runs.count) { w, i in Self.encode(runs[i].key, runs[i].changes, into: &w) }
    }

    /// The record of `runCount` runs, each written by `writeRun` (with ``encode(_:_:into:)``): the
    /// engine writes its commits' runs this way, without building the record first.
    static func encoded(runCount: Int, _ writeRun: (inout BinaryWriter, Int) -> Void) -> [UInt8] {
        // A commit's record is usually a few hundred bytes: room for it from the start.
        var w = BinaryWriter(capacity: 1024)
        w.byte(version)
        w.count(runCount)
        for i in 0..<runCount { writeRun(&w, i) }
        return w.bytes
    }

    /// One run of a record: its key, then its changes.
    static func encode(_ key: ExecutionKey, _ changes: [StateChange], into w: inout BinaryWriter) {
        w.string(key.namespace)
        w.string(key.workflowID)
        w.string(key.runID)
        w.count(changes.count)
        for index in changes.indices { changes[index].encode(into: &w) }
    }

    static func decode(_ bytes: [UInt8], context: String) throws(SpoolError) -> TransitionRecord {
        var r = BinaryReader<SpoolError>(bytes, context: context)
        let version = try r.byte()
        guard let layout = ValueLayout(rawValue: version) else {
            throw r.corrupt("record version \(version) is not one this build reads (1 to \(Self.version)); a newer Spool wrote it")
        }
        var runs: [RunChanges] = []
        for _ in 0..<(try r.count()) {
            let key = ExecutionKey(namespace: try r.string(), workflowID: try r.string(), runID: try r.string())
            var changes: [StateChange] = []
            for _ in 0..<(try r.count()) { changes.append(try StateChange.decode(from: &r, layout: layout)) }
            runs.append(RunChanges(key: key, changes: changes))
        }
        guard r.isAtEnd else { throw r.corrupt("bytes left after the last change") }
        return TransitionRecord(runs: runs)
    }
}

extension StateChange {
    private enum Tag: UInt8 {
        case event = 1, bufferedEvent, flushedEvent, activityStarted, activityRetryScheduled, activityHeartbeat, stickyTaskQueue
        case workflowTaskBackoff
        case transientWorkflowTaskScheduled, transientWorkflowTaskStarted, transientWorkflowTaskEnded
        case speculativeWorkflowTaskScheduled
        case activityStartReturned
    }

    func encode(into w: inout BinaryWriter) {
        switch self {
        case .event(let event):
            w.byte(Tag.event.rawValue); event.encode(into: &w)
        case .bufferedEvent(let event):
            w.byte(Tag.bufferedEvent.rawValue); event.encode(into: &w)
        case .flushedEvent(let event):
            w.byte(Tag.flushedEvent.rawValue); event.encode(into: &w)
        case let .activityStarted(scheduledEventID, attempt, time, identity, requestID):
            w.byte(Tag.activityStarted.rawValue)
            w.signed(scheduledEventID); w.signed(Int64(attempt)); w.timestamp(time); w.string(identity); w.string(requestID)
        case let .activityRetryScheduled(scheduledEventID, attempt, time, failure):
            w.byte(Tag.activityRetryScheduled.rawValue)
            w.signed(scheduledEventID); w.signed(Int64(attempt)); w.timestamp(time); failure.encode(into: &w)
        case let .activityHeartbeat(scheduledEventID, details, time):
            w.byte(Tag.activityHeartbeat.rawValue)
            w.signed(scheduledEventID); w.payloads(details); w.timestamp(time)
        case let .stickyTaskQueue(name, timeout):
            w.byte(Tag.stickyTaskQueue.rawValue)
            w.optional(name) { $0.string($1) }; w.duration(timeout)
        case let .workflowTaskBackoff(scheduledEventID, time):
            w.byte(Tag.workflowTaskBackoff.rawValue)
            w.signed(scheduledEventID); w.timestamp(time)
        case let .transientWorkflowTaskScheduled(attempt, time):
            w.byte(Tag.transientWorkflowTaskScheduled.rawValue)
            w.signed(Int64(attempt)); w.timestamp(time)
        case let .transientWorkflowTaskStarted(scheduledEventID, time, identity, requestID):
            w.byte(Tag.transientWorkflowTaskStarted.rawValue)
            w.signed(scheduledEventID); w.timestamp(time); w.string(identity); w.string(requestID)
        case let .transientWorkflowTaskEnded(scheduledEventID, attempt):
            w.byte(Tag.transientWorkflowTaskEnded.rawValue)
            w.signed(scheduledEventID); w.signed(Int64(attempt))
        case let .speculativeWorkflowTaskScheduled(time):
            w.byte(Tag.speculativeWorkflowTaskScheduled.rawValue)
            w.timestamp(time)
        case let .activityStartReturned(scheduledEventID, attempt):
            w.byte(Tag.activityStartReturned.rawValue)
            w.signed(scheduledEventID); w.signed(Int64(attempt))
        }
    }

    static func decode(from r: inout BinaryReader<SpoolError>, layout: ValueLayout) throws(SpoolError) -> StateChange {
        let raw = try r.byte()
        guard let tag = Tag(rawValue: raw), tag.rawValue < Tag.transientWorkflowTaskScheduled.rawValue || layout.isExtended else {
            throw r.corrupt("\(raw) is not a state change tag of layout \(layout.rawValue)")
        }
        switch tag {
        case .event: return .event(try HistoryEvent.decode(from: &r, layout: layout))
        case .bufferedEvent: return .bufferedEvent(try HistoryEvent.decode(from: &r, layout: layout))
        case .flushedEvent: return .flushedEvent(try HistoryEvent.decode(from: &r, layout: layout))
        case .activityStarted:
            return .activityStarted(scheduledEventID: try r.signed(), attempt: try r.int32(), time: try r.timestamp(),
                                    identity: try r.string(), requestID: try r.string())
        case .activityRetryScheduled:
            return .activityRetryScheduled(scheduledEventID: try r.signed(), attempt: try r.int32(), time: try r.timestamp(),
                                           failure: try r.failure(layout))
        case .activityHeartbeat:
            return .activityHeartbeat(scheduledEventID: try r.signed(), details: try r.optionalPayloads(layout), time: try r.timestamp())
        case .stickyTaskQueue:
            return .stickyTaskQueue(name: try r.optional { r throws(SpoolError) in try r.string() },
                                    scheduleToStartTimeout: try r.optionalDuration())
        case .workflowTaskBackoff:
            return .workflowTaskBackoff(scheduledEventID: try r.signed(), time: try r.timestamp())
        case .transientWorkflowTaskScheduled:
            return .transientWorkflowTaskScheduled(attempt: try r.int32(), time: try r.timestamp())
        case .transientWorkflowTaskStarted:
            return .transientWorkflowTaskStarted(scheduledEventID: try r.signed(), time: try r.timestamp(), identity: try r.string(),
                                                 requestID: try r.string())
        case .transientWorkflowTaskEnded:
            return .transientWorkflowTaskEnded(scheduledEventID: try r.signed(), attempt: try r.int32())
        case .speculativeWorkflowTaskScheduled:
            return .speculativeWorkflowTaskScheduled(time: try r.timestamp())
        case .activityStartReturned:
            return .activityStartReturned(scheduledEventID: try r.signed(), attempt: try r.int32())
        }
    }
}
