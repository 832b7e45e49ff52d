import SpoolLog

// The binary layout of history events in log records: event id, time, type byte, then the
// type's fields in declaration order (see BinaryWriter for the primitives).

extension Failure {
    func encode(into writer: inout BinaryWriter) {
        writer.string(message)
        writer.string(type)
        writer.bool(nonRetryable)
        writer.payload(details)
        writer.duration(nextRetryDelay)
        writer.optional(timeoutType) { $0.byte($1.rawValue) }
        writer.payload(lastHeartbeatDetails)
    }

    static func decode(from reader: inout BinaryReader<SpoolError>) throws(SpoolError) -> Failure {
        Failure(message: try reader.string(), type: try reader.string(), nonRetryable: try reader.bool(),
                details: try reader.optionalPayload(), nextRetryDelay: try reader.optionalDuration(),
                timeoutType: try reader.optional { r throws(SpoolError) in try r.enumeration(TimeoutType.self) },
                lastHeartbeatDetails: try reader.optionalPayload())
    }
}

extension BinaryWriter {
    mutating func failure(_ value: Failure?) { optional(value) { $1.encode(into: &$0) } }
}

extension BinaryReader<SpoolError> {
    mutating func failure() throws(SpoolError) -> Failure { try Failure.decode(from: &self) }
    mutating func optionalFailure() throws(SpoolError) -> Failure? { try optional { r throws(SpoolError) in try Failure.decode(from: &r) } }
}

extension RetryPolicy {
    func encode(into writer: inout BinaryWriter) {
        writer.duration(initialInterval)
        writer.unsigned(backoffCoefficient.bitPattern)
        writer.duration(maximumInterval)
        writer.signed(Int64(maximumAttempts))
        writer.count(nonRetryableErrorTypes.count)
        for type in nonRetryableErrorTypes { writer.string(type) }
    }

    static func decode(from reader: inout BinaryReader<SpoolError>) throws(SpoolError) -> RetryPolicy {
        let initial = try reader.duration()
        let coefficient = Double(bitPattern: try reader.unsigned())
        let maximum = try reader.optionalDuration()
        let attempts = try reader.int32()
        var types: [String] = []
        for _ in 0..<(try reader.count()) { types.append(try reader.string()) }
        return RetryPolicy(initialInterval: initial, backoffCoefficient: coefficient, maximumInterval: maximum,
                           maximumAttempts: attempts, nonRetryableErrorTypes: types)
    }
}

