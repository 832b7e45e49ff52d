import SpoolLog

// The binary layout of the events of workflows that act on other workflows (event types 22–24
// and 29–39; new kinds, so they need no layout of their own: old data never holds them) and of
// the fields layout 4 appends to WorkflowExecutionStarted (the parent link), WorkflowExecutionSignaled
// and WorkflowExecutionCancelRequested (the sending workflow). Each type's fields in declaration
// order; a child's close writes its outcome's fields first, then the shared ones.

extension BinaryWriter {
    /// A workflow execution: workflow id, run id.
    mutating func execution(_ value: WorkflowExecution) {
        string(value.workflowID); string(value.runID)
    }

    /// An optional parent link (layout 4): presence byte; namespace, execution, initiated id, root.
    mutating func parentExecution(_ value: ParentExecutionInfo?) {
        optional(value) { w, parent in
            w.string(parent.namespace); w.execution(parent.execution); w.signed(parent.initiatedEventID)
            w.execution(parent.rootExecution)
        }
    }
}

extension BinaryReader<SpoolError> {
    /// A workflow execution (see `BinaryWriter.execution(_:)`).
    mutating func execution() throws(SpoolError) -> WorkflowExecution {
        WorkflowExecution(workflowID: try string(), runID: try string())
    }

    /// An optional parent link (see `BinaryWriter.parentExecution(_:)`).
    mutating func parentExecution() throws(SpoolError) -> ParentExecutionInfo? {
        try optional { r throws(SpoolError) in
            ParentExecutionInfo(namespace: try r.string(), execution: try r.execution(), initiatedEventID: try r.signed(),
                                rootExecution: try r.execution())
        }
    }
}

extension HistoryEvent {
    /// Writes the fields of a related-runs event (the caller wrote id, time, type and metadata).
    func encodeRelatedRunAttributes(into w: inout BinaryWriter) {
        switch attributes {
        case .startChildWorkflowExecutionInitiated(let a):
            w.string(a.namespace); w.string(a.workflowID); w.string(a.workflowType); w.string(a.taskQueue); w.payloads(a.input)
            w.duration(a.workflowExecutionTimeout); w.duration(a.workflowRunTimeout); w.duration(a.workflowTaskTimeout)
            w.byte(a.parentClosePolicy.rawValue); w.string(a.control); w.signed(a.workflowTaskCompletedEventID)
            w.byte(a.workflowIDReusePolicy.rawValue); w.optional(a.retryPolicy) { $1.encode(into: &$0) }
            w.string(a.cronSchedule); w.header(a.header); w.payloadMap(a.memo); w.payloadMap(a.searchAttributes)
            w.priority(a.priority)
        case .startChildWorkflowExecutionFailed(let a):
            w.string(a.namespace); w.string(a.workflowID); w.string(a.workflowType); w.byte(a.cause.rawValue)
            w.string(a.control); w.signed(a.initiatedEventID); w.signed(a.workflowTaskCompletedEventID)
        case .childWorkflowExecutionStarted(let a):
            w.string(a.namespace); w.signed(a.initiatedEventID); w.execution(a.workflowExecution); w.string(a.workflowType)
            w.header(a.header)
        case .childWorkflowExecutionClosed(let a):
            switch a.outcome {
            case .completed(let result): w.payloads(result)
            case .failed(let failure, let retryState): failure.encode(into: &w); w.byte(retryState.rawValue)
            case .canceled(let details): w.payloads(details)
            case .timedOut(let retryState): w.byte(retryState.rawValue)
            case .terminated: break
            }
            w.string(a.namespace); w.execution(a.workflowExecution); w.string(a.workflowType)
            w.signed(a.initiatedEventID); w.signed(a.startedEventID)
        case .signalExternalWorkflowExecutionInitiated(let a):
            w.signed(a.workflowTaskCompletedEventID); w.string(a.namespace); w.execution(a.workflowExecution)
            w.string(a.signalName); w.payloads(a.input); w.string(a.control); w.bool(a.childWorkflowOnly); w.header(a.header)
        case .signalExternalWorkflowExecutionFailed(let a):
            w.byte(a.cause.rawValue); w.signed(a.workflowTaskCompletedEventID); w.string(a.namespace)
            w.execution(a.workflowExecution); w.signed(a.initiatedEventID); w.string(a.control)
        case .externalWorkflowExecutionSignaled(let a):
            w.signed(a.initiatedEventID); w.string(a.namespace); w.execution(a.workflowExecution); w.string(a.control)
        case .requestCancelExternalWorkflowExecutionInitiated(let a):
            w.signed(a.workflowTaskCompletedEventID); w.string(a.namespace); w.execution(a.workflowExecution)
            w.string(a.control); w.bool(a.childWorkflowOnly); w.string(a.reason)
        case .requestCancelExternalWorkflowExecutionFailed(let a):
            w.byte(a.cause.rawValue); w.signed(a.workflowTaskCompletedEventID); w.string(a.namespace)
            w.execution(a.workflowExecution); w.signed(a.initiatedEventID); w.string(a.control)
        case .externalWorkflowExecutionCancelRequested(let a):
            w.signed(a.initiatedEventID); w.string(a.namespace); w.execution(a.workflowExecution)
        default:
            preconditionFailure("\(eventType) is not a related-runs event")
        }
    }

