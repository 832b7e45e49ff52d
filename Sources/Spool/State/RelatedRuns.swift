import SpoolLog

/// What a run keeps about other runs (issue 19): its parent, the children it started that have
/// not closed, and its signals and cancel requests to other workflows not yet delivered. All of
/// it follows from the run's own events (``ExecutionState/applyRelatedRunEffect(of:)``), live and
/// in replay; a checkpoint stores it as one record (``encode(into:)``, layout 4).
struct RelatedRuns: Sendable, Equatable {
    struct Fields: Sendable, Equatable {
        var parent: ParentExecutionInfo?
        var children: [Int64: ChildExecutionInfo] = [:]
        var signals: [Int64: SignalExternalWorkflowExecutionInitiatedEventAttributes] = [:]
        var cancels: [Int64: RequestCancelExternalWorkflowExecutionInitiatedEventAttributes] = [:]
    }

    /// Nil for a run that has none of it (nearly every run): a transition copies the state, and
    /// copying this then costs one nil reference.
    private var storage: CopyOnWriteBox<Fields>?

    init() {}

    private var fields: Fields {
        get { storage?.value ?? Fields() }
        _modify {
            if storage == nil { storage = CopyOnWriteBox(Fields()) }
            yield &storage!.value
        }
    }

    /// The parent that started this run (or the run it continues) as a child.
    var parent: ParentExecutionInfo? {
        get { storage?.value.parent }
        _modify { yield &fields.parent }
    }
    /// Children initiated and not closed, by the parent's StartChildWorkflowExecutionInitiated id.
    /// Kept when the run closes: they are the children its parent close policy applies to.
    var children: [Int64: ChildExecutionInfo] {
        get { storage?.value.children ?? [:] }
        _modify { yield &fields.children }
    }
    /// Signals to other workflows initiated and not delivered yet, by initiated event id.
    var signals: [Int64: SignalExternalWorkflowExecutionInitiatedEventAttributes] {
        get { storage?.value.signals ?? [:] }
        _modify { yield &fields.signals }
    }
    /// Cancel requests to other workflows initiated and not delivered yet, by initiated event id.
    var cancels: [Int64: RequestCancelExternalWorkflowExecutionInitiatedEventAttributes] {
        get { storage?.value.cancels ?? [:] }
        _modify { yield &fields.cancels }
    }

    static func == (a: RelatedRuns, b: RelatedRuns) -> Bool { a.fields == b.fields }

    var isEmpty: Bool {
        guard let fields = storage?.value else { return true }
        return fields.parent == nil && fields.children.isEmpty && fields.signals.isEmpty && fields.cancels.isEmpty
    }

    /// The child id `workflowID` names among the pending children, if any.
    func pendingChild(workflowID: String) -> ChildExecutionInfo? {
        children.values.first { $0.workflowID == workflowID }
    }

    /// The record's layout: parent (optional), children (count; each initiated id, namespace,
    /// workflow id, type, first run id, started id, policy), signals and cancels (count; each
    /// initiated id and its initiated event's fields, as the event codec writes them).
    func encode(into w: inout BinaryWriter) {
        w.parentExecution(parent)
        w.count(children.count)
        for child in children.values.sorted(by: { $0.initiatedEventID < $1.initiatedEventID }) {
            w.signed(child.initiatedEventID); w.string(child.namespace); w.string(child.workflowID); w.string(child.workflowType)
            w.string(child.runID); w.signed(child.startedEventID); w.byte(child.parentClosePolicy.rawValue)
        }
        w.count(signals.count)
        for (id, a) in signals.sorted(by: { $0.key < $1.key }) {
            HistoryEvent(eventID: id, eventTime: Timestamp(nanosecondsSinceEpoch: 0),
                         attributes: .signalExternalWorkflowExecutionInitiated(a)).encode(into: &w)
        }
        w.count(cancels.count)
        for (id, a) in cancels.sorted(by: { $0.key < $1.key }) {
            HistoryEvent(eventID: id, eventTime: Timestamp(nanosecondsSinceEpoch: 0),
                         attributes: .requestCancelExternalWorkflowExecutionInitiated(a)).encode(into: &w)
        }
    }