extension HistoryEvent {
    func encode(into w: inout BinaryWriter) {
        w.signed(eventID)
        w.timestamp(eventTime)
        w.byte(eventType.rawValue)
        switch attributes {
        case .workflowExecutionStarted(let a):
            w.string(a.workflowType); w.string(a.taskQueue); w.payload(a.input); w.duration(a.workflowRunTimeout)
            w.duration(a.workflowTaskTimeout); w.string(a.continuedExecutionRunID); w.string(a.firstExecutionRunID)
            w.string(a.identity); w.string(a.requestID); w.signed(Int64(a.attempt))
        case .workflowExecutionCompleted(let a):
            w.payload(a.result); w.signed(a.workflowTaskCompletedEventID)
        case .workflowExecutionFailed(let a):
            a.failure.encode(into: &w); w.byte(a.retryState.rawValue); w.signed(a.workflowTaskCompletedEventID)
        case .workflowExecutionTimedOut(let a):
            w.byte(a.retryState.rawValue)
        case .workflowTaskScheduled(let a):
            w.string(a.taskQueue); w.duration(a.startToCloseTimeout); w.signed(Int64(a.attempt))
        case .workflowTaskStarted(let a):
            w.signed(a.scheduledEventID); w.string(a.identity); w.string(a.requestID)
        case .workflowTaskCompleted(let a):
            w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.string(a.identity)
        case .workflowTaskTimedOut(let a):
            w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.byte(a.timeoutType.rawValue)
        case .workflowTaskFailed(let a):
            w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.byte(a.cause.rawValue); w.failure(a.failure)
            w.string(a.identity)
        case .activityTaskScheduled(let a):
            w.string(a.activityID); w.string(a.activityType); w.string(a.taskQueue); w.payload(a.input)
            w.duration(a.scheduleToCloseTimeout); w.duration(a.scheduleToStartTimeout); w.duration(a.startToCloseTimeout)
            w.duration(a.heartbeatTimeout); w.signed(a.workflowTaskCompletedEventID); a.retryPolicy.encode(into: &w)
        case .activityTaskStarted(let a):
            w.signed(a.scheduledEventID); w.string(a.identity); w.string(a.requestID); w.signed(Int64(a.attempt))
            w.failure(a.lastFailure)
        case .activityTaskCompleted(let a):
            w.payload(a.result); w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.string(a.identity)
        case .activityTaskFailed(let a):
            a.failure.encode(into: &w); w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.string(a.identity)
            w.byte(a.retryState.rawValue)
        case .activityTaskTimedOut(let a):
            a.failure.encode(into: &w); w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.byte(a.retryState.rawValue)
        case .activityTaskCancelRequested(let a):
            w.signed(a.scheduledEventID); w.signed(a.workflowTaskCompletedEventID)
        case .activityTaskCanceled(let a):
            w.payload(a.details); w.signed(a.latestCancelRequestedEventID); w.signed(a.scheduledEventID)
            w.signed(a.startedEventID); w.string(a.identity)
        case .timerStarted(let a):
            w.string(a.timerID); w.duration(a.startToFireTimeout); w.signed(a.workflowTaskCompletedEventID)
        case .timerFired(let a):
            w.string(a.timerID); w.signed(a.startedEventID)
        case .timerCanceled(let a):
            w.string(a.timerID); w.signed(a.startedEventID); w.signed(a.workflowTaskCompletedEventID); w.string(a.identity)
        case .workflowExecutionCancelRequested(let a):
            w.string(a.cause); w.string(a.identity)
        case .workflowExecutionCanceled(let a):
            w.signed(a.workflowTaskCompletedEventID); w.payload(a.details)
        case .markerRecorded(let a):
            w.string(a.markerName)
            w.count(a.details.count)
            for key in a.details.keys.sorted() {
                w.string(key)
                w.payload(a.details[key] ?? [])
            }
            w.signed(a.workflowTaskCompletedEventID); w.failure(a.failure)
        case .workflowExecutionSignaled(let a):
            w.string(a.signalName); w.payload(a.input); w.string(a.identity)
        case .workflowExecutionTerminated(let a):
            w.string(a.reason); w.payload(a.details); w.string(a.identity)
        case .workflowExecutionContinuedAsNew(let a):
            w.string(a.newExecutionRunID); w.string(a.workflowType); w.string(a.taskQueue); w.payload(a.input)
            w.duration(a.workflowRunTimeout); w.duration(a.workflowTaskTimeout); w.signed(a.workflowTaskCompletedEventID)
        }
    }

