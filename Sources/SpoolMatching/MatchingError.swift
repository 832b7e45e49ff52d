/// An error from the matching core: what was wrong (``Code``) and where (queue, task id).
///
/// Codes are an open set of values rather than a closed enum, so new failure kinds can be
/// added without breaking callers that switch over the ones they handle.
public struct MatchingError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable, machine-readable name such as `"invalidPriority"`.
        public let rawValue: String
        @usableFromInline init(_ rawValue: String) { self.rawValue = rawValue }
        /// The ``rawValue``.
        public var description: String { rawValue }

        /// A task queue name is empty or longer than ``TaskQueueName/maximumUTF8Length`` bytes.
        public static let invalidQueueName = Code("invalidQueueName")
        /// A task's priority is outside 1 (highest) … 5 (lowest).
        public static let invalidPriority = Code("invalidPriority")
        /// A fairness key is empty or too long, or its weight is zero.
        public static let invalidFairnessKey = Code("invalidFairnessKey")
        /// A rate limit is negative, not finite, or has a burst below 1.
        public static let invalidRateLimit = Code("invalidRateLimit")
        /// A configuration value is out of range; the message names the field.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// A poller identity is empty or too long.
        public static let invalidPollerIdentity = Code("invalidPollerIdentity")
    }

    /// The kind of failure.
    public var code: Code
    /// A sentence for humans saying what happened and what to do.
    public var message: String
    /// The task queue concerned, when there is one.
    public var queue: String?
    /// The task concerned, when there is one.
    public var taskID: UInt64?

    /// Creates an error; layers above use this to wrap their own context.
    public init(_ code: Code, _ message: String, queue: String? = nil, taskID: UInt64? = nil) {
        self.code = code
        self.message = message
        self.queue = queue
        self.taskID = taskID
    }

    /// The code, the queue and the task when known, then the message:
    /// `invalidPriority: queue 'orders': task 7: …`.
    public var description: String {
        var text = "\(code): "
        if let queue { text += "queue '\(queue)': " }
        if let taskID { text += "task \(taskID): " }
        return text + message
    }
}
