import SpoolLog

/// The replay behind ``SpoolEngine/verifyHistory(directory:)``: the rules of `recover()`, with
/// every violation recorded instead of thrown.
struct HistoryVerifier {
    struct Location {
        var file: String
        var position: Int
        var offset: UInt64
    }

    struct Run {
        var state: ExecutionState
        /// Event types by event id - 1.
        var events: [EventType] = []
        /// Per ActivityTaskStarted event id, its scheduled event id; per TimerStarted, its timer id.
        var startedActivity: [Int64: Int64] = [:]
        var startedTimer: [Int64: String] = [:]
        var recordOffsets: [UInt64] = []
        /// Where each record offset is (for findings about the checkpoint).
        var lastLocation: Location
        /// A finding made later checks of this run meaningless: it is not checked further.
        var broken = false
        /// The state after each record, kept only for the record the checkpoint names last.
        var stateAtCheckpoint: ExecutionState?
        var offsetsAtCheckpoint: [UInt64]?
    }

    let checkpointPath: String
    var result: HistoryVerification
    var runs: [ExecutionKey: Run] = [:]
    /// The checkpoint's last record offset per run (to snapshot the state there).
    var checkpointLast: [ExecutionKey: UInt64] = [:]
    var startOffset: UInt64 = 0
    var endOffset: UInt64 = 0
    /// The checkpoint file: absent, decoded, or why it cannot be.
    var checkpoint: Result<EngineCheckpoint, SpoolError>?

    /// Decodes the checkpoint, with the runs of the closed-run table it names (loaded, and
    /// checked, by `loadTable`), before the log is read, so that each run's state can be taken at
    /// the record the checkpoint names last. A table that is missing or damaged makes the
    /// checkpoint unreadable, as it does for an open.
    mutating func prepare(checkpointBytes: [UInt8]?,
                          loadTable: (EngineCheckpoint.TableReference) throws(SpoolError) -> ClosedRunTable) {
        guard let checkpointBytes else { return }
        do throws(SpoolError) {
            var decoded = try EngineCheckpoint.decode(checkpointBytes)
            if let reference = decoded.closedTable {
                let table = try loadTable(reference)
                for index in 0..<table.count { decoded.runs.append(try table.run(at: index)) }
            }
            checkpoint = .success(decoded)
            for run in decoded.runs { if let last = run.recordOffsets.last { checkpointLast[run.state.key] = last } }
        } catch {
            checkpoint = .failure(error)
        }
    }

    init(directory: String, checkpointPath: String) {
        self.checkpointPath = checkpointPath
        result = HistoryVerification(directory: directory)
    }

    mutating func finding(_ kind: HistoryFinding.Kind, _ at: Location?, _ key: ExecutionKey?, eventID: Int64? = nil, _ message: String) {
        result.findings.append(HistoryFinding(kind: kind, file: at?.file ?? checkpointPath, position: at?.position, offset: at?.offset,
                                              namespace: key?.namespace, execution: key?.execution, eventID: eventID, message: message))
    }

    mutating func visit(_ entry: LogRecord, file: String, position: Int) {
        result.records += 1
        let at = Location(file: file, position: position, offset: entry.offset)
        let record: TransitionRecord
        do {
            record = try TransitionRecord.decode(entry.payload, context: "history log record at offset \(entry.offset)")
        } catch {
            finding(.undecodableRecord, at, nil, error.message)
            return
        }
        for change in record.runs { visit(change, at: at) }
    }

