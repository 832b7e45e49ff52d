/// Why something failed: an activity attempt, a workflow, a workflow task (Temporal's
/// `temporal.api.failure.v1.Failure`, every field).
///
/// A failure names its kind through ``info`` (an application error, a timeout, a cancellation,
/// …) and may wrap the failure that caused it in ``cause``, to any depth: an SDK reports an
/// activity failure to its workflow as an ``FailureInfo/activity(_:)`` failure whose cause is the
/// activity's own error. SDKs that encrypt failures move the message and stack trace into
/// ``encodedAttributes``; the engine keeps every field as it was sent.
public struct Failure: Hashable, Sendable, CustomStringConvertible {
    // The fields live behind one reference, copied on write: a failure is 8 bytes wherever it
    // is held (history events, task and run state), however long its message, stack trace and
    // cause chain, and a run that never fails pays nothing for the fields it does not use.
    private final class Storage: @unchecked Sendable {
        // Mutated only through `Failure.writable()`, when this storage is not shared.
        var message: String
        var source: String
        var stackTrace: String
        var encodedAttributes: Payload?
        var info: FailureInfo?
        var cause: Failure?

        init(message: String, source: String, stackTrace: String, encodedAttributes: Payload?, info: FailureInfo?, cause: Failure?) {
            self.message = message
            self.source = source
            self.stackTrace = stackTrace
            self.encodedAttributes = encodedAttributes
            self.info = info
            self.cause = cause
        }

        func copy() -> Storage {
            Storage(message: message, source: source, stackTrace: stackTrace, encodedAttributes: encodedAttributes, info: info, cause: cause)
        }
    }

    private var storage: Storage

