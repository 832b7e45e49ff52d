import SpoolLog
import SpoolMatching

/// An error from the durable task queues: what was wrong (``Code``), where (queue, task id,
/// path), and why (the underlying ``LogError`` or ``MatchingError``, when there is one).
///
/// Codes are an open set of values rather than a closed enum, so new failure kinds can be
/// added without breaking callers that switch over the ones they handle. Every error thrown
/// for bad input is thrown before anything is written.
public struct QueueError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable, machine-readable name such as `"unknownTask"`.
        public let rawValue: String
        init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A task queue name is empty or longer than `TaskQueueName.maximumUTF8Length` bytes.
        public static let invalidQueueName = Code("invalidQueueName")
        /// A priority is outside 1 (highest) … 5 (lowest).
        public static let invalidPriority = Code("invalidPriority")
        /// A fairness key is empty or too long, or its weight is zero.
        public static let invalidFairnessKey = Code("invalidFairnessKey")
        /// A rate limit is negative, not finite, or has a burst below 1.
        public static let invalidRateLimit = Code("invalidRateLimit")
        /// A poller identity is empty or too long.
        public static let invalidPollerIdentity = Code("invalidPollerIdentity")
        /// A configuration value is out of range; the message names the field.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// A caller passed a value the operation cannot accept (a negative timeout, an empty reason…).
        public static let invalidArgument = Code("invalidArgument")
        /// A payload (with its record header) is larger than the log's `maxRecordBytes`.
        public static let payloadTooLarge = Code("payloadTooLarge")
        /// The task id is not a task in flight: never delivered, already completed or failed,
        /// redelivered after its visibility timeout, or purged.
        public static let unknownTask = Code("unknownTask")
        /// Another process (or another ``TaskStore`` in this one) has the directory open.
        public static let directoryLocked = Code("directoryLocked")
        /// The directory (or its parent) does not exist, or is not a directory.
        public static let directoryMissing = Code("directoryMissing")
        /// A record of the queue log or the checkpoint file does not decode: the store was
        /// written by something else, or damaged in a way the log's checksums did not catch.
        public static let corruptRecord = Code("corruptRecord")
        /// The store was closed.
        public static let closed = Code("closed")
        /// The log failed (I/O error, poisoned after a failed fsync, corrupt batch);
        /// ``QueueError/underlying`` holds the ``LogError``. Reopen the store to recover.
        public static let log = Code("log")
    }

    /// The kind of failure.
    public var code: Code
    /// A sentence for humans saying what happened and, where it helps, what to do.
    public var message: String
    /// The task queue concerned, when there is one.
    public var queue: String?
    /// The task concerned, when there is one.
    public var taskID: UInt64?
    /// The file or directory concerned, when there is one.
    public var path: String?
    /// The cause: a ``LogError`` or a ``MatchingError``.
    public var underlying: (any Error & Sendable)?

    /// Creates an error.
    public init(_ code: Code, _ message: String, queue: String? = nil, taskID: UInt64? = nil, path: String? = nil,
                underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.queue = queue
        self.taskID = taskID
        self.path = path
        self.underlying = underlying
    }

    public var description: String {
        var text = "\(code): "
        if let path { text += "\(path): " }
        if let queue { text += "queue '\(queue)': " }
        if let taskID { text += "task \(taskID): " }
        text += message
        if let underlying { text += " (\(underlying))" }
        return text
    }
}

extension QueueError {
    /// Wraps a log failure; keeps the log's code visible in the message.
    static func log(_ error: LogError, _ what: String) -> QueueError {
        switch error.code {
        case .directoryLocked:
            return QueueError(.directoryLocked, "the task store is open in another process (or another TaskStore in this one); close it first",
                              path: error.path, underlying: error)
        case .invalidConfiguration:
            return QueueError(.invalidConfiguration, "log: \(error.message)", path: error.path, underlying: error)
        case .closed:
            return QueueError(.closed, "the task store is closed", path: error.path, underlying: error)
        default:
            return QueueError(.log, "\(what): \(error.message)", path: error.path, underlying: error)
        }
    }

    /// Translates a matching-core validation error into the queue's codes.
    static func matching(_ error: MatchingError) -> QueueError {
        let code: Code
        switch error.code {
        case .invalidQueueName: code = .invalidQueueName
        case .invalidPriority: code = .invalidPriority
        case .invalidFairnessKey: code = .invalidFairnessKey
        case .invalidRateLimit: code = .invalidRateLimit
        case .invalidPollerIdentity: code = .invalidPollerIdentity
        case .invalidConfiguration: code = .invalidConfiguration
        default: code = .invalidArgument
        }
        return QueueError(code, error.message, queue: error.queue, taskID: error.taskID, underlying: error)
    }

    static func closedStore() -> QueueError {
        QueueError(.closed, "the task store is closed; open it again")
    }
}

extension QueueError: BinaryDecodingFailure {
    /// Bytes that do not decode are a ``QueueError/Code/corruptRecord``.
    @usableFromInline package static func undecodable(_ message: String) -> QueueError {
        QueueError(.corruptRecord, message)
    }
}