    private mutating func visit(_ change: TransitionRecord.RunChanges, at: Location) {
        let key = change.key
        var run: Run
        if let existing = runs[key] {
            run = existing
        } else {
            guard case .event(let first) = change.changes.first, case .workflowExecutionStarted(let started) = first.attributes,
                  first.eventID == 1 else {
                // The end of a run whose earlier records a compaction dropped (replay skips it too).
                if change.closesItsRun { return }
                finding(.runNotStarted, at, key, "the run's first record does not start it with WorkflowExecutionStarted as event 1")
                // Check the rest of it as far as it goes, from a state it cannot fit, without cascading findings.
                return
            }
            run = Run(state: ExecutionState(key: key, started: started, startTime: first.eventTime), lastLocation: at)
        }
        run.recordOffsets.append(at.offset)
        run.lastLocation = at
        if !run.broken {
            for stateChange in change.changes {
                if !run.state.isRunning {
                    finding(.eventAfterClose, at, key, eventID: stateChange.writtenEvent?.eventID,
                            "a change follows the run's close (\(run.state.status)) at event \(run.state.nextEventID - 1)")
                    run.broken = true
                    break
                }
                if let event = stateChange.writtenEvent {
                    guard event.eventID == run.state.nextEventID else {
                        finding(.eventIDGap, at, key, eventID: event.eventID,
                                "event \(event.eventID) \(event.eventType) follows event \(run.state.nextEventID - 1); expected id \(run.state.nextEventID)")
                        run.broken = true
                        break
                    }
                    if let problem = Self.badReference(event, in: run) {
                        finding(.badEventReference, at, key, eventID: event.eventID, problem)
                        run.broken = true
                        break
                    }
                }
                do {
                    try run.state.apply(stateChange)
                } catch {
                    finding(.rejectedChange, at, key, eventID: error.eventID ?? stateChange.writtenEvent?.eventID, error.message)
                    run.broken = true
                    break
                }
                if let event = stateChange.writtenEvent {
                    run.events.append(event.eventType)
                    switch event.attributes {
                    case .activityTaskStarted(let a): run.startedActivity[event.eventID] = a.scheduledEventID
                    case .timerStarted(let a): run.startedTimer[event.eventID] = a.timerID
                    default: break
                    }
                }
            }
        }
        if checkpointLast[key] == at.offset {
            run.stateAtCheckpoint = run.state
            run.offsetsAtCheckpoint = run.recordOffsets
        }
        runs[key] = run
    }

    /// Why `event` names an event that is not an earlier one of the right type, or nil.
    static func badReference(_ event: HistoryEvent, in run: Run) -> String? {
        var references: [(String, Int64, EventType)] = []
        func completed(_ id: Int64) { if id != 0 { references.append(("workflowTaskCompletedEventID", id, .workflowTaskCompleted)) } }
        func workflowTask(_ scheduled: Int64, _ started: Int64) {
            references.append(("scheduledEventID", scheduled, .workflowTaskScheduled))
            if started != 0 { references.append(("startedEventID", started, .workflowTaskStarted)) }
        }
        func activity(_ scheduled: Int64, _ started: Int64) {
            references.append(("scheduledEventID", scheduled, .activityTaskScheduled))
            if started != 0 { references.append(("startedEventID", started, .activityTaskStarted)) }
        }
        switch event.attributes {
        case .workflowTaskStarted(let a): references.append(("scheduledEventID", a.scheduledEventID, .workflowTaskScheduled))
        case .workflowTaskCompleted(let a): workflowTask(a.scheduledEventID, a.startedEventID)
        case .workflowTaskTimedOut(let a): workflowTask(a.scheduledEventID, a.startedEventID)
        case .workflowTaskFailed(let a): workflowTask(a.scheduledEventID, a.startedEventID)
        case .activityTaskScheduled(let a): completed(a.workflowTaskCompletedEventID)
        case .activityTaskStarted(let a): references.append(("scheduledEventID", a.scheduledEventID, .activityTaskScheduled))
        case .activityTaskCompleted(let a): activity(a.scheduledEventID, a.startedEventID)
        case .activityTaskFailed(let a): activity(a.scheduledEventID, a.startedEventID)
        case .activityTaskTimedOut(let a): activity(a.scheduledEventID, a.startedEventID)
        case .activityTaskCancelRequested(let a):
            references.append(("scheduledEventID", a.scheduledEventID, .activityTaskScheduled))
            completed(a.workflowTaskCompletedEventID)
        case .activityTaskCanceled(let a):
            activity(a.scheduledEventID, a.startedEventID)
            if a.latestCancelRequestedEventID != 0 {
                references.append(("latestCancelRequestedEventID", a.latestCancelRequestedEventID, .activityTaskCancelRequested))
            }
        case .timerStarted(let a): completed(a.workflowTaskCompletedEventID)
        case .timerFired(let a): references.append(("startedEventID", a.startedEventID, .timerStarted))
        case .timerCanceled(let a):
            references.append(("startedEventID", a.startedEventID, .timerStarted))
            completed(a.workflowTaskCompletedEventID)
        case .workflowExecutionCompleted(let a): completed(a.workflowTaskCompletedEventID)
        case .workflowExecutionFailed(let a): completed(a.workflowTaskCompletedEventID)
        case .workflowExecutionCanceled(let a): completed(a.workflowTaskCompletedEventID)
        case .workflowExecutionContinuedAsNew(let a): completed(a.workflowTaskCompletedEventID)
        case .markerRecorded(let a): completed(a.workflowTaskCompletedEventID)
        case .upsertWorkflowSearchAttributes(let a): completed(a.workflowTaskCompletedEventID)
        case .workflowPropertiesModified(let a): completed(a.workflowTaskCompletedEventID)
        case .workflowExecutionUpdateCompleted(let a):
            references.append(("acceptedEventID", a.acceptedEventID, .workflowExecutionUpdateAccepted))
        default: break
        }
        for (field, id, type) in references {
            guard id >= 1, id < event.eventID, Int(id) <= run.events.count else {
                return "\(event.eventType) \(field) \(id) names no earlier event (the history has \(run.events.count))"
            }
            let actual = run.events[Int(id) - 1]
            guard actual == type else { return "\(event.eventType) \(field) \(id) names a \(actual) event, not \(type)" }
        }
        // An activity's outcome must name the started event of that same activity.
        let outcome: (scheduled: Int64, started: Int64)? = switch event.attributes {
        case .activityTaskCompleted(let a): (a.scheduledEventID, a.startedEventID)
        case .activityTaskFailed(let a): (a.scheduledEventID, a.startedEventID)
        case .activityTaskTimedOut(let a): (a.scheduledEventID, a.startedEventID)
        case .activityTaskCanceled(let a): (a.scheduledEventID, a.startedEventID)
        default: nil
        }
        if let outcome, outcome.started != 0, run.startedActivity[outcome.started] != outcome.scheduled {
            return "\(event.eventType) startedEventID \(outcome.started) is the start of another activity, not of scheduled event \(outcome.scheduled)"
        }
        return nil
    }

