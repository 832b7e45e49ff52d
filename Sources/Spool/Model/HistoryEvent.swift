/// The type of a history event (Temporal's `temporal.api.enums.v1.EventType`, same numbers).
public enum EventType: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The run began (always event 1).
    case workflowExecutionStarted = 1
    /// The workflow completed the run with a result.
    case workflowExecutionCompleted = 2
    /// The workflow failed the run.
    case workflowExecutionFailed = 3
    /// The run timeout passed.
    case workflowExecutionTimedOut = 4
    /// A workflow task was put on a queue.
    case workflowTaskScheduled = 5
    /// A worker took the workflow task.
    case workflowTaskStarted = 6
    /// The worker completed the workflow task; its commands' events follow.
    case workflowTaskCompleted = 7
    /// The workflow task was not completed (or, on a sticky queue, not started) in time.
    case workflowTaskTimedOut = 8
    /// The workflow task failed (worker failure or invalid command); the run goes on.
    case workflowTaskFailed = 9
    /// An activity was scheduled and its task put on a queue.
    case activityTaskScheduled = 10
    /// The activity's last attempt started (written with its outcome).
    case activityTaskStarted = 11
    /// The activity completed.
    case activityTaskCompleted = 12
    /// The activity failed and will not be retried.
    case activityTaskFailed = 13
    /// The activity timed out and will not be retried.
    case activityTaskTimedOut = 14
    /// The workflow asked to cancel the activity.
    case activityTaskCancelRequested = 15
    /// The activity was canceled.
    case activityTaskCanceled = 16
    /// A user timer started.
    case timerStarted = 17
    /// A user timer fired.
    case timerFired = 18
    /// A user timer was canceled.
    case timerCanceled = 19
    /// A client asked to cancel the run.
    case workflowExecutionCancelRequested = 20
    /// The workflow canceled the run.
    case workflowExecutionCanceled = 21
    /// The workflow asked to cancel another workflow.
    case requestCancelExternalWorkflowExecutionInitiated = 22
    /// The cancel request to another workflow could not be delivered.
    case requestCancelExternalWorkflowExecutionFailed = 23
    /// The cancel request reached the other workflow.
    case externalWorkflowExecutionCancelRequested = 24
    /// The workflow recorded a marker.
    case markerRecorded = 25
    /// A signal reached the run.
    case workflowExecutionSignaled = 26
    /// A client terminated the run.
    case workflowExecutionTerminated = 27
    /// The run closed and a new run of the workflow id took its place.
    case workflowExecutionContinuedAsNew = 28
    /// The workflow asked to start a child workflow.
    case startChildWorkflowExecutionInitiated = 29
    /// The child workflow could not be started.
    case startChildWorkflowExecutionFailed = 30
    /// The child workflow started.
    case childWorkflowExecutionStarted = 31
    /// The child workflow completed.
    case childWorkflowExecutionCompleted = 32
    /// The child workflow failed.
    case childWorkflowExecutionFailed = 33
    /// The child workflow was canceled.
    case childWorkflowExecutionCanceled = 34
    /// The child workflow timed out.
    case childWorkflowExecutionTimedOut = 35
    /// The child workflow was terminated.
    case childWorkflowExecutionTerminated = 36
    /// The workflow asked to signal another workflow.
    case signalExternalWorkflowExecutionInitiated = 37
    /// The signal to another workflow could not be delivered.
    case signalExternalWorkflowExecutionFailed = 38
    /// The signal reached the other workflow.
    case externalWorkflowExecutionSignaled = 39
    /// The workflow upserted search attributes.
    case upsertWorkflowSearchAttributes = 40
    /// The workflow modified its memo.
    case workflowPropertiesModified = 46
    /// The workflow accepted an update (its request is recorded here).
    case workflowExecutionUpdateAccepted = 41
    /// An accepted update has its outcome.
    case workflowExecutionUpdateCompleted = 43

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
        case .upsertWorkflowSearchAttributes: "UpsertWorkflowSearchAttributes"
        case .workflowPropertiesModified: "WorkflowPropertiesModified"
        case .workflowExecutionUpdateAccepted: "WorkflowExecutionUpdateAccepted"
        case .workflowExecutionUpdateCompleted: "WorkflowExecutionUpdateCompleted"
        case .requestCancelExternalWorkflowExecutionInitiated: "RequestCancelExternalWorkflowExecutionInitiated"
        case .requestCancelExternalWorkflowExecutionFailed: "RequestCancelExternalWorkflowExecutionFailed"
        case .externalWorkflowExecutionCancelRequested: "ExternalWorkflowExecutionCancelRequested"
        case .startChildWorkflowExecutionInitiated: "StartChildWorkflowExecutionInitiated"
        case .startChildWorkflowExecutionFailed: "StartChildWorkflowExecutionFailed"
        case .childWorkflowExecutionStarted: "ChildWorkflowExecutionStarted"
        case .childWorkflowExecutionCompleted: "ChildWorkflowExecutionCompleted"
        case .childWorkflowExecutionFailed: "ChildWorkflowExecutionFailed"
        case .childWorkflowExecutionCanceled: "ChildWorkflowExecutionCanceled"
        case .childWorkflowExecutionTimedOut: "ChildWorkflowExecutionTimedOut"
        case .childWorkflowExecutionTerminated: "ChildWorkflowExecutionTerminated"
        case .signalExternalWorkflowExecutionInitiated: "SignalExternalWorkflowExecutionInitiated"
        case .signalExternalWorkflowExecutionFailed: "SignalExternalWorkflowExecutionFailed"
        case .externalWorkflowExecutionSignaled: "ExternalWorkflowExecutionSignaled"
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
    /// The summary and details a user gave the workflow (WorkflowExecutionStarted), activity
    /// (ActivityTaskScheduled) or timer (TimerStarted), kept as sent; nil when none was given.
    public var userMetadata: UserMetadata?

    /// The event's type.
    public var eventType: EventType { attributes.eventType }

    init(eventID: Int64, eventTime: Timestamp, attributes: Attributes, userMetadata: UserMetadata? = nil) {
        self.eventID = eventID
        self.eventTime = eventTime
        self.attributes = attributes
        self.userMetadata = userMetadata
    }

    public var description: String { "\(eventID) \(eventType)" }

    /// The fields of each event type (Temporal's `oneof attributes`).
    ///
    /// `indirect`: each case's fields live in one reference-counted box, so an event is moved and
    /// copied as a pointer (plus one retain) whatever its type, instead of as the largest case
    /// (WorkflowTaskFailed, 217 bytes with every string retained on each copy) — events are
    /// copied into the transition, the log record, the published history and the tasks.
    public indirect enum Attributes: Hashable, Sendable {
        /// The fields of a WorkflowExecutionStarted event.
        case workflowExecutionStarted(WorkflowExecutionStartedEventAttributes)
        /// The fields of a WorkflowExecutionCompleted event.
        case workflowExecutionCompleted(WorkflowExecutionCompletedEventAttributes)
        /// The fields of a WorkflowExecutionFailed event.
        case workflowExecutionFailed(WorkflowExecutionFailedEventAttributes)
        /// The fields of a WorkflowExecutionTimedOut event.
        case workflowExecutionTimedOut(WorkflowExecutionTimedOutEventAttributes)
        /// The fields of a WorkflowTaskScheduled event.
        case workflowTaskScheduled(WorkflowTaskScheduledEventAttributes)
        /// The fields of a WorkflowTaskStarted event.
        case workflowTaskStarted(WorkflowTaskStartedEventAttributes)
        /// The fields of a WorkflowTaskCompleted event.
        case workflowTaskCompleted(WorkflowTaskCompletedEventAttributes)
        /// The fields of a WorkflowTaskTimedOut event.
        case workflowTaskTimedOut(WorkflowTaskTimedOutEventAttributes)
        /// The fields of a WorkflowTaskFailed event.
        case workflowTaskFailed(WorkflowTaskFailedEventAttributes)
        /// The fields of a ActivityTaskScheduled event.
        case activityTaskScheduled(ActivityTaskScheduledEventAttributes)
        /// The fields of a ActivityTaskStarted event.
        case activityTaskStarted(ActivityTaskStartedEventAttributes)
        /// The fields of a ActivityTaskCompleted event.
        case activityTaskCompleted(ActivityTaskCompletedEventAttributes)
        /// The fields of a ActivityTaskFailed event.
        case activityTaskFailed(ActivityTaskFailedEventAttributes)
        /// The fields of a ActivityTaskTimedOut event.
        case activityTaskTimedOut(ActivityTaskTimedOutEventAttributes)
        /// The fields of a ActivityTaskCancelRequested event.
        case activityTaskCancelRequested(ActivityTaskCancelRequestedEventAttributes)
        /// The fields of a ActivityTaskCanceled event.
        case activityTaskCanceled(ActivityTaskCanceledEventAttributes)
        /// The fields of a TimerStarted event.
        case timerStarted(TimerStartedEventAttributes)
        /// The fields of a TimerFired event.
        case timerFired(TimerFiredEventAttributes)
        /// The fields of a TimerCanceled event.
        case timerCanceled(TimerCanceledEventAttributes)
        /// The fields of a WorkflowExecutionCancelRequested event.
        case workflowExecutionCancelRequested(WorkflowExecutionCancelRequestedEventAttributes)
        /// The fields of a WorkflowExecutionCanceled event.
        case workflowExecutionCanceled(WorkflowExecutionCanceledEventAttributes)
        /// The fields of a MarkerRecorded event.
        case markerRecorded(MarkerRecordedEventAttributes)
        /// The fields of a WorkflowExecutionSignaled event.
        case workflowExecutionSignaled(WorkflowExecutionSignaledEventAttributes)
        /// The fields of a WorkflowExecutionTerminated event.
        case workflowExecutionTerminated(WorkflowExecutionTerminatedEventAttributes)
        /// The fields of a WorkflowExecutionContinuedAsNew event.
        case workflowExecutionContinuedAsNew(WorkflowExecutionContinuedAsNewEventAttributes)
        /// The fields of an UpsertWorkflowSearchAttributes event.
        case upsertWorkflowSearchAttributes(UpsertWorkflowSearchAttributesEventAttributes)
        /// The fields of a WorkflowPropertiesModified event.
        case workflowPropertiesModified(WorkflowPropertiesModifiedEventAttributes)
        /// The fields of a WorkflowExecutionUpdateAccepted event.
        case workflowExecutionUpdateAccepted(WorkflowExecutionUpdateAcceptedEventAttributes)
        /// The fields of a WorkflowExecutionUpdateCompleted event.
        case workflowExecutionUpdateCompleted(WorkflowExecutionUpdateCompletedEventAttributes)
        /// The fields of a StartChildWorkflowExecutionInitiated event.
        case startChildWorkflowExecutionInitiated(StartChildWorkflowExecutionInitiatedEventAttributes)
        /// The fields of a StartChildWorkflowExecutionFailed event.
        case startChildWorkflowExecutionFailed(StartChildWorkflowExecutionFailedEventAttributes)
        /// The fields of a ChildWorkflowExecutionStarted event.
        case childWorkflowExecutionStarted(ChildWorkflowExecutionStartedEventAttributes)
        /// The fields of a ChildWorkflowExecutionCompleted, …Failed, …Canceled, …TimedOut or
        /// …Terminated event (the outcome says which).
        case childWorkflowExecutionClosed(ChildWorkflowExecutionClosedEventAttributes)
        /// The fields of a SignalExternalWorkflowExecutionInitiated event.
        case signalExternalWorkflowExecutionInitiated(SignalExternalWorkflowExecutionInitiatedEventAttributes)
        /// The fields of a SignalExternalWorkflowExecutionFailed event.
        case signalExternalWorkflowExecutionFailed(SignalExternalWorkflowExecutionFailedEventAttributes)
        /// The fields of an ExternalWorkflowExecutionSignaled event.
        case externalWorkflowExecutionSignaled(ExternalWorkflowExecutionSignaledEventAttributes)
        /// The fields of a RequestCancelExternalWorkflowExecutionInitiated event.
        case requestCancelExternalWorkflowExecutionInitiated(RequestCancelExternalWorkflowExecutionInitiatedEventAttributes)
        /// The fields of a RequestCancelExternalWorkflowExecutionFailed event.
        case requestCancelExternalWorkflowExecutionFailed(RequestCancelExternalWorkflowExecutionFailedEventAttributes)
        /// The fields of an ExternalWorkflowExecutionCancelRequested event.
        case externalWorkflowExecutionCancelRequested(ExternalWorkflowExecutionCancelRequestedEventAttributes)

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
            case .upsertWorkflowSearchAttributes: .upsertWorkflowSearchAttributes
            case .workflowPropertiesModified: .workflowPropertiesModified
            case .workflowExecutionUpdateAccepted: .workflowExecutionUpdateAccepted
            case .workflowExecutionUpdateCompleted: .workflowExecutionUpdateCompleted
            case .startChildWorkflowExecutionInitiated: .startChildWorkflowExecutionInitiated
            case .startChildWorkflowExecutionFailed: .startChildWorkflowExecutionFailed
            case .childWorkflowExecutionStarted: .childWorkflowExecutionStarted
            case .childWorkflowExecutionClosed(let a): a.outcome.eventType
            case .signalExternalWorkflowExecutionInitiated: .signalExternalWorkflowExecutionInitiated
            case .signalExternalWorkflowExecutionFailed: .signalExternalWorkflowExecutionFailed
            case .externalWorkflowExecutionSignaled: .externalWorkflowExecutionSignaled
            case .requestCancelExternalWorkflowExecutionInitiated: .requestCancelExternalWorkflowExecutionInitiated
            case .requestCancelExternalWorkflowExecutionFailed: .requestCancelExternalWorkflowExecutionFailed
            case .externalWorkflowExecutionCancelRequested: .externalWorkflowExecutionCancelRequested
            }
        }
    }
}