    /// Reads the fields of a related-runs event of `type`.
    static func decodeRelatedRunAttributes(_ type: EventType, from r: inout BinaryReader<SpoolError>,
                                           layout: ValueLayout) throws(SpoolError) -> Attributes {
        // Written only from layout 4 on, which carries every field they use.
        guard layout.isRelated else { throw r.corrupt("a \(type) event in a layout before 4") }
        func closed(_ r: inout BinaryReader<SpoolError>, _ outcome: ChildWorkflowExecutionClosedEventAttributes.Outcome)
            throws(SpoolError) -> Attributes {
            .childWorkflowExecutionClosed(.init(outcome: outcome, namespace: try r.string(), workflowExecution: try r.execution(),
                                                workflowType: try r.string(), initiatedEventID: try r.signed(),
                                                startedEventID: try r.signed()))
        }
        switch type {
        case .startChildWorkflowExecutionInitiated:
            return .startChildWorkflowExecutionInitiated(.init(
                namespace: try r.string(), workflowID: try r.string(), workflowType: try r.string(), taskQueue: try r.string(),
                input: try r.optionalPayloads(layout), workflowExecutionTimeout: try r.optionalDuration(),
                workflowRunTimeout: try r.optionalDuration(), workflowTaskTimeout: try r.optionalDuration(),
                parentClosePolicy: try r.enumeration(ParentClosePolicy.self), control: try r.string(),
                workflowTaskCompletedEventID: try r.signed(), workflowIDReusePolicy: try r.enumeration(WorkflowIDReusePolicy.self),
                retryPolicy: try r.optional { r throws(SpoolError) in try RetryPolicy.decode(from: &r) },
                cronSchedule: try r.string(), header: try r.header(layout), memo: try r.payloadMap(),
                searchAttributes: try r.payloadMap(), priority: try r.priority(layout)))
        case .startChildWorkflowExecutionFailed:
            return .startChildWorkflowExecutionFailed(.init(
                namespace: try r.string(), workflowID: try r.string(), workflowType: try r.string(),
                cause: try r.enumeration(StartChildWorkflowExecutionFailedCause.self), control: try r.string(),
                initiatedEventID: try r.signed(), workflowTaskCompletedEventID: try r.signed()))
        case .childWorkflowExecutionStarted:
            return .childWorkflowExecutionStarted(.init(namespace: try r.string(), initiatedEventID: try r.signed(),
                                                        workflowExecution: try r.execution(), workflowType: try r.string(),
                                                        header: try r.header(layout)))
        case .childWorkflowExecutionCompleted:
            return try closed(&r, .completed(result: try r.optionalPayloads(layout)))
        case .childWorkflowExecutionFailed:
            return try closed(&r, .failed(failure: try r.failure(layout), retryState: try r.enumeration(RetryState.self)))
        case .childWorkflowExecutionCanceled:
            return try closed(&r, .canceled(details: try r.optionalPayloads(layout)))
        case .childWorkflowExecutionTimedOut:
            return try closed(&r, .timedOut(retryState: try r.enumeration(RetryState.self)))
        case .childWorkflowExecutionTerminated:
            return try closed(&r, .terminated)
        case .signalExternalWorkflowExecutionInitiated:
            return .signalExternalWorkflowExecutionInitiated(.init(
                workflowTaskCompletedEventID: try r.signed(), namespace: try r.string(), workflowExecution: try r.execution(),
                signalName: try r.string(), input: try r.optionalPayloads(layout), control: try r.string(),
                childWorkflowOnly: try r.bool(), header: try r.header(layout)))
        case .signalExternalWorkflowExecutionFailed:
            return .signalExternalWorkflowExecutionFailed(.init(
                cause: try r.enumeration(SignalExternalWorkflowExecutionFailedCause.self), workflowTaskCompletedEventID: try r.signed(),
                namespace: try r.string(), workflowExecution: try r.execution(), initiatedEventID: try r.signed(),
                control: try r.string()))
        case .externalWorkflowExecutionSignaled:
            return .externalWorkflowExecutionSignaled(.init(initiatedEventID: try r.signed(), namespace: try r.string(),
                                                            workflowExecution: try r.execution(), control: try r.string()))
        case .requestCancelExternalWorkflowExecutionInitiated:
            return .requestCancelExternalWorkflowExecutionInitiated(.init(
                workflowTaskCompletedEventID: try r.signed(), namespace: try r.string(), workflowExecution: try r.execution(),
                control: try r.string(), childWorkflowOnly: try r.bool(), reason: try r.string()))
        case .requestCancelExternalWorkflowExecutionFailed:
            return .requestCancelExternalWorkflowExecutionFailed(.init(
                cause: try r.enumeration(CancelExternalWorkflowExecutionFailedCause.self),
                workflowTaskCompletedEventID: try r.signed(), namespace: try r.string(), workflowExecution: try r.execution(),
                initiatedEventID: try r.signed(), control: try r.string()))
        case .externalWorkflowExecutionCancelRequested:
            return .externalWorkflowExecutionCancelRequested(.init(initiatedEventID: try r.signed(), namespace: try r.string(),
                                                                   workflowExecution: try r.execution()))
        default:
            throw r.corrupt("\(type) is not a related-runs event")
        }
    }
}
