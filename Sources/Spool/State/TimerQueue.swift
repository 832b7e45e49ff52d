import HeapModule

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
    case workflowRunTimeout
    /// A closed run's retention ended: it leaves the registry.
    case retention
}

/// A timer in the heap.
struct TimerEntry: Sendable, Comparable {
    var deadline: Timestamp
    /// Ties in deadline fire in the order the timers were set.
    var sequence: UInt64
    var key: ExecutionKey
    var kind: TimerKind

    static func < (a: TimerEntry, b: TimerEntry) -> Bool {
        (a.deadline, a.sequence) < (b.deadline, b.sequence)
    }

    static func == (a: TimerEntry, b: TimerEntry) -> Bool { a.sequence == b.sequence }
}

/// One min-heap of deadlines for every timeout, retry and user timer of every run. It is not
/// durable itself: it is rebuilt on open from the replayed state (``ExecutionState/timers``).
final class TimerQueue: Sendable {
    private struct State: Sendable {
        var heap = Heap<TimerEntry>()
        var nextSequence: UInt64 = 0
        /// The timer loop, when it sleeps, and until when.
        var sleeper: (deadline: Timestamp?, continuation: UnsafeContinuation<Void, Never>)?
        var stopped = false
    }

    private let state = Locked(State())

    var count: Int { state.withLock { $0.heap.count } }

    /// Adds a timer; wakes the timer loop if it sleeps past `deadline`.
    func schedule(_ kind: TimerKind, for key: ExecutionKey, at deadline: Timestamp) {
        let wake = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            state.heap.insert(TimerEntry(deadline: deadline, sequence: state.nextSequence, key: key, kind: kind))
            state.nextSequence &+= 1
            guard let sleeper = state.sleeper, sleeper.deadline.map({ deadline < $0 }) ?? true else { return nil }
            state.sleeper = nil
            return sleeper.continuation
        }
        wake?.resume()
    }

    /// Removes and returns the timers due at `now`, earliest first.
    func popDue(now: Timestamp) -> [TimerEntry] {
        state.withLock { state in
            var due: [TimerEntry] = []
            while let first = state.heap.min, first.deadline <= now {
                due.append(state.heap.removeMin())
            }
            return due
        }
    }

    /// The earliest deadline.
    var nextDeadline: Timestamp? { state.withLock { $0.heap.min?.deadline } }

    /// Suspends until the earliest deadline (as of the call), until an earlier timer is added,
    /// or until ``stop()``; returns false once stopped.
    func sleep(clock: EngineClock) async -> Bool {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let (resumeNow, deadline) = state.withLock { state -> (Bool, Timestamp?) in
                if state.stopped { return (true, nil) }
                let deadline = state.heap.min?.deadline
                if let deadline, deadline <= clock.now() { return (true, nil) }
                state.sleeper = (deadline, continuation)
                return (false, deadline)
            }
            if resumeNow { return continuation.resume() }
            guard let deadline else { return }
            Task { [weak self] in
                try? await clock.sleep(until: deadline)
                self?.wakeSleeper(ifSleepingUntil: deadline)
            }
        }
        return !state.withLock { $0.stopped }
    }

    private func wakeSleeper(ifSleepingUntil deadline: Timestamp) {
        let wake = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            guard let sleeper = state.sleeper, sleeper.deadline == deadline else { return nil }
            state.sleeper = nil
            return sleeper.continuation
        }
        wake?.resume()
    }

    /// Wakes the timer loop for good.
    func stop() {
        let wake = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            state.stopped = true
            defer { state.sleeper = nil }
            return state.sleeper?.continuation
        }
        wake?.resume()
    }
}
