/// The type of a history event (Temporal's `temporal.api.enums.v1.EventType`, same numbers).
public enum EventType: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case workflowExecutionStarted = 1
    case workflowExecutionCompleted = 2
    case workflowExecutionFailed = 3
    case workflowExecutionTimedOut = 4
    case workflowTaskScheduled = 5
    case workflowTaskStarted = 6
    case workflowTaskCompleted = 7
    case workflowTaskTimedOut = 8
    case workflowTaskFailed = 9
    case activityTaskScheduled = 10
    case activityTaskStarted = 11
    case activityTaskCompleted = 12
    case activityTaskFailed = 13
    case activityTaskTimedOut = 14
    case activityTaskCancelRequested = 15
    case activityTaskCanceled = 16
    case timerStarted = 17
    case timerFired = 18
    case timerCanceled = 19
    case workflowExecutionCancelRequested = 20
    case workflowExecutionCanceled = 21
    case markerRecorded = 25
    case workflowExecutionSignaled = 26
    case workflowExecutionTerminated = 27
    case workflowExecutionContinuedAsNew = 28

    /// The name Temporal gives the type, such as `"WorkflowExecutionStarted"`.
    public var description: String {
        switch self {
        case .workflowExecutionStarted: "WorkflowExecutionStarted"
        case .workflowExecutionCompleted: "WorkflowExecutionCompleted"
        case .workflowExecutionFailed: "WorkflowExecutionFailed"
        case .workflowExecutionTimedOut: "WorkflowExecutionTimedOut"
        case .workflowTaskScheduled: "WorkflowTaskScheduled"
        case .workflowTaskStarted: "WorkflowTaskStarted"
        case .workflowTaskCompleted: "WorkflowTaskCompleted"
        case .workflowTaskTimedOut: "WorkflowTaskTimedOut"
        case .workflowTaskFailed: "WorkflowTaskFailed"
        case .activityTaskScheduled: "ActivityTaskScheduled"
        case .activityTaskStarted: "ActivityTaskStarted"
        case .activityTaskCompleted: "ActivityTaskCompleted"
        case .activityTaskFailed: "ActivityTaskFailed"
        case .activityTaskTimedOut: "ActivityTaskTimedOut"
        case .activityTaskCancelRequested: "ActivityTaskCancelRequested"
        case .activityTaskCanceled: "ActivityTaskCanceled"
        case .timerStarted: "TimerStarted"
        case .timerFired: "TimerFired"
        case .timerCanceled: "TimerCanceled"
        case .workflowExecutionCancelRequested: "WorkflowExecutionCancelRequested"
        case .workflowExecutionCanceled: "WorkflowExecutionCanceled"
        case .markerRecorded: "MarkerRecorded"
        case .workflowExecutionSignaled: "WorkflowExecutionSignaled"
        case .workflowExecutionTerminated: "WorkflowExecutionTerminated"
        case .workflowExecutionContinuedAsNew: "WorkflowExecutionContinuedAsNew"
        }
    }

    /// Whether an event of this type closes its execution.
    public var isClosing: Bool {
        switch self {
        case .workflowExecutionCompleted, .workflowExecutionFailed, .workflowExecutionTimedOut,
             .workflowExecutionCanceled, .workflowExecutionTerminated, .workflowExecutionContinuedAsNew: true
        default: false
        }
    }
}

/// One entry of a workflow execution's history (Temporal's `temporal.api.history.v1.HistoryEvent`).
///
/// Event ids start at 1 and grow by 1 within a run, with no gaps.
public struct HistoryEvent: Hashable, Sendable, CustomStringConvertible {
    /// The event's position in its run's history, from 1.
    public var eventID: Int64
    /// When the engine recorded the event.
    public var eventTime: Timestamp
    /// The type-specific fields; they determine ``eventType``.
    public var attributes: Attributes

    /// The event's type.
    public var eventType: EventType { attributes.eventType }

