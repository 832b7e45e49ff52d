import SpoolLog

// The binary layout of history events in log records: event id, time, type byte, (whole layout)
// user metadata, then the type's fields in declaration order, the fields the whole layout added
// last (see BinaryWriter for the primitives). Encoders write ValueLayout.current; decoders read
// the layout their record, checkpoint or table names.

extension HistoryEvent {
    func encode(into w: inout BinaryWriter) {
        w.signed(eventID)
        w.timestamp(eventTime)
        w.byte(eventType.rawValue)
        w.userMetadata(userMetadata)
        switch attributes {
        case .workflowExecutionStarted(let a):
            w.string(a.workflowType); w.string(a.taskQueue); w.payloads(a.input); w.duration(a.workflowRunTimeout)
            w.duration(a.workflowTaskTimeout); w.string(a.continuedExecutionRunID); w.string(a.firstExecutionRunID)
            w.string(a.identity); w.string(a.requestID); w.signed(Int64(a.attempt))
            w.header(a.header)
            w.duration(a.workflowExecutionTimeout); w.failure(a.continuedFailure); w.payloads(a.lastCompletionResult)
            w.byte(a.initiator.rawValue); w.string(a.originalExecutionRunID); w.duration(a.firstWorkflowTaskBackoff)
            w.optional(a.workflowExecutionExpirationTime) { $0.timestamp($1) }
            w.optional(a.retryPolicy) { $1.encode(into: &$0) }
            w.string(a.cronSchedule); w.payloadMap(a.memo); w.payloadMap(a.searchAttributes)
            w.priority(a.priority)
            w.parentExecution(a.parent)
        case .workflowExecutionCompleted(let a):
            w.payloads(a.result); w.signed(a.workflowTaskCompletedEventID)
            w.string(a.newExecutionRunID)
        case .workflowExecutionFailed(let a):
            a.failure.encode(into: &w); w.byte(a.retryState.rawValue); w.signed(a.workflowTaskCompletedEventID)
            w.string(a.newExecutionRunID)
        case .workflowExecutionTimedOut(let a):
            w.byte(a.retryState.rawValue)
            w.string(a.newExecutionRunID)
        case .workflowTaskScheduled(let a):
            w.string(a.taskQueue); w.duration(a.startToCloseTimeout); w.signed(Int64(a.attempt))
        case .workflowTaskStarted(let a):
            w.signed(a.scheduledEventID); w.string(a.identity); w.string(a.requestID)
        case .workflowTaskCompleted(let a):
            w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.string(a.identity)
            w.string(a.binaryChecksum); w.workerVersion(a.workerVersion)
            w.optional(a.sdkMetadata) { w, m in
                w.count(m.coreUsedFlags.count)
                for flag in m.coreUsedFlags { w.unsigned(UInt64(flag)) }
                w.count(m.langUsedFlags.count)
                for flag in m.langUsedFlags { w.unsigned(UInt64(flag)) }
                w.string(m.sdkName); w.string(m.sdkVersion)
            }
            w.optional(a.meteringMetadata) { $0.unsigned(UInt64($1.nonfirstLocalActivityExecutionAttempts)) }
            w.byte(a.versioningBehavior.rawValue); w.string(a.workerDeploymentName); w.string(a.workerDeploymentVersion)
        case .workflowTaskTimedOut(let a):
            w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.byte(a.timeoutType.rawValue)
        case .workflowTaskFailed(let a):
            w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.byte(a.cause.rawValue); w.failure(a.failure)
            w.string(a.identity)
            w.string(a.binaryChecksum); w.workerVersion(a.workerVersion)
        case .activityTaskScheduled(let a):
            w.string(a.activityID); w.string(a.activityType); w.string(a.taskQueue); w.payloads(a.input)
            w.duration(a.scheduleToCloseTimeout); w.duration(a.scheduleToStartTimeout); w.duration(a.startToCloseTimeout)
            w.duration(a.heartbeatTimeout); w.signed(a.workflowTaskCompletedEventID); a.retryPolicy.encode(into: &w)
            w.header(a.header)
            w.priority(a.priority)
        case .activityTaskStarted(let a):
            w.signed(a.scheduledEventID); w.string(a.identity); w.string(a.requestID); w.signed(Int64(a.attempt))
            w.failure(a.lastFailure)
        case .activityTaskCompleted(let a):
            w.payloads(a.result); w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.string(a.identity)
            w.workerVersion(a.workerVersion)
        case .activityTaskFailed(let a):
            a.failure.encode(into: &w); w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.string(a.identity)
            w.byte(a.retryState.rawValue)
            w.workerVersion(a.workerVersion)
        case .activityTaskTimedOut(let a):
            a.failure.encode(into: &w); w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.byte(a.retryState.rawValue)
        case .activityTaskCancelRequested(let a):
            w.signed(a.scheduledEventID); w.signed(a.workflowTaskCompletedEventID)
        case .activityTaskCanceled(let a):
            w.payloads(a.details); w.signed(a.latestCancelRequestedEventID); w.signed(a.scheduledEventID)
            w.signed(a.startedEventID); w.string(a.identity)
            w.workerVersion(a.workerVersion)
        case .timerStarted(let a):
            w.string(a.timerID); w.duration(a.startToFireTimeout); w.signed(a.workflowTaskCompletedEventID)
        case .timerFired(let a):
            w.string(a.timerID); w.signed(a.startedEventID)
        case .timerCanceled(let a):
            w.string(a.timerID); w.signed(a.startedEventID); w.signed(a.workflowTaskCompletedEventID); w.string(a.identity)
        case .workflowExecutionCancelRequested(let a):
            w.string(a.cause); w.string(a.identity)
            w.signed(a.externalInitiatedEventID); w.optional(a.externalWorkflowExecution) { $0.execution($1) }
        case .workflowExecutionCanceled(let a):
            w.signed(a.workflowTaskCompletedEventID); w.payloads(a.details)
        case .markerRecorded(let a):
            w.string(a.markerName)
            w.count(a.details.count)
            for key in a.details.keys.sorted() {
                w.string(key)
                w.payloads(a.details[key] ?? [])
            }
            w.signed(a.workflowTaskCompletedEventID); w.failure(a.failure)
            w.header(a.header)
        case .workflowExecutionSignaled(let a):
            w.string(a.signalName); w.payloads(a.input); w.string(a.identity)
            w.header(a.header); w.string(a.requestID)
            w.optional(a.externalWorkflowExecution) { $0.execution($1) }
        case .workflowExecutionTerminated(let a):
            w.string(a.reason); w.payloads(a.details); w.string(a.identity)
        case .workflowExecutionContinuedAsNew(let a):
            w.string(a.newExecutionRunID); w.string(a.workflowType); w.string(a.taskQueue); w.payloads(a.input)
            w.duration(a.workflowRunTimeout); w.duration(a.workflowTaskTimeout); w.signed(a.workflowTaskCompletedEventID)
            w.header(a.header)
            w.duration(a.backoffStartInterval); w.byte(a.initiator.rawValue); w.failure(a.failure); w.payloads(a.lastCompletionResult)
            w.payloadMap(a.memo); w.payloadMap(a.searchAttributes)
        case .upsertWorkflowSearchAttributes(let a):
            w.signed(a.workflowTaskCompletedEventID); w.payloadMap(a.searchAttributes)
        case .workflowPropertiesModified(let a):
            w.signed(a.workflowTaskCompletedEventID); w.payloadMap(a.upsertedMemo)
        case .workflowExecutionUpdateAccepted(let a):
            a.encode(into: &w)
        case .workflowExecutionUpdateCompleted(let a):
            a.encode(into: &w)
        case .startChildWorkflowExecutionInitiated, .startChildWorkflowExecutionFailed, .childWorkflowExecutionStarted,
             .childWorkflowExecutionClosed, .signalExternalWorkflowExecutionInitiated, .signalExternalWorkflowExecutionFailed,
             .externalWorkflowExecutionSignaled, .requestCancelExternalWorkflowExecutionInitiated,
             .requestCancelExternalWorkflowExecutionFailed, .externalWorkflowExecutionCancelRequested:
            encodeRelatedRunAttributes(into: &w)
        }
    }