    /// Checks the open runs' outstanding work and the checkpoint, once every record was visited.
    mutating func finish() {
        for (key, run) in runs.sorted(by: { $0.value.recordOffsets[0] < $1.value.recordOffsets[0] }) {
            result.runs += 1
            guard run.state.isRunning else { continue }
            result.openRuns += 1
            guard !run.broken else { continue }
            func has(_ id: Int64, _ type: EventType) -> Bool { id >= 1 && Int(id) <= run.events.count && run.events[Int(id) - 1] == type }
            if let task = run.state.workflowTask {
                if task.isTransient {
                    // Its events are not written: it reserves the run's next ids.
                    if task.scheduledEventID != run.state.nextEventID {
                        finding(.taskWithoutEvent, run.lastLocation, key, eventID: task.scheduledEventID,
                                "the transient workflow task names scheduled event \(task.scheduledEventID), not the run's next event \(run.state.nextEventID)")
                    }
                } else if !has(task.scheduledEventID, .workflowTaskScheduled) {
                    finding(.taskWithoutEvent, run.lastLocation, key, eventID: task.scheduledEventID,
                            "the outstanding workflow task names scheduled event \(task.scheduledEventID), which is not a WorkflowTaskScheduled event")
                } else if task.startedEventID != 0 && !has(task.startedEventID, .workflowTaskStarted) {
                    finding(.taskWithoutEvent, run.lastLocation, key, eventID: task.startedEventID,
                            "the started workflow task names started event \(task.startedEventID), which is not a WorkflowTaskStarted event")
                }
            }
            for scheduled in run.state.activities.keys.sorted() where !has(scheduled, .activityTaskScheduled) {
                finding(.taskWithoutEvent, run.lastLocation, key, eventID: scheduled,
                        "the pending activity of scheduled event \(scheduled) has no ActivityTaskScheduled event")
            }
            for timer in run.state.timers.values.sorted(by: { $0.startedEventID < $1.startedEventID })
            where !has(timer.startedEventID, .timerStarted) || run.startedTimer[timer.startedEventID] != timer.timerID {
                finding(.taskWithoutEvent, run.lastLocation, key, eventID: timer.startedEventID,
                        "the pending timer \(timer.timerID) has no TimerStarted event \(timer.startedEventID)")
            }
        }
        guard let decoded = self.checkpoint else { return }
        result.hasCheckpoint = true
        let checkpoint: EngineCheckpoint
        switch decoded {
        case .success(let value): checkpoint = value
        case .failure(let error):
            finding(.checkpointUnreadable, nil, nil, "\(error.message); the next open ignores it and replays the whole log")
            return
        }
        result.checkpointRuns = checkpoint.runs.count
        guard checkpoint.replayFrom >= startOffset, checkpoint.replayFrom <= endOffset,
              checkpoint.runs.allSatisfy({ ($0.recordOffsets.last ?? 0) < endOffset }) else {
            finding(.checkpointUnreadable, nil, nil, "it names log offsets the log does not hold (log \(startOffset)..<\(endOffset), "
                    + "replay from \(checkpoint.replayFrom)); the next open ignores it and replays the whole log")
            return
        }
        // As open judges it (SpoolEngine+Recovery.swift, checkCheckpointBelongsToLog): the records the
        // checkpoint names for its newest and its oldest run must be records of those runs, or the
        // checkpoint is another log's, which open ignores.
        let withRecords = checkpoint.runs.filter { !$0.recordOffsets.isEmpty }
        let samples = [withRecords.max { $0.recordOffsets.last! < $1.recordOffsets.last! }.map { ($0.state.key, $0.recordOffsets.last!) },
                       withRecords.min { $0.recordOffsets.first! < $1.recordOffsets.first! }.map { ($0.state.key, $0.recordOffsets.first!) }]
        for case let (key, offset)? in samples where runs[key]?.recordOffsets.contains(offset) != true {
            finding(.checkpointUnreadable, nil, nil, "it says the record at log offset \(offset) changes run \(key.workflowID)/\(key.runID), "
                    + "but the log's record there does not: the checkpoint is not this log's; the next open ignores it and replays the whole log")
            return
        }
        var named: Set<ExecutionKey> = []
        for entry in checkpoint.runs {
            let key = entry.state.key
            named.insert(key)
            let last = entry.recordOffsets.last
            guard let run = runs[key] else {
                finding(.checkpointOffsetsMismatch, nil, key, "the checkpoint names records \(Self.describe(entry.recordOffsets)) of a run the log does not hold")
                continue
            }
            var at = run.lastLocation
            at.file = checkpointPath
            guard let state = run.stateAtCheckpoint, let offsets = run.offsetsAtCheckpoint else {
                result.findings.append(HistoryFinding(kind: .checkpointOffsetsMismatch, file: checkpointPath, position: nil, offset: last,
                                                      namespace: key.namespace, execution: key.execution, eventID: nil,
                                                      message: "the checkpoint's last record of the run, offset \(last.map(String.init) ?? "none"), is not one of its records in the log \(Self.describe(run.recordOffsets))"))
                continue
            }
            if offsets != entry.recordOffsets {
                result.findings.append(HistoryFinding(kind: .checkpointOffsetsMismatch, file: checkpointPath, position: nil, offset: last,
                                                      namespace: key.namespace, execution: key.execution, eventID: nil,
                                                      message: "the checkpoint names records \(Self.describe(entry.recordOffsets)); the log holds \(Self.describe(offsets)) up to there"))
            } else if !run.broken && state != entry.state {
                result.findings.append(HistoryFinding(kind: .checkpointStateMismatch, file: checkpointPath, position: nil, offset: last,
                                                      namespace: key.namespace, execution: key.execution, eventID: nil,
                                                      message: "the checkpoint's state differs from the state its history rebuilds in "
                                                        + Self.differences(entry.state, state)))
            }
        }
        for (key, run) in runs.sorted(by: { $0.value.recordOffsets[0] < $1.value.recordOffsets[0] })
        where !named.contains(key) && run.recordOffsets[0] < checkpoint.replayFrom && isOpen(at: checkpoint.replayFrom, run) {
            result.findings.append(HistoryFinding(kind: .checkpointMissingRun, file: checkpointPath, position: nil, offset: run.recordOffsets[0],
                                                  namespace: key.namespace, execution: key.execution, eventID: nil,
                                                  message: "the run is open and its records start at offset \(run.recordOffsets[0]), before the checkpoint's replay-from \(checkpoint.replayFrom), but the checkpoint does not name it"))
        }
    }

