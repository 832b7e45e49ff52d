#if canImport(Glibc)
import Glibc
#endif

/// An error from the log: what went wrong (``Code``), where (path, offset), and why (the underlying cause).
///
/// Codes are an open set of values rather than a closed enum, so new failure kinds
/// can be added without breaking callers that switch over the ones they handle.
public struct LogError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable, machine-readable name such as `"checksumMismatch"`.
        public let rawValue: String
        init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A configuration value is out of range; the message names the field.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// A caller passed a value the operation cannot accept (an empty batch, an oversized record).
        public static let invalidArgument = Code("invalidArgument")
        /// Another process (or another ``Log`` in this process) holds the directory's lock.
        public static let directoryLocked = Code("directoryLocked")
        /// The path exists but does not hold a Spool log (unknown files where segments should be).
        public static let notALogDirectory = Code("notALogDirectory")
        /// A batch failed its CRC32C check or its header is malformed, before the tail of the log.
        public static let corruptBatch = Code("corruptBatch")
        /// A checkpoint or marker file is malformed.
        public static let corruptCheckpoint = Code("corruptCheckpoint")
        /// The requested offset is below the log start, at or past its end, or was compacted away.
        public static let offsetOutOfRange = Code("offsetOutOfRange")
        /// A record is larger than ``LogConfiguration/maxRecordBytes``.
        public static let recordTooLarge = Code("recordTooLarge")
        /// An earlier write or fsync failed; the log accepts no more calls and must be reopened.
        public static let poisoned = Code("poisoned")
        /// The log was closed.
        public static let closed = Code("closed")
        /// A system call failed; ``LogError/underlying`` holds the ``SystemError``.
        public static let io = Code("io")
        /// LZ4 could not decompress a payload whose checksum was valid (a bug or a foreign writer).
        public static let decompressionFailed = Code("decompressionFailed")
    }

    /// The kind of failure.
    public var code: Code
    /// A sentence for humans saying what happened and, where it helps, what to do.
    public var message: String
    /// The file concerned, when there is one.
    public var path: String?
    /// The byte position in `path`, or the log offset, that the message names.
    public var offset: UInt64?
    /// The cause, typically a ``SystemError``.
    public var underlying: (any Error & Sendable)?

    /// Creates an error; the layers above use this to wrap their own context.
    public init(_ code: Code, _ message: String, path: String? = nil, offset: UInt64? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.underlying = underlying
    }

    public var description: String {
        var text = "\(code): "
        if let path { text += "\(path): " }
        text += message
        if let underlying { text += " (\(underlying))" }
        return text
    }
}

/// A failed system call: its name, the path it was applied to, and `errno`.
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The system call, such as `"fdatasync"`.
    public var call: String
    /// The `errno` value.
    public var errno: Int32
    /// The path concerned, when known.
    public var path: String?

    /// Creates a system error value (tests use this to inject faults).
    public init(call: String, errno: Int32, path: String? = nil) {
        self.call = call
        self.errno = errno
        self.path = path
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        if let path { return "\(call)(\(path)): \(reason) (errno \(errno))" }
        return "\(call): \(reason) (errno \(errno))"
    }
}

extension LogError {
    static func io(_ error: SystemError, _ what: String, path: String? = nil) -> LogError {
        LogError(.io, what, path: path ?? error.path, underlying: error)
    }
}