    private mutating func writable() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return storage
    }

    /// A sentence for humans.
    public var message: String {
        get { storage.message }
        set { writable().message = newValue }
    }
    /// What produced the failure: an SDK's name (`"PythonSDK"`, `"GoSDK"`), or `"Server"` for the
    /// failures the engine makes.
    public var source: String {
        get { storage.source }
        set { writable().source = newValue }
    }
    /// The stack trace where the failure was raised, as the SDK wrote it.
    public var stackTrace: String {
        get { storage.stackTrace }
        set { writable().stackTrace = newValue }
    }
    /// The message and stack trace encoded by an SDK's failure converter (then ``message`` is
    /// usually `"Encoded failure"`); nil when not encoded.
    public var encodedAttributes: Payload? {
        get { storage.encodedAttributes }
        set { writable().encodedAttributes = newValue }
    }
    /// What kind of failure this is and its kind's fields; nil when the sender set none.
    public var info: FailureInfo? {
        get { storage.info }
        set { writable().info = newValue }
    }
    /// The failure that caused this one, itself with a cause, to any depth; nil at the root.
    public var cause: Failure? {
        get { storage.cause }
        set { writable().cause = newValue }
    }

    /// A failure with every field given.
    public init(message: String, source: String = "", stackTrace: String = "", encodedAttributes: Payload? = nil,
                cause: Failure? = nil, info: FailureInfo? = nil) {
        storage = Storage(message: message, source: source, stackTrace: stackTrace, encodedAttributes: encodedAttributes,
                          info: info, cause: cause)
    }

    public static func == (lhs: Failure, rhs: Failure) -> Bool {
        if lhs.storage === rhs.storage { return true }
        return lhs.message == rhs.message && lhs.source == rhs.source && lhs.stackTrace == rhs.stackTrace
            && lhs.encodedAttributes == rhs.encodedAttributes && lhs.info == rhs.info && lhs.cause == rhs.cause
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(message)
        hasher.combine(source)
        hasher.combine(stackTrace)
        hasher.combine(encodedAttributes)
        hasher.combine(info)
        hasher.combine(cause)
    }

    /// An application failure: what a workflow or activity raises (Temporal's `ApplicationError`).
    ///
    /// - Parameters:
    ///   - type: the application's error type; retry policies match it against their
    ///     non-retryable error types.
    ///   - nonRetryable: true when retrying cannot help: the activity fails at once whatever its
    ///     retry policy.
    ///   - details: the application's details.
    ///   - nextRetryDelay: the delay before the next attempt, overriding the retry policy's backoff.
    public static func application(_ message: String, type: String = "", nonRetryable: Bool = false, details: Payloads? = nil,
                                   nextRetryDelay: Duration? = nil, cause: Failure? = nil, source: String = "",
                                   stackTrace: String = "") -> Failure {
        Failure(message: message, source: source, stackTrace: stackTrace, cause: cause,
                info: .application(ApplicationFailureInfo(type: type, nonRetryable: nonRetryable, details: details,
                                                           nextRetryDelay: nextRetryDelay)))
    }

    /// The failure Temporal's server writes when an activity's `timeout` fires: message
    /// `"activity StartToClose timeout"` (the timeout's name), source `"Server"`, timeout info
    /// with the activity's last heartbeat details.
    public static func timeout(_ timeout: TimeoutType, lastHeartbeatDetails: Payloads? = nil) -> Failure {
        Failure(message: "activity \(timeout) timeout", source: serverSource,
                info: .timeout(TimeoutFailureInfo(timeoutType: timeout, lastHeartbeatDetails: lastHeartbeatDetails)))
    }

    /// A failure the engine makes itself (an invalid command), as Temporal's `NewServerFailure`.
    public static func server(_ message: String, nonRetryable: Bool = false) -> Failure {
        Failure(message: message, info: .server(ServerFailureInfo(nonRetryable: nonRetryable)))
    }

    /// The ``source`` of the failures the engine makes, as Temporal's server writes it.
    public static let serverSource = "Server"

    /// The application error type, or `""` when this is not an application failure.
    public var applicationType: String {
        if case .application(let info)? = info { return info.type }
        return ""
    }

    /// The application failure's own retry delay, if any.
    public var nextRetryDelay: Duration? {
        if case .application(let info)? = info { return info.nextRetryDelay }
        return nil
    }

    /// Whether a retry policy with `nonRetryableErrorTypes` may retry after this failure
    /// (Temporal's `isRetryable`): never after a cancellation or termination; after a timeout only
    /// for start-to-close and heartbeat timeouts not listed as `"TemporalTimeout:StartToClose"` /
    /// `"TemporalTimeout:Heartbeat"`; after a server failure unless it is non-retryable; after an
    /// application failure unless it is non-retryable or its type is listed; otherwise yes.
    public func isRetryable(nonRetryableErrorTypes: [String]) -> Bool {
        switch info {
        case .terminated?, .canceled?: return false
        case .timeout(let timeout)?:
            guard timeout.timeoutType == .startToClose || timeout.timeoutType == .heartbeat else { return false }
            return !nonRetryableErrorTypes.contains("TemporalTimeout:\(timeout.timeoutType)")
        case .server(let server)?: return !server.nonRetryable
        case .application(let application)?:
            return !application.nonRetryable && !nonRetryableErrorTypes.contains(application.type)
        case .activity?, nil: return true
        }
    }

    public var description: String {
        var text = applicationType.isEmpty ? message : "\(applicationType): \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }
}

/// The kind of a ``Failure`` and the fields of that kind (Temporal's `oneof failure_info`).
///
/// Temporal has more kinds (child workflow, Nexus operation, reset workflow) that Spool does not
/// produce yet; this enum will grow cases for them, so a `switch` over it should have a `default`.
public enum FailureInfo: Hashable, Sendable {
    /// An error raised by application code.
    case application(ApplicationFailureInfo)
    /// A timeout fired.
    case timeout(TimeoutFailureInfo)
    /// Something was canceled.
    case canceled(CanceledFailureInfo)
    /// The workflow was terminated.
    case terminated(TerminatedFailureInfo)
    /// The server failed the call.
    case server(ServerFailureInfo)
    /// An activity failed; the ``Failure/cause`` is the activity's own failure.
    case activity(ActivityFailureInfo)
}

