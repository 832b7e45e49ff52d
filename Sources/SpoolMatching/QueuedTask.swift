/// The two queues every task-queue name has: one for workflow tasks, one for activity tasks.
public enum TaskQueueKind: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The queue of workflow tasks.
    case workflow
    /// The queue of activity tasks.
    case activity

    /// `workflow` or `activity`.
    public var description: String { self == .workflow ? "workflow" : "activity" }
}

/// Task-queue names: non-empty UTF-8 text of at most ``maximumUTF8Length`` bytes without
/// control characters (see ``IdentifierText``). Worker- or host-specific queues are ordinary names.
public enum TaskQueueName {
    /// The longest name accepted, in UTF-8 bytes (Temporal's default `limit.maxIDLength`).
    public static let maximumUTF8Length = IdentifierText.maximumUTF8Length

    /// Throws ``MatchingError/Code/invalidQueueName`` unless `name` is acceptable: non-empty, at
    /// most ``maximumUTF8Length`` UTF-8 bytes, no control character (newline, tab, NUL, …), no
    /// U+FFFD (see ``IdentifierText``).
    public static func validate(_ name: String) throws(MatchingError) {
        if let problem = IdentifierText.problem(in: name, maximumUTF8Length: maximumUTF8Length) {
            throw MatchingError(.invalidQueueName, "a task queue name must be 1…\(maximumUTF8Length) UTF-8 bytes of text "
                                + "without control characters, but \(problem)", queue: IdentifierText.shown(name))
        }
    }

    /// Only the checks that names recorded before ``validate(_:)`` refused control characters
    /// passed: non-empty and at most ``maximumUTF8Length`` bytes. For names read back from a
    /// store, so that a queue named before the stricter rules stays reachable.
    @usableFromInline
    package static func validateRecorded(_ name: String) throws(MatchingError) {
        let length = name.utf8.count
        guard length > 0, length <= maximumUTF8Length else {
            throw MatchingError(.invalidQueueName, "a task queue name is \(length) UTF-8 bytes; it must be 1…\(maximumUTF8Length)",
                                queue: IdentifierText.shown(name))
        }
    }
}

/// Task priorities: 1 is the highest, 5 the lowest; 3 is the default.
public enum TaskPriority {
    /// The highest priority.
    public static let highest = 1
    /// The lowest priority.
    public static let lowest = 5
    /// The priority of a task that states none.
    public static let `default` = 3
    /// Every valid priority, highest first.
    public static let all = highest...lowest
}

/// A fairness key: tasks of one priority that carry keys are dispatched in proportion to
/// their keys' weights (stride scheduling), so one busy tenant cannot starve the others.
public struct FairnessKey: Hashable, Sendable {
    /// The longest key accepted, in UTF-8 bytes.
    public static let maximumUTF8Length = 256

    /// The key, such as a tenant or customer id.
    public var key: String
    /// The key's share relative to other keys, in thousandths of the share of a key of weight 1
    /// (the matcher's unit; 1 is the smallest share, 1/1000 of weight 1).
    public var weightThousandths: UInt64

    /// The key's share relative to other keys, in whole units; at least 1 (a fractional weight
    /// reads back rounded down).
    public var weight: UInt32 {
        get { UInt32(clamping: weightThousandths / 1000) }
        set { weightThousandths = UInt64(newValue) * 1000 }
    }

    /// A key with its weight. Not validated here: ``TaskQueue/add(_:)`` throws
    /// ``MatchingError/Code/invalidFairnessKey`` for an empty or oversized key or a weight of 0.
    @inlinable
    public init(_ key: String, weight: UInt32 = 1) {
        self.key = key
        self.weightThousandths = UInt64(weight) * 1000
    }

    /// A key with a fractional weight given in thousandths (`1500` is weight 1.5), for callers
    /// whose weights are fractions, such as Temporal's `fairness_weight` (0.001 … 1000).
    @inlinable
    public init(_ key: String, weightThousandths: UInt64) {
        self.key = key
        self.weightThousandths = weightThousandths
    }
}

/// A task as the matcher sees it: an id, a priority, an optional fairness key, an optional
/// schedule-to-start deadline, and an opaque payload the matcher never looks at (a log
/// position, a history event reference, the bytes of a small task).
public struct QueuedTask<Payload: Sendable>: Sendable {
    // Stored as six words for a word-sized payload, so that a ring slot (two words of sequence
    // and stamp, then the task) is one 64-byte cache line: a hand-off then moves one line from
    // the producer's core to the poller's, not two. The key is boxed and the deadline is a plain
    // word: with a `FairnessKey?` (a string inside an optional) stored inline, the specialized
    // task was copied and destroyed through its type metadata's value witnesses (measured: about
    // a fifth of the dispatcher's CPU time in `spool bench dispatch`); boxed, a copy is one
    // retain of an optional reference.

