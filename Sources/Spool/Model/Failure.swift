/// Why something failed: an activity attempt, a workflow, a workflow task (Temporal's
/// `temporal.api.failure.v1.Failure`, flattened to the fields Spool uses).
public struct Failure: Hashable, Sendable, CustomStringConvertible {
    /// A sentence for humans.
    public var message: String
    /// The application's error type; retry policies match it against their non-retryable types.
    /// Timeouts use `"TimeoutError"`.
    public var type: String
    /// True when retrying cannot help: the activity fails at once whatever its retry policy.
    public var nonRetryable: Bool
    /// The application's details.
    public var details: Payloads?
    /// The delay before the next attempt, overriding the retry policy's backoff for this one.
    public var nextRetryDelay: Duration?
    /// For a timeout failure, which timeout fired.
    public var timeoutType: TimeoutType?
    /// For a heartbeat or start-to-close timeout, the last details the activity heartbeated.
    public var lastHeartbeatDetails: Payloads?

    /// A failure.
    public init(message: String, type: String = "", nonRetryable: Bool = false, details: Payloads? = nil,
                nextRetryDelay: Duration? = nil, timeoutType: TimeoutType? = nil, lastHeartbeatDetails: Payloads? = nil) {
        self.message = message
        self.type = type
        self.nonRetryable = nonRetryable
        self.details = details
        self.nextRetryDelay = nextRetryDelay
        self.timeoutType = timeoutType
        self.lastHeartbeatDetails = lastHeartbeatDetails
    }

    /// The failure Spool records when `timeout` fires.
    public static func timeout(_ timeout: TimeoutType, lastHeartbeatDetails: Payloads? = nil) -> Failure {
        Failure(message: "activity \(timeout) timeout", type: "TimeoutError", timeoutType: timeout,
                lastHeartbeatDetails: lastHeartbeatDetails)
    }

    public var description: String { type.isEmpty ? message : "\(type): \(message)" }
}

/// How an activity is retried (Temporal's `RetryPolicy`). The defaults are Temporal's.
///
/// The delay before attempt *n + 1* is `initialInterval × backoffCoefficient^(n − 1)`, at most
/// `maximumInterval`. Retries stop after `maximumAttempts` attempts (0: unlimited), when the
/// next attempt would start after the schedule-to-close deadline, or on a failure whose type is
/// in `nonRetryableErrorTypes` (exact match) or that says it is non-retryable.
public struct RetryPolicy: Hashable, Sendable {
    /// The delay before the first retry. Default 1 s.
    public var initialInterval: Duration
    /// The factor by which each delay grows. Default 2.0; at least 1.
    public var backoffCoefficient: Double
    /// The longest delay; nil means 100 × `initialInterval`.
    public var maximumInterval: Duration?
    /// The most attempts, the first included; 0 means unlimited.
    public var maximumAttempts: Int32
    /// Failure types that are never retried.
    public var nonRetryableErrorTypes: [String]

    /// A policy; every argument defaults to Temporal's value.
    public init(initialInterval: Duration = .seconds(1), backoffCoefficient: Double = 2.0,
                maximumInterval: Duration? = nil, maximumAttempts: Int32 = 0, nonRetryableErrorTypes: [String] = []) {
        self.initialInterval = initialInterval
        self.backoffCoefficient = backoffCoefficient
        self.maximumInterval = maximumInterval
        self.maximumAttempts = maximumAttempts
        self.nonRetryableErrorTypes = nonRetryableErrorTypes
    }

    /// The effective maximum interval.
    var cappedInterval: Duration { maximumInterval ?? initialInterval * 100 }

    /// The delay before the attempt after `attempt` (1-based).
    func backoff(afterAttempt attempt: Int32) -> Duration {
        let initial = Double(initialInterval.nanoseconds)
        let cap = Double(cappedInterval.nanoseconds)
        var delay = initial
        var step: Int32 = 1
        while step < attempt && delay < cap {
            delay *= backoffCoefficient
            step += 1
        }
        return .nanoseconds(Int64(min(delay, cap)))
    }

    /// Why the policy is unusable, or nil.
    func validationError() -> String? {
        if initialInterval <= .zero { return "retry policy initialInterval must be positive" }
        if !(backoffCoefficient >= 1) || !backoffCoefficient.isFinite { return "retry policy backoffCoefficient must be at least 1" }
        if let maximumInterval, maximumInterval < initialInterval { return "retry policy maximumInterval is below initialInterval" }
        if maximumAttempts < 0 { return "retry policy maximumAttempts must not be negative" }
        return nil
    }
}
