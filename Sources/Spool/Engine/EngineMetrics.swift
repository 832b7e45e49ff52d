import Metrics

/// The engine's swift-metrics instruments, created once per engine (they are no-ops unless the
/// application bootstraps a metrics backend).
struct EngineMetrics: Sendable {
    /// Durable transitions (log appends).
    let transitions = Counter(label: "spool_engine_transitions_total")
    /// History events written (buffered events count when flushed).
    let eventsWritten = Counter(label: "spool_engine_events_written_total")
    /// How long a transition's append took to become durable (group commit included).
    let appendLatency = Metrics.Timer(label: "spool_engine_append_duration")
    /// Tasks handed to the matcher, by kind.
    let workflowTasksDispatched = Counter(label: "spool_engine_tasks_dispatched_total", dimensions: [("kind", "workflow")])
    let activityTasksDispatched = Counter(label: "spool_engine_tasks_dispatched_total", dimensions: [("kind", "activity")])
    /// Queued tasks dropped at poll because their run had moved on (completed, timed out, retried).
    let staleTasksSkipped = Counter(label: "spool_engine_stale_tasks_skipped_total")
    /// Timers that came due (whether or not their state was still current).
    let timersFired = Counter(label: "spool_engine_timers_fired_total")
    /// How long a checkpoint took.
    let checkpointLatency = Metrics.Timer(label: "spool_engine_checkpoint_duration")
    /// Runs started (each run of a continue-as-new chain counts).
    let workflowsStarted = Counter(label: "spool_engine_workflows_started_total")
    /// Runs closed, by how: one counter per closing event type.
    private let workflowsClosed: [EventType: Counter] = Dictionary(uniqueKeysWithValues: [
        (EventType.workflowExecutionCompleted, "completed"), (.workflowExecutionFailed, "failed"),
        (.workflowExecutionTimedOut, "timed_out"), (.workflowExecutionCanceled, "canceled"),
        (.workflowExecutionTerminated, "terminated"), (.workflowExecutionContinuedAsNew, "continued_as_new"),
    ].map { ($0.0, Counter(label: "spool_engine_workflows_closed_total", dimensions: [("status", $0.1)])) })

    /// Counts a run closed by an event of type `closing`.
    func workflowClosed(_ closing: EventType) { workflowsClosed[closing]?.increment() }
}