/// How an application failure is classified (Temporal's `ApplicationErrorCategory`, same numbers).
public enum ApplicationErrorCategory: UInt8, Hashable, Sendable, CaseIterable {
    /// No category.
    case unspecified = 0
    /// An expected failure that need not be logged or alerted on as an error.
    case benign = 1
}

/// The fields of an application failure (Temporal's `ApplicationFailureInfo`).
public struct ApplicationFailureInfo: Hashable, Sendable {
    /// The application's error type; retry policies match it exactly.
    public var type: String
    /// True when retrying cannot help.
    public var nonRetryable: Bool
    /// The application's details.
    public var details: Payloads?
    /// The delay before the next attempt, overriding the retry policy's backoff for this one.
    public var nextRetryDelay: Duration?
    /// How the failure is classified.
    public var category: ApplicationErrorCategory

    /// Application failure fields.
    public init(type: String = "", nonRetryable: Bool = false, details: Payloads? = nil, nextRetryDelay: Duration? = nil,
                category: ApplicationErrorCategory = .unspecified) {
        self.type = type
        self.nonRetryable = nonRetryable
        self.details = details
        self.nextRetryDelay = nextRetryDelay
        self.category = category
    }
}

/// The fields of a timeout failure (Temporal's `TimeoutFailureInfo`).
public struct TimeoutFailureInfo: Hashable, Sendable {
    /// Which timeout fired.
    public var timeoutType: TimeoutType
    /// For an activity timeout, the details of its last heartbeat.
    public var lastHeartbeatDetails: Payloads?

    /// Timeout failure fields.
    public init(timeoutType: TimeoutType, lastHeartbeatDetails: Payloads? = nil) {
        self.timeoutType = timeoutType
        self.lastHeartbeatDetails = lastHeartbeatDetails
    }
}

/// The fields of a cancellation failure (Temporal's `CanceledFailureInfo`).
public struct CanceledFailureInfo: Hashable, Sendable {
    /// Details given with the cancellation.
    public var details: Payloads?
    /// Who canceled.
    public var identity: String

    /// Cancellation failure fields.
    public init(details: Payloads? = nil, identity: String = "") {
        self.details = details
        self.identity = identity
    }
}

/// The fields of a termination failure (Temporal's `TerminatedFailureInfo`).
public struct TerminatedFailureInfo: Hashable, Sendable {
    /// Who terminated.
    public var identity: String

    /// Termination failure fields.
    public init(identity: String = "") { self.identity = identity }
}

/// The fields of a server failure (Temporal's `ServerFailureInfo`).
public struct ServerFailureInfo: Hashable, Sendable {
    /// True when retrying cannot help.
    public var nonRetryable: Bool

    /// Server failure fields.
    public init(nonRetryable: Bool = false) { self.nonRetryable = nonRetryable }
}

/// The fields of an activity failure: which activity failed, as the workflow saw it (Temporal's
/// `ActivityFailureInfo`; SDKs write it, its ``Failure/cause`` is the activity's own failure).
public struct ActivityFailureInfo: Hashable, Sendable {
    /// The activity's ActivityTaskScheduled event.
    public var scheduledEventID: Int64
    /// Its ActivityTaskStarted event.
    public var startedEventID: Int64
    /// The worker that ran it.
    public var identity: String
    /// Its type.
    public var activityType: String
    /// Its id.
    public var activityID: String
    /// Why it stopped being retried.
    public var retryState: RetryState

    /// Activity failure fields.
    public init(scheduledEventID: Int64 = 0, startedEventID: Int64 = 0, identity: String = "", activityType: String = "",
                activityID: String = "", retryState: RetryState = .unspecified) {
        self.scheduledEventID = scheduledEventID
        self.startedEventID = startedEventID
        self.identity = identity
        self.activityType = activityType
        self.activityID = activityID
        self.retryState = retryState
    }
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