    init(eventID: Int64, eventTime: Timestamp, attributes: Attributes) {
        self.eventID = eventID
        self.eventTime = eventTime
        self.attributes = attributes
    }

    public var description: String { "\(eventID) \(eventType)" }

    /// The fields of each event type (Temporal's `oneof attributes`).
    public enum Attributes: Hashable, Sendable {
        case workflowExecutionStarted(WorkflowExecutionStartedEventAttributes)
        case workflowExecutionCompleted(WorkflowExecutionCompletedEventAttributes)
        case workflowExecutionFailed(WorkflowExecutionFailedEventAttributes)
        case workflowExecutionTimedOut(WorkflowExecutionTimedOutEventAttributes)
        case workflowTaskScheduled(WorkflowTaskScheduledEventAttributes)
        case workflowTaskStarted(WorkflowTaskStartedEventAttributes)
        case workflowTaskCompleted(WorkflowTaskCompletedEventAttributes)
        case workflowTaskTimedOut(WorkflowTaskTimedOutEventAttributes)
        case workflowTaskFailed(WorkflowTaskFailedEventAttributes)
        case activityTaskScheduled(ActivityTaskScheduledEventAttributes)
        case activityTaskStarted(ActivityTaskStartedEventAttributes)
        case activityTaskCompleted(ActivityTaskCompletedEventAttributes)
        case activityTaskFailed(ActivityTaskFailedEventAttributes)
        case activityTaskTimedOut(ActivityTaskTimedOutEventAttributes)
        case activityTaskCancelRequested(ActivityTaskCancelRequestedEventAttributes)
        case activityTaskCanceled(ActivityTaskCanceledEventAttributes)
        case timerStarted(TimerStartedEventAttributes)
        case timerFired(TimerFiredEventAttributes)
        case timerCanceled(TimerCanceledEventAttributes)
        case workflowExecutionCancelRequested(WorkflowExecutionCancelRequestedEventAttributes)
        case workflowExecutionCanceled(WorkflowExecutionCanceledEventAttributes)
        case markerRecorded(MarkerRecordedEventAttributes)
        case workflowExecutionSignaled(WorkflowExecutionSignaledEventAttributes)
        case workflowExecutionTerminated(WorkflowExecutionTerminatedEventAttributes)
        case workflowExecutionContinuedAsNew(WorkflowExecutionContinuedAsNewEventAttributes)

        /// The event type these attributes belong to.
        public var eventType: EventType {
            switch self {
            case .workflowExecutionStarted: .workflowExecutionStarted
            case .workflowExecutionCompleted: .workflowExecutionCompleted
            case .workflowExecutionFailed: .workflowExecutionFailed
            case .workflowExecutionTimedOut: .workflowExecutionTimedOut
            case .workflowTaskScheduled: .workflowTaskScheduled
            case .workflowTaskStarted: .workflowTaskStarted
            case .workflowTaskCompleted: .workflowTaskCompleted
            case .workflowTaskTimedOut: .workflowTaskTimedOut
            case .workflowTaskFailed: .workflowTaskFailed
            case .activityTaskScheduled: .activityTaskScheduled
            case .activityTaskStarted: .activityTaskStarted
            case .activityTaskCompleted: .activityTaskCompleted
            case .activityTaskFailed: .activityTaskFailed
            case .activityTaskTimedOut: .activityTaskTimedOut
            case .activityTaskCancelRequested: .activityTaskCancelRequested
            case .activityTaskCanceled: .activityTaskCanceled
            case .timerStarted: .timerStarted
            case .timerFired: .timerFired
            case .timerCanceled: .timerCanceled
            case .workflowExecutionCancelRequested: .workflowExecutionCancelRequested
            case .workflowExecutionCanceled: .workflowExecutionCanceled
            case .markerRecorded: .markerRecorded
            case .workflowExecutionSignaled: .workflowExecutionSignaled
            case .workflowExecutionTerminated: .workflowExecutionTerminated
            case .workflowExecutionContinuedAsNew: .workflowExecutionContinuedAsNew
            }
        }
    }
}