    static func decode(from r: inout BinaryReader<SpoolError>, layout: ValueLayout) throws(SpoolError) -> HistoryEvent {
        let eventID = try r.signed()
        let eventTime = try r.timestamp()
        let type = try r.enumeration(EventType.self)
        let userMetadata = try r.userMetadata(layout)
        let attributes: Attributes
        switch type {
        case .workflowExecutionStarted:
            var a = WorkflowExecutionStartedEventAttributes(
                workflowType: try r.string(), taskQueue: try r.string(), input: try r.optionalPayloads(layout),
                workflowRunTimeout: try r.optionalDuration(), workflowTaskTimeout: try r.duration(),
                continuedExecutionRunID: try r.string(), firstExecutionRunID: try r.string(), identity: try r.string(),
                requestID: try r.string(), attempt: try r.int32(), header: try r.header(layout))
            if layout.isExtended {
                a.workflowExecutionTimeout = try r.optionalDuration()
                a.continuedFailure = try r.optionalFailure(layout)
                a.lastCompletionResult = try r.optionalPayloads(layout)
                a.initiator = try r.enumeration(ContinueAsNewInitiator.self)
                a.originalExecutionRunID = try r.string()
                a.firstWorkflowTaskBackoff = try r.optionalDuration()
                a.workflowExecutionExpirationTime = try r.optional { r throws(SpoolError) in try r.timestamp() }
                a.retryPolicy = try r.optional { r throws(SpoolError) in try RetryPolicy.decode(from: &r) }
                a.cronSchedule = try r.string()
                a.memo = try r.payloadMap()
                a.searchAttributes = try r.payloadMap()
                a.priority = try r.priority(layout)
            }
            if layout.isRelated { a.parent = try r.parentExecution() }
            attributes = .workflowExecutionStarted(a)
        case .workflowExecutionCompleted:
            attributes = .workflowExecutionCompleted(.init(result: try r.optionalPayloads(layout),
                                                           workflowTaskCompletedEventID: try r.signed(),
                                                           newExecutionRunID: layout.isExtended ? try r.string() : ""))
        case .workflowExecutionFailed:
            attributes = .workflowExecutionFailed(.init(failure: try r.failure(layout), retryState: try r.enumeration(RetryState.self),
                                                        workflowTaskCompletedEventID: try r.signed(),
                                                        newExecutionRunID: layout.isExtended ? try r.string() : ""))
        case .workflowExecutionTimedOut:
            attributes = .workflowExecutionTimedOut(.init(retryState: try r.enumeration(RetryState.self),
                                                          newExecutionRunID: layout.isExtended ? try r.string() : ""))
        case .workflowTaskScheduled:
            attributes = .workflowTaskScheduled(.init(taskQueue: try r.string(), startToCloseTimeout: try r.duration(),
                                                      attempt: try r.int32()))
        case .workflowTaskStarted:
            attributes = .workflowTaskStarted(.init(scheduledEventID: try r.signed(), identity: try r.string(),
                                                    requestID: try r.string()))
        case .workflowTaskCompleted:
            var a = WorkflowTaskCompletedEventAttributes(scheduledEventID: try r.signed(), startedEventID: try r.signed(),
                                                         identity: try r.string())
            if layout.isWhole {
                a.binaryChecksum = try r.string()
                a.workerVersion = try r.workerVersion(layout)
                a.sdkMetadata = try r.optional { r throws(SpoolError) in
                    var m = WorkflowTaskCompletedMetadata()
                    for _ in 0..<(try r.count()) { m.coreUsedFlags.append(try r.uint32()) }
                    for _ in 0..<(try r.count()) { m.langUsedFlags.append(try r.uint32()) }
                    m.sdkName = try r.string()
                    m.sdkVersion = try r.string()
                    return m
                }
                a.meteringMetadata = try r.optional { r throws(SpoolError) in
                    MeteringMetadata(nonfirstLocalActivityExecutionAttempts: try r.uint32())
                }
                a.versioningBehavior = try r.enumeration(VersioningBehavior.self)
                a.workerDeploymentName = try r.string()
                a.workerDeploymentVersion = try r.string()
            }
            attributes = .workflowTaskCompleted(a)
        case .workflowTaskTimedOut:
            attributes = .workflowTaskTimedOut(.init(scheduledEventID: try r.signed(), startedEventID: try r.signed(),
                                                     timeoutType: try r.enumeration(TimeoutType.self)))
        case .workflowTaskFailed:
            attributes = .workflowTaskFailed(.init(scheduledEventID: try r.signed(), startedEventID: try r.signed(),
                                                   cause: try r.enumeration(WorkflowTaskFailedCause.self),
                                                   failure: try r.optionalFailure(layout), identity: try r.string(),
                                                   binaryChecksum: try r.wholeString(layout), workerVersion: try r.workerVersion(layout)))
        case .activityTaskScheduled:
            attributes = .activityTaskScheduled(.init(
                activityID: try r.string(), activityType: try r.string(), taskQueue: try r.string(), input: try r.optionalPayloads(layout),
                scheduleToCloseTimeout: try r.optionalDuration(), scheduleToStartTimeout: try r.optionalDuration(),
                startToCloseTimeout: try r.duration(), heartbeatTimeout: try r.optionalDuration(),
                workflowTaskCompletedEventID: try r.signed(), retryPolicy: try RetryPolicy.decode(from: &r), header: try r.header(layout),
                priority: try r.priority(layout)))
        case .activityTaskStarted:
            attributes = .activityTaskStarted(.init(scheduledEventID: try r.signed(), identity: try r.string(),
                                                    requestID: try r.string(), attempt: try r.int32(),
                                                    lastFailure: try r.optionalFailure(layout)))
        case .activityTaskCompleted:
            attributes = .activityTaskCompleted(.init(result: try r.optionalPayloads(layout), scheduledEventID: try r.signed(),
                                                      startedEventID: try r.signed(), identity: try r.string(),
                                                      workerVersion: try r.workerVersion(layout)))
        case .activityTaskFailed:
            attributes = .activityTaskFailed(.init(failure: try r.failure(layout), scheduledEventID: try r.signed(),
                                                   startedEventID: try r.signed(), identity: try r.string(),
                                                   retryState: try r.enumeration(RetryState.self), workerVersion: try r.workerVersion(layout)))
        case .activityTaskTimedOut:
            attributes = .activityTaskTimedOut(.init(failure: try r.failure(layout), scheduledEventID: try r.signed(),
                                                     startedEventID: try r.signed(), retryState: try r.enumeration(RetryState.self)))
        case .activityTaskCancelRequested:
            attributes = .activityTaskCancelRequested(.init(scheduledEventID: try r.signed(), workflowTaskCompletedEventID: try r.signed()))
        case .activityTaskCanceled:
            attributes = .activityTaskCanceled(.init(details: try r.optionalPayloads(layout), latestCancelRequestedEventID: try r.signed(),
                                                     scheduledEventID: try r.signed(), startedEventID: try r.signed(),
                                                     identity: try r.string(), workerVersion: try r.workerVersion(layout)))
        case .timerStarted:
            attributes = .timerStarted(.init(timerID: try r.string(), startToFireTimeout: try r.duration(),
                                             workflowTaskCompletedEventID: try r.signed()))
        case .timerFired:
            attributes = .timerFired(.init(timerID: try r.string(), startedEventID: try r.signed()))
        case .timerCanceled:
            attributes = .timerCanceled(.init(timerID: try r.string(), startedEventID: try r.signed(),
                                              workflowTaskCompletedEventID: try r.signed(), identity: try r.string()))
        case .workflowExecutionCancelRequested:
            var a = WorkflowExecutionCancelRequestedEventAttributes(cause: try r.string(), identity: try r.string())
            if layout.isRelated {
                a.externalInitiatedEventID = try r.signed()
                a.externalWorkflowExecution = try r.optional { r throws(SpoolError) in try r.execution() }
            }
            attributes = .workflowExecutionCancelRequested(a)
        case .workflowExecutionCanceled:
            attributes = .workflowExecutionCanceled(.init(workflowTaskCompletedEventID: try r.signed(),
                                                          details: try r.optionalPayloads(layout)))
        case .markerRecorded:
            let name = try r.string()
            var details: [String: Payloads] = [:]
            for _ in 0..<(try r.count()) {
                let key = try r.string()
                details[key] = try r.payloads(layout)
            }
            attributes = .markerRecorded(.init(markerName: name, details: details, workflowTaskCompletedEventID: try r.signed(),
                                               failure: try r.optionalFailure(layout), header: try r.header(layout)))
        case .workflowExecutionSignaled:
            var a = WorkflowExecutionSignaledEventAttributes(signalName: try r.string(), input: try r.optionalPayloads(layout),
                                                             identity: try r.string(), header: try r.header(layout),
                                                             requestID: try r.wholeString(layout))
            if layout.isRelated { a.externalWorkflowExecution = try r.optional { r throws(SpoolError) in try r.execution() } }
            attributes = .workflowExecutionSignaled(a)
        case .workflowExecutionTerminated:
            attributes = .workflowExecutionTerminated(.init(reason: try r.string(), details: try r.optionalPayloads(layout),
                                                            identity: try r.string()))
        case .workflowExecutionContinuedAsNew:
            var a = WorkflowExecutionContinuedAsNewEventAttributes(
                newExecutionRunID: try r.string(), workflowType: try r.string(), taskQueue: try r.string(),
                input: try r.optionalPayloads(layout), workflowRunTimeout: try r.optionalDuration(),
                workflowTaskTimeout: try r.duration(), workflowTaskCompletedEventID: try r.signed(), header: try r.header(layout))
            if layout.isExtended {
                a.backoffStartInterval = try r.optionalDuration()
                a.initiator = try r.enumeration(ContinueAsNewInitiator.self)
                a.failure = try r.optionalFailure(layout)
                a.lastCompletionResult = try r.optionalPayloads(layout)
                a.memo = try r.payloadMap()
                a.searchAttributes = try r.payloadMap()
            }
            attributes = .workflowExecutionContinuedAsNew(a)
        case .upsertWorkflowSearchAttributes:
            guard layout.isExtended else { throw r.corrupt("an UpsertWorkflowSearchAttributes event in a layout before 3") }
            attributes = .upsertWorkflowSearchAttributes(.init(workflowTaskCompletedEventID: try r.signed(),
                                                               searchAttributes: try r.payloadMap()))
        case .workflowPropertiesModified:
            guard layout.isExtended else { throw r.corrupt("a WorkflowPropertiesModified event in a layout before 3") }
            attributes = .workflowPropertiesModified(.init(workflowTaskCompletedEventID: try r.signed(),
                                                           upsertedMemo: try r.payloadMap()))
        case .workflowExecutionUpdateAccepted:
            guard layout.isExtended else { throw r.corrupt("a WorkflowExecutionUpdateAccepted event in a layout before 3") }
            attributes = .workflowExecutionUpdateAccepted(try .decode(from: &r, layout: layout))
        case .workflowExecutionUpdateCompleted:
            guard layout.isExtended else { throw r.corrupt("a WorkflowExecutionUpdateCompleted event in a layout before 3") }
            attributes = .workflowExecutionUpdateCompleted(try .decode(from: &r, layout: layout))
        case .startChildWorkflowExecutionInitiated, .startChildWorkflowExecutionFailed, .childWorkflowExecutionStarted,
             .childWorkflowExecutionCompleted, .childWorkflowExecutionFailed, .childWorkflowExecutionCanceled,
             .childWorkflowExecutionTimedOut, .childWorkflowExecutionTerminated, .signalExternalWorkflowExecutionInitiated,
             .signalExternalWorkflowExecutionFailed, .externalWorkflowExecutionSignaled,
             .requestCancelExternalWorkflowExecutionInitiated, .requestCancelExternalWorkflowExecutionFailed,
             .externalWorkflowExecutionCancelRequested:
            attributes = try decodeRelatedRunAttributes(type, from: &r, layout: layout)
        }
        return HistoryEvent(eventID: eventID, eventTime: eventTime, attributes: attributes, userMetadata: userMetadata)
    }
}

extension BinaryReader<SpoolError> {
    /// A varint that must fit in 32 bits.
    mutating func uint32() throws(SpoolError) -> UInt32 {
        let value = try unsigned()
        guard let narrowed = UInt32(exactly: value) else { throw corrupt("a 32-bit field holds \(value)") }
        return narrowed
    }
}
