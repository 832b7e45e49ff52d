import SpoolLog

/// One broken engine invariant found by ``SpoolEngine/verifyHistory(directory:)``: where it is
/// (the segment file and the byte position of the batch holding the record, and the record's log
/// offset; or the checkpoint file), the run it concerns, and what is wrong.
public struct HistoryFinding: Sendable, Equatable, CustomStringConvertible {
    /// What kind of invariant is broken.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        /// A stable, machine-readable name such as `"eventIDGap"`.
        public let rawValue: String
        init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A record's checksum matches but its bytes are not a transition record.
        public static let undecodableRecord = Kind("undecodableRecord")
        /// The first record of a run does not start it with WorkflowExecutionStarted as event 1.
        public static let runNotStarted = Kind("runNotStarted")
        /// An event id is not the one after the previous event of its run (a gap or a repeat).
        public static let eventIDGap = Kind("eventIDGap")
        /// A change of a run comes after the event that closed it.
        public static let eventAfterClose = Kind("eventAfterClose")
        /// An event names another event (scheduled, started, timer started, workflow task
        /// completed, cancel requested) that is not an earlier event of the right type.
        public static let badEventReference = Kind("badEventReference")
        /// A change does not fit the run's state (replay would refuse it: opening fails).
        public static let rejectedChange = Kind("rejectedChange")
        /// An open run's outstanding workflow task, activity or timer has no event that scheduled it.
        public static let taskWithoutEvent = Kind("taskWithoutEvent")
        /// The checkpoint file (or the closed-run table it names) cannot be decoded, or names log
        /// offsets the log does not hold (opening ignores it and replays the whole log).
        public static let checkpointUnreadable = Kind("checkpointUnreadable")
        /// A run's state in the checkpoint differs from the state its history rebuilds.
        public static let checkpointStateMismatch = Kind("checkpointStateMismatch")
        /// A run's record offsets in the checkpoint are not the records the log holds for it.
        public static let checkpointOffsetsMismatch = Kind("checkpointOffsetsMismatch")
        /// An open run whose records lie before the checkpoint's replay-from is missing from it
        /// (opening would not restore it).
        public static let checkpointMissingRun = Kind("checkpointMissingRun")
    }

    /// What kind of invariant is broken.
    public var kind: Kind
    /// The segment file holding the record, or the checkpoint file.
    public var file: String
    /// Byte position, in ``file``, of the batch holding the record; nil for the checkpoint.
    public var position: Int?
    /// Log offset of the record concerned (for the checkpoint: the run's last record offset).
    public var offset: UInt64?
    /// The run concerned, when there is one.
    public var namespace: String?
    public var execution: WorkflowExecution?
    /// The event concerned, when there is one.
    public var eventID: Int64?
    /// What is wrong, in a sentence.
    public var message: String

    public var description: String {
        var text = "\(kind): \(file)"
        if let position { text += " byte \(position)" }
        if let offset { text += " (log offset \(offset))" }
        if let execution { text += ", run \(namespace ?? "")/\(execution.workflowID)/\(execution.runID)" }
        if let eventID { text += ", event \(eventID)" }
        return text + ": " + message
    }
}

/// What ``SpoolEngine/verifyHistory(directory:)`` read and found.
public struct HistoryVerification: Sendable, Equatable {
    /// The history log's directory.
    public var directory: String
    /// Records read (intact batches only: damaged bytes are the log verifier's to report).
    public var records = 0
    /// Runs whose histories were checked, and the open ones among them.
    public var runs = 0
    public var openRuns = 0
    /// Whether a checkpoint file exists, and how many runs it names (those of its closed-run table too).
    public var hasCheckpoint = false
    public var checkpointRuns = 0
    /// Every broken invariant, in log order, then the checkpoint's.
    public var findings: [HistoryFinding] = []

    /// Whether no invariant is broken.
    public var isClean: Bool { findings.isEmpty }
}

extension SpoolEngine {
    /// Checks a stopped engine's history log and checkpoint against the engine's invariants,
    /// read-only (a shared lock on the log; nothing is written):
    ///
    /// - every run's history starts with WorkflowExecutionStarted as event 1, its event ids grow
    ///   by one without gaps, and nothing follows its close event;
    /// - every reference between events (scheduled, started, timer started, workflow task
    ///   completed, cancel requested ids) names an earlier event of the right type;
    /// - every change fits the run's state as replay rebuilds it (``ExecutionState/apply(_:)``);
    /// - every outstanding workflow task, activity and timer of an open run has its event;
    /// - the checkpoint and the closed-run table it names decode, fit the log, name every open
    ///   run whose records precede its replay-from, and hold for each run the state and record
    ///   offsets its history rebuilds.
    ///
    /// Damaged batches are skipped: ``OfflineLog/verify(progress:)`` reports them. A run whose
    /// first records were dropped by a compaction leaves at most its closing record, which replay
    /// skips; so does this check.
    ///
    /// - Parameter directory: the engine's data directory (`directory/history`, `directory/checkpoint`).
    /// - Throws: ``SpoolError/Code/storage`` when the log cannot be read (missing, locked, I/O).
    ///   A checkpoint file that cannot be read is a `checkpointUnreadable` finding, as one that
    ///   does not decode: the next open ignores either and replays the whole log.
    /// Cost: one read of the log, each run's state rebuilt once (memory: every run's state).
    public static func verifyHistory(directory: String) throws(SpoolError) -> HistoryVerification {
        var verifier = try replayForVerification(directory: directory)
        verifier.finish()
        return verifier.result
    }

    /// Reads the checkpoint and the whole history log of a stopped engine into a
    /// ``HistoryVerifier`` (each run's state rebuilt from its history), before its final checks.
    static func replayForVerification(directory: String) throws(SpoolError) -> HistoryVerifier {
        let logDirectory = DataDirectory(directory).history
        let offline: OfflineLog
        do { offline = try OfflineLog.open(directory: logDirectory) } catch {
            throw SpoolError(.storage, "cannot open the history log \(logDirectory)", underlying: error)
        }
        defer { offline.close() }
        let store = CheckpointStore(directory: directory, syscalls: LogConfiguration().syscalls)
        var verifier = HistoryVerifier(directory: logDirectory, checkpointPath: store.path)
        do {
            let checkpointBytes = try store.read()
            verifier.prepare(checkpointBytes: checkpointBytes) { reference throws(SpoolError) in try store.readTable(reference) }
        } catch {
            // Unreadable (a directory in its place, no permission): the open ignores it too.
            verifier.checkpoint = .failure(error)
        }
        do {
            // As the next open will see them: a pending compaction swap counts as finished.
            let segments = try offline.segmentsAsTheNextOpenSeesThem()
            for (i, segment) in segments.enumerated() {
                var batches: [SegmentBatch] = []
                _ = try offline.walkSegment(segment, nextSegmentBase: i + 1 < segments.count ? segments[i + 1].baseOffset : nil,
                                            decodeRecords: true) { item in
                    if case .batch(let batch) = item, batch.records != nil { batches.append(batch) }
                }
                for batch in batches {
                    for record in batch.records! {
                        verifier.visit(record, file: segment.path, position: batch.position)
                    }
                }
                verifier.endOffset = max(verifier.endOffset, segments[i].baseOffset)
                if let last = batches.last { verifier.endOffset = max(verifier.endOffset, last.header.nextOffset) }
            }
            verifier.startOffset = segments.first?.baseOffset ?? 0
        } catch {
            throw SpoolError(.storage, "cannot read the history log \(logDirectory)", underlying: error)
        }
        return verifier
    }
}
