import SpoolLog

/// What ``SpoolEngine/logStatus`` reports about the engine's log.
public struct EngineLogStatus: Sendable, Equatable {
    /// The base offsets of the log's segments, oldest first; the last is the active segment.
    public var segmentBaseOffsets: [UInt64]
    /// One past the offset of the last acknowledged record.
    public var endOffset: UInt64
    /// `fdatasync` calls since the engine opened.
    public var fdatasyncs: Int
    /// Time spent in those calls, summed.
    public var fdatasyncNanoseconds: Int
    /// Records written since the engine opened.
    public var recordsWritten: Int
    /// Bytes written since the engine opened.
    public var bytesWritten: Int

    /// The mean time of one `fdatasync` since the engine opened, nil before the first.
    public var meanFdatasync: Duration? {
        fdatasyncs == 0 ? nil : .nanoseconds(fdatasyncNanoseconds / fdatasyncs)
    }
}

/// A task queue the engine holds in this process: its name and kind.
public struct KnownTaskQueue: Sendable, Hashable {
    /// The queue's name.
    public var name: String
    /// Workflow or activity.
    public var kind: TaskQueueKind
}

extension SpoolEngine {
    /// The engine's log: its segments, its end and its counters since open (for status pages;
    /// a snapshot that costs a lock and a few atomic loads).
    public var logStatus: EngineLogStatus {
        let statistics = log.statistics
        return EngineLogStatus(segmentBaseOffsets: log.segmentBaseOffsets, endOffset: log.endOffset,
                               fdatasyncs: statistics.fdatasyncs, fdatasyncNanoseconds: statistics.fdatasyncNanoseconds,
                               recordsWritten: statistics.recordsWritten, bytesWritten: statistics.bytesWritten)
    }

    /// Every task queue of `namespace` that this process has used (a run, a poll, a describe or
    /// durable settings created it), both kinds of each name, sorted by name then kind.
    /// - Throws: ``SpoolError/Code/namespaceNotFound``.
    public func taskQueueNames(namespace: String = defaultNamespace) throws(SpoolError) -> [KnownTaskQueue] {
        try checkNamespace(namespace)
        return dispatcher(namespace).listQueues().map { KnownTaskQueue(name: $0.name, kind: $0.kind) }
    }
}