    static func decode(from r: inout BinaryReader<SpoolError>, layout: ValueLayout) throws(SpoolError) -> RelatedRuns {
        var related = RelatedRuns()
        related.parent = try r.parentExecution()
        for _ in 0..<(try r.count()) {
            let child = ChildExecutionInfo(initiatedEventID: try r.signed(), namespace: try r.string(), workflowID: try r.string(),
                                           workflowType: try r.string(), runID: try r.string(), startedEventID: try r.signed(),
                                           parentClosePolicy: try r.enumeration(ParentClosePolicy.self))
            related.children[child.initiatedEventID] = child
        }
        for _ in 0..<(try r.count()) {
            let event = try HistoryEvent.decode(from: &r, layout: layout)
            guard case .signalExternalWorkflowExecutionInitiated(let a) = event.attributes else { throw r.corrupt("a pending signal without its fields") }
            related.signals[event.eventID] = a
        }
        for _ in 0..<(try r.count()) {
            let event = try HistoryEvent.decode(from: &r, layout: layout)
            guard case .requestCancelExternalWorkflowExecutionInitiated(let a) = event.attributes else {
                throw r.corrupt("a pending cancel request without its fields")
            }
            related.cancels[event.eventID] = a
        }
        return related
    }
}

/// A child a run initiated that has not closed (Temporal's `ChildExecutionInfo`).
struct ChildExecutionInfo: Sendable, Equatable {
    var initiatedEventID: Int64
    var namespace: String
    var workflowID: String
    var workflowType: String
    /// The child's first run; empty until ChildWorkflowExecutionStarted.
    var runID: String
    /// The ChildWorkflowExecutionStarted event; 0 until then.
    var startedEventID: Int64
    var parentClosePolicy: ParentClosePolicy

    var isStarted: Bool { startedEventID != 0 }
}

extension ExecutionState {
    /// What a related-runs event does to the state (called from `applyEffect(of:)`).
    mutating func applyRelatedRunEffect(of event: HistoryEvent) throws(SpoolError) {
        switch event.attributes {
        case .startChildWorkflowExecutionInitiated(let a):
            related.children[event.eventID] = ChildExecutionInfo(
                initiatedEventID: event.eventID, namespace: a.namespace, workflowID: a.workflowID, workflowType: a.workflowType,
                runID: "", startedEventID: 0, parentClosePolicy: a.parentClosePolicy)
        case .startChildWorkflowExecutionFailed(let a):
            guard related.children.removeValue(forKey: a.initiatedEventID) != nil else {
                throw key.error(.corruptRecord, "StartChildWorkflowExecutionFailed names no pending child", eventID: a.initiatedEventID)
            }
        case .childWorkflowExecutionStarted(let a):
            guard var child = related.children[a.initiatedEventID], !child.isStarted else {
                throw key.error(.corruptRecord, "ChildWorkflowExecutionStarted names no child waiting to start", eventID: a.initiatedEventID)
            }
            child.runID = a.workflowExecution.runID
            child.startedEventID = event.eventID
            related.children[a.initiatedEventID] = child
        case .childWorkflowExecutionClosed(let a):
            guard related.children.removeValue(forKey: a.initiatedEventID) != nil else {
                throw key.error(.corruptRecord, "\(event.eventType) names no pending child", eventID: a.initiatedEventID)
            }
        case .signalExternalWorkflowExecutionInitiated(let a):
            related.signals[event.eventID] = a
        case .signalExternalWorkflowExecutionFailed(let a):
            related.signals[a.initiatedEventID] = nil
        case .externalWorkflowExecutionSignaled(let a):
            related.signals[a.initiatedEventID] = nil
        case .requestCancelExternalWorkflowExecutionInitiated(let a):
            related.cancels[event.eventID] = a
        case .requestCancelExternalWorkflowExecutionFailed(let a):
            related.cancels[a.initiatedEventID] = nil
        case .externalWorkflowExecutionCancelRequested(let a):
            related.cancels[a.initiatedEventID] = nil
        default:
            break
        }
    }
}