    /// The caller's id for the task; the matcher does not require ids to be unique.
    public var id: UInt64
    /// 1 (highest) … 5 (lowest); see ``TaskPriority``.
    public var priority: Int
    @usableFromInline var fairnessBox: FairnessKeyBox?
    /// `scheduleToStartDeadline` in nanoseconds, `UInt64.max` for none.
    @usableFromInline var deadlineNanoseconds: UInt64
    /// When the task entered the queue: set by `add`, which replaces any value given.
    public var enqueuedAt: MatchingInstant
    /// The caller's data.
    public var payload: Payload

    /// The task's fairness key, if it has one.
    @inlinable
    public var fairness: FairnessKey? {
        get { fairnessBox?.key }
        set { fairnessBox = newValue.map(FairnessKeyBox.init) }
    }

    /// The instant after which the task is no longer worth starting: it is then dropped at
    /// hand-over (reported to ``DispatcherConfiguration/onExpired``), and takes no rate-limit token.
    /// A deadline at the clock's last instant (`UInt64.max` nanoseconds) never passes and reads back as nil.
    @inlinable
    public var scheduleToStartDeadline: MatchingInstant? {
        get { deadlineNanoseconds == .max ? nil : MatchingInstant(nanoseconds: deadlineNanoseconds) }
        set { deadlineNanoseconds = newValue?.nanoseconds ?? .max }
    }

    /// A task; ``enqueuedAt`` is set when it is added. Not validated here: ``TaskQueue/add(_:)``
    /// throws for a priority outside 1…5 or an invalid fairness key.
    @inlinable
    public init(id: UInt64, priority: Int = TaskPriority.default, fairness: FairnessKey? = nil,
                scheduleToStartDeadline: MatchingInstant? = nil, payload: Payload) {
        self.id = id
        self.priority = priority
        self.fairnessBox = fairness.map(FairnessKeyBox.init)
        self.deadlineNanoseconds = scheduleToStartDeadline?.nanoseconds ?? .max
        self.enqueuedAt = MatchingInstant(nanoseconds: 0)
        self.payload = payload
    }
}

/// A fairness key on the heap (see ``QueuedTask/fairness``). Immutable.
@usableFromInline
final class FairnessKeyBox: Sendable {
    @usableFromInline let key: FairnessKey
    @inlinable init(_ key: FairnessKey) { self.key = key }
}

/// A task dropped because its schedule-to-start deadline passed before a poller took it.
public struct ExpiredTask: Sendable {
    /// The queue's name.
    public var queue: String
    /// The queue's kind.
    public var kind: TaskQueueKind
    /// The task's id.
    public var id: UInt64
    /// The task's deadline.
    public var deadline: MatchingInstant
    /// When it was dropped.
    public var droppedAt: MatchingInstant
}

/// A rate: at most `perSecond` tasks per second on average, with at most `burst` at once.
/// A rate of 0 pauses the queue.
public struct RateLimit: Hashable, Sendable, CustomStringConvertible {
    /// Tasks per second; 0 pauses.
    public var perSecond: Double
    /// Tasks that may be dispatched back to back after an idle period; at least 1.
    public var burst: Int

    /// A rate of `perSecond` tasks per second with bursts of `burst`; checked by ``validate(queue:)``
    /// (and by ``TaskQueue/setRateLimit(_:)``, which calls it).
    @inlinable
    public init(perSecond: Double, burst: Int = 1) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// Throws ``MatchingError/Code/invalidRateLimit`` for a negative or non-finite rate or a burst below 1.
    public func validate(queue: String?) throws(MatchingError) {
        guard perSecond.isFinite, perSecond >= 0 else {
            throw MatchingError(.invalidRateLimit, "a rate limit must be a finite number of tasks per second ≥ 0 (got \(perSecond))", queue: queue)
        }
        guard burst >= 1 else {
            throw MatchingError(.invalidRateLimit, "a rate limit's burst must be at least 1 (got \(burst))", queue: queue)
        }
    }

    /// Such as `100.0/s burst 10`.
    public var description: String { "\(perSecond)/s burst \(burst)" }
}