    /// Whether the run was open after its last record before `offset` (its records from there on
    /// do not close it: an open run now, or one closed by a record at or after `offset`).
    private func isOpen(at offset: UInt64, _ run: Run) -> Bool {
        run.state.isRunning || (run.recordOffsets.last ?? 0) >= offset
    }

    static func describe(_ offsets: [UInt64]) -> String {
        offsets.count <= 6 ? "\(offsets)" : "[\(offsets.prefix(3).map(String.init).joined(separator: ", ")), … \(offsets.suffix(2).map(String.init).joined(separator: ", "))] (\(offsets.count))"
    }

    /// The fields in which two states differ, with both values (shortened).
    static func differences(_ checkpoint: ExecutionState, _ rebuilt: ExecutionState) -> String {
        let a = Mirror(reflecting: checkpoint).children
        let b = Array(Mirror(reflecting: rebuilt).children)
        var parts: [String] = []
        for (i, child) in a.enumerated() where i < b.count {
            let left = String(describing: child.value), right = String(describing: b[i].value)
            if left != right {
                func short(_ s: String) -> String { s.count > 80 ? String(s.prefix(77)) + "..." : s }
                parts.append("\(child.label ?? "?"): checkpoint \(short(left)), history \(short(right))")
            }
        }
        return parts.isEmpty ? "(no field printed differently)" : parts.joined(separator: "; ")
    }
}
