import SpoolPrimitives

/// What a durable timer does when it fires. Each kind names the state it was set for (scheduled
/// event id, attempt, started event id), and firing first checks that this state is still
/// current: a timer for a task that completed, retried or timed out meanwhile does nothing. So
/// timers are never cancelled; stale ones are dropped when they come up.
enum TimerKind: Hashable, Sendable {
    case workflowTaskStartToClose(scheduledEventID: Int64, startedEventID: Int64)
    case workflowTaskScheduleToStart(scheduledEventID: Int64)
    /// A retried workflow task's backoff ended: it goes on its queue (no log write).
    case workflowTaskDispatch(scheduledEventID: Int64)
    case activityScheduleToStart(scheduledEventID: Int64, attempt: Int32)
    case activityStartToClose(scheduledEventID: Int64, attempt: Int32)
    case activityHeartbeat(scheduledEventID: Int64, attempt: Int32)
    case activityScheduleToClose(scheduledEventID: Int64)
    /// A retry's backoff ended: the attempt goes on the activity queue (no log write).
    case activityRetry(scheduledEventID: Int64, attempt: Int32)
    case userTimer(timerID: String, startedEventID: Int64)
    /// The run timeout, or the chain's execution timeout, whichever ends first.
    case workflowRunTimeout
    /// The first-workflow-task backoff ended (start delay, retry backoff, cron wait): the
    /// first WorkflowTaskScheduled is written.
    case firstWorkflowTask
    /// A closed run's retention ended: it leaves the registry.
    case retention
}

/// A timer that came due.
struct TimerEntry: Sendable, Equatable {
    var key: ExecutionKey
    var kind: TimerKind
}

/// One min-heap of deadlines for every timeout, retry and user timer of every run. It is not
/// durable itself: it is rebuilt on open from the replayed state (``ExecutionState/timers``).
///
/// The engine's timer loop alternates ``sleep()`` and ``popDue(now:)``. While the loop
/// sleeps, one ``DeadlineSleeper`` task sleeps until the earliest deadline; a timer set earlier
/// than that moves it forward.
final class TimerQueue: Sendable {
    private struct State: Sendable {
        var heap = DeadlineHeap<Timestamp, TimerEntry>()
        /// The timer loop, when it sleeps, and until when (nil: until a timer is set).
        var loop: (deadline: Timestamp?, continuation: UnsafeContinuation<Void, Never>)?
        var stopped = false
    }

    private let clock: EngineClock
    private let state: LockedValue<State>
    private let sleeper: DeadlineSleeper<Timestamp>

    init(clock: EngineClock) {
        let state = LockedValue(State())
        self.clock = clock
        self.state = state
        sleeper = DeadlineSleeper(sleep: { try await clock.sleep(until: $0) }) { _ in
            let loop = state.withLock { state -> UnsafeContinuation<Void, Never>? in
                defer { state.loop = nil }
                return state.loop?.continuation
            }
            loop?.resume()
        }
    }

    var count: Int { state.withLock { $0.heap.count } }

    /// Adds a timer; wakes the timer loop if it sleeps past `deadline`.
    func schedule(_ kind: TimerKind, for key: ExecutionKey, at deadline: Timestamp) {
        let wakesLoop = state.withLock { state -> Bool in
            state.heap.insert(TimerEntry(key: key, kind: kind), at: deadline)
            guard let loop = state.loop, loop.deadline.map({ deadline < $0 }) ?? true else { return false }
            state.loop?.deadline = deadline
            return true
        }
        if wakesLoop { sleeper.wake(at: deadline) }
    }

    /// Removes and returns the timers due at `now`, earliest first (ties in the order they were set).
    func popDue(now: Timestamp) -> [TimerEntry] {
        state.withLock { $0.heap.popDue(at: now) }
    }

    /// The earliest deadline.
    var nextDeadline: Timestamp? { state.withLock { $0.heap.earliestDeadline } }

    /// Suspends until the earliest deadline (as of the call), until an earlier timer is added,
    /// or until ``stop()``; returns false once stopped.
    func sleep() async -> Bool {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let (resumeNow, deadline) = state.withLock { state -> (Bool, Timestamp?) in
                if state.stopped { return (true, nil) }
                let deadline = state.heap.earliestDeadline
                if let deadline, deadline <= clock.now() { return (true, nil) }
                state.loop = (deadline, continuation)
                return (false, deadline)
            }
            if resumeNow { return continuation.resume() }
            if let deadline { sleeper.wake(at: deadline) }
        }
        return !state.withLock { $0.stopped }
    }

    /// Wakes the timer loop for good.
    func stop() {
        let wake = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            state.stopped = true
            defer { state.loop = nil }
            return state.loop?.continuation
        }
        sleeper.stop()
        wake?.resume()
    }
}