    static func decode(from r: inout BinaryReader<SpoolError>) throws(SpoolError) -> HistoryEvent {
        let eventID = try r.signed()
        let eventTime = try r.timestamp()
        let type = try r.enumeration(EventType.self)
        let attributes: Attributes
        switch type {
        case .workflowExecutionStarted:
            attributes = .workflowExecutionStarted(.init(
                workflowType: try r.string(), taskQueue: try r.string(), input: try r.optionalPayload(),
                workflowRunTimeout: try r.optionalDuration(), workflowTaskTimeout: try r.duration(),
                continuedExecutionRunID: try r.string(), firstExecutionRunID: try r.string(), identity: try r.string(),
                requestID: try r.string(), attempt: try r.int32()))
        case .workflowExecutionCompleted:
            attributes = .workflowExecutionCompleted(.init(result: try r.optionalPayload(), workflowTaskCompletedEventID: try r.signed()))
        case .workflowExecutionFailed:
            attributes = .workflowExecutionFailed(.init(failure: try r.failure(), retryState: try r.enumeration(RetryState.self),
                                                        workflowTaskCompletedEventID: try r.signed()))
        case .workflowExecutionTimedOut:
            attributes = .workflowExecutionTimedOut(.init(retryState: try r.enumeration(RetryState.self)))
        case .workflowTaskScheduled:
            attributes = .workflowTaskScheduled(.init(taskQueue: try r.string(), startToCloseTimeout: try r.duration(),
                                                      attempt: try r.int32()))
        case .workflowTaskStarted:
            attributes = .workflowTaskStarted(.init(scheduledEventID: try r.signed(), identity: try r.string(),
                                                    requestID: try r.string()))
        case .workflowTaskCompleted:
            attributes = .workflowTaskCompleted(.init(scheduledEventID: try r.signed(), startedEventID: try r.signed(),
                                                      identity: try r.string()))
        case .workflowTaskTimedOut:
            attributes = .workflowTaskTimedOut(.init(scheduledEventID: try r.signed(), startedEventID: try r.signed(),
                                                     timeoutType: try r.enumeration(TimeoutType.self)))
        case .workflowTaskFailed:
            attributes = .workflowTaskFailed(.init(scheduledEventID: try r.signed(), startedEventID: try r.signed(),
                                                   cause: try r.enumeration(WorkflowTaskFailedCause.self),
                                                   failure: try r.optionalFailure(), identity: try r.string()))
        case .activityTaskScheduled:
            attributes = .activityTaskScheduled(.init(
                activityID: try r.string(), activityType: try r.string(), taskQueue: try r.string(), input: try r.optionalPayload(),
                scheduleToCloseTimeout: try r.optionalDuration(), scheduleToStartTimeout: try r.optionalDuration(),
                startToCloseTimeout: try r.duration(), heartbeatTimeout: try r.optionalDuration(),
                workflowTaskCompletedEventID: try r.signed(), retryPolicy: try RetryPolicy.decode(from: &r)))
        case .activityTaskStarted:
            attributes = .activityTaskStarted(.init(scheduledEventID: try r.signed(), identity: try r.string(),
                                                    requestID: try r.string(), attempt: try r.int32(),
                                                    lastFailure: try r.optionalFailure()))
        case .activityTaskCompleted:
            attributes = .activityTaskCompleted(.init(result: try r.optionalPayload(), scheduledEventID: try r.signed(),
                                                      startedEventID: try r.signed(), identity: try r.string()))
        case .activityTaskFailed:
            attributes = .activityTaskFailed(.init(failure: try r.failure(), scheduledEventID: try r.signed(),
                                                   startedEventID: try r.signed(), identity: try r.string(),
                                                   retryState: try r.enumeration(RetryState.self)))
        case .activityTaskTimedOut:
            attributes = .activityTaskTimedOut(.init(failure: try r.failure(), scheduledEventID: try r.signed(),
                                                     startedEventID: try r.signed(), retryState: try r.enumeration(RetryState.self)))
        case .activityTaskCancelRequested:
            attributes = .activityTaskCancelRequested(.init(scheduledEventID: try r.signed(), workflowTaskCompletedEventID: try r.signed()))
        case .activityTaskCanceled:
            attributes = .activityTaskCanceled(.init(details: try r.optionalPayload(), latestCancelRequestedEventID: try r.signed(),
                                                     scheduledEventID: try r.signed(), startedEventID: try r.signed(),
                                                     identity: try r.string()))
        case .timerStarted:
            attributes = .timerStarted(.init(timerID: try r.string(), startToFireTimeout: try r.duration(),
                                             workflowTaskCompletedEventID: try r.signed()))
        case .timerFired:
            attributes = .timerFired(.init(timerID: try r.string(), startedEventID: try r.signed()))
        case .timerCanceled:
            attributes = .timerCanceled(.init(timerID: try r.string(), startedEventID: try r.signed(),
                                              workflowTaskCompletedEventID: try r.signed(), identity: try r.string()))
        case .workflowExecutionCancelRequested:
            attributes = .workflowExecutionCancelRequested(.init(cause: try r.string(), identity: try r.string()))
        case .workflowExecutionCanceled:
            attributes = .workflowExecutionCanceled(.init(workflowTaskCompletedEventID: try r.signed(), details: try r.optionalPayload()))
        case .markerRecorded:
            let name = try r.string()
            var details: [String: Payloads] = [:]
            for _ in 0..<(try r.count()) {
                let key = try r.string()
                details[key] = try r.payload()
            }
            attributes = .markerRecorded(.init(markerName: name, details: details, workflowTaskCompletedEventID: try r.signed(),
                                               failure: try r.optionalFailure()))
        case .workflowExecutionSignaled:
            attributes = .workflowExecutionSignaled(.init(signalName: try r.string(), input: try r.optionalPayload(),
                                                          identity: try r.string()))
        case .workflowExecutionTerminated:
            attributes = .workflowExecutionTerminated(.init(reason: try r.string(), details: try r.optionalPayload(),
                                                            identity: try r.string()))
        case .workflowExecutionContinuedAsNew:
            attributes = .workflowExecutionContinuedAsNew(.init(
                newExecutionRunID: try r.string(), workflowType: try r.string(), taskQueue: try r.string(),
                input: try r.optionalPayload(), workflowRunTimeout: try r.optionalDuration(),
                workflowTaskTimeout: try r.duration(), workflowTaskCompletedEventID: try r.signed()))
        }
        return HistoryEvent(eventID: eventID, eventTime: eventTime, attributes: attributes)
    }
}
