import SpoolLog

/// The engine checkpoint read the cheap way, for planning a history compaction.
///
/// Decoding a checkpoint builds every run's full ``ExecutionState`` — its input, strings, pending
/// work. A compaction needs much less of a closed run: its key, its close time, its record
/// offsets, and, when it is kept, its encoded bytes to copy into the new checkpoint or table. So a
/// closed run is skimmed: its key and close time are read, the rest of its entry is stepped over
/// (a closed run has no buffered events, workflow task, activities or timers: `close(_:at:)`
/// clears them) and remembered as a byte range of the checkpoint, or as its index in the
/// closed-run table (``ClosedRunTable``) the checkpoint names. Open runs are decoded in full
/// (replay may change them, and they are kept anyway).
///
/// It reads layout 4 of ``EngineCheckpoint`` (and the extended ``ValueLayout`` of
/// `ExecutionState+Codec` and of the table): entries it keeps are copied byte for byte, so they
/// must already be in the layout a new checkpoint writes. Anything else — an older version
/// (decoded in full, then written anew in the current layout), another version, a closed run with pending work, a table
/// run whose data disagrees with its index, a run both in the checkpoint and in its table —
/// gives `nil`, and the caller decodes the checkpoint in full instead (``init(decoded:)``):
/// never a different answer, only a slower one.
struct CheckpointSkim {
    struct Run {
        var key: ExecutionKey
        /// Decoded for open runs, and for closed ones once something needs their state.
        var state: ExecutionState?
        var closeTime: Timestamp?
        var recordOffsets: [UInt64]
        /// The run's entry in ``bytes`` (its state, then its record offsets), while it is unchanged.
        var entry: Range<Int>? = nil
        /// The run's index in ``table``, while it is unchanged.
        var tableIndex: Int? = nil
    }

    var replayFrom: UInt64
    var runs: [Run]
    /// The checkpoint file's bytes (empty for a decoded checkpoint).
    let bytes: [UInt8]
    /// The closed-run table the checkpoint names, loaded and checked.
    let table: ClosedRunTable?

    /// A checkpoint decoded in full: every run has its state, nothing is copied as bytes.
    init(decoded: EngineCheckpoint) {
        replayFrom = decoded.replayFrom
        runs = decoded.runs.map { Run(key: $0.state.key, state: $0.state, closeTime: $0.state.closeTime, recordOffsets: $0.recordOffsets) }
        bytes = []
        table = nil
    }

    /// Skims `bytes`, and the closed-run table they name (loaded by `loadTable`); nil when they are
    /// not a valid checkpoint of the shape skimming relies on, or the table cannot be loaded
    /// (decode them in full then: it says what is wrong, or handles what this does not).
    init?(_ bytes: [UInt8], loadTable: (EngineCheckpoint.TableReference) throws(SpoolError) -> ClosedRunTable) {
        self.bytes = bytes
        do throws(SpoolError) {
            var (header, r) = try EngineCheckpoint.readHeader(bytes)
            guard header.layout == .current else { return nil }
            replayFrom = header.replayFrom
            let reference = header.closedTable
            let count = header.runCount
            runs = []
            runs.reserveCapacity(count)
            for _ in 0..<count {
                let start = r.position
                guard var run = try Self.skimRun(&r, bytes: bytes, start: start) else { return nil }
                run.entry = start..<r.position
                runs.append(run)
            }
            guard r.position == header.runsEnd else { return nil }
            table = try reference.map(loadTable)
            if let table {
                guard table.layout == .current else { return nil }
                // A run is named by its first record offset; one in both places is a shape the
                // engine never writes: decoding in full answers for it.
                let inCheckpoint = Set(runs.map { $0.recordOffsets[0] })
                runs.reserveCapacity(runs.count + table.count)
                for index in 0..<table.count {
                    let data = table.data(at: index)
                    var t = BinaryReader<SpoolError>(data, context: "closed-run table \(table.name)")
                    guard var run = try Self.skimRun(&t, bytes: data, start: 0), run.state == nil, t.isAtEnd,
                          run.closeTime == table.closeTime(at: index), run.recordOffsets[0] == table.firstRecordOffset(at: index),
                          !inCheckpoint.contains(run.recordOffsets[0]) else { return nil }
                    run.tableIndex = index
                    runs.append(run)
                }
            }
        } catch {
            return nil
        }
    }

    /// One run's entry (its state, then its record offsets) from `r`. Nil when it has a shape
    /// this does not skim.
    private static func skimRun(_ r: inout BinaryReader<SpoolError>, bytes: [UInt8], start: Int) throws(SpoolError) -> Run? {
        guard var run = try skimState(&r, bytes: bytes, start: start) else { return nil }
        var previous: UInt64 = 0
        let offsetCount = try r.count()
        guard offsetCount > 0 else { return nil }
        run.recordOffsets.reserveCapacity(offsetCount)
        for _ in 0..<offsetCount {
            let (offset, overflow) = previous.addingReportingOverflow(try r.unsigned())
            guard !overflow else { return nil }
            run.recordOffsets.append(offset)
            previous = offset
        }
        return run
    }

    /// One run's state: decoded in full when it is open; for a closed run, its key and close
    /// time, with the rest stepped over. Nil when a closed run's state has a shape this does not skim.
    private static func skimState(_ r: inout BinaryReader<SpoolError>, bytes: [UInt8], start: Int) throws(SpoolError) -> Run? {
        let key = ExecutionKey(namespace: try r.string(), workflowID: try r.string(), runID: try r.string())
        try r.skipLengthPrefixed()                                       // workflowType
        try r.skipLengthPrefixed()                                       // taskQueue
        if try r.bool() { try r.skipPayloads() }                         // input
        if try r.bool() { _ = try r.signed() }                           // workflowRunTimeout
        _ = try r.signed()                                               // workflowTaskTimeout
        try r.skipLengthPrefixed()                                       // firstExecutionRunID
        try r.skipLengthPrefixed()                                       // requestID
        _ = try r.signed()                                               // startTime
        let status = try r.enumeration(WorkflowExecutionStatus.self)
        let closeTime = try r.optional { r throws(SpoolError) in try r.timestamp() }
        if status == .running {
            var full = BinaryReader<SpoolError>(bytes, context: "checkpoint")
            try full.skip(start)
            let state = try ExecutionState.decode(from: &full, layout: .current)
            try r.skip(full.position - r.position)
            return Run(key: key, state: state, closeTime: state.closeTime, recordOffsets: [])
        }
        guard let closeTime else { return nil }
        _ = try r.signed()                                               // nextEventID
        guard try r.count() == 0 else { return nil }                     // buffered
        guard try r.bool() == false else { return nil }                  // workflowTask
        _ = try r.signed()                                               // previousStartedEventID
        guard try r.count() == 0 else { return nil }                     // activities
        guard try r.count() == 0 else { return nil }                     // timers
        _ = try r.bool()                                                 // cancelRequested
        if try r.bool() { try r.skipLengthPrefixed() }                   // newExecutionRunID
        if try r.bool() { try r.skipLengthPrefixed() }                   // stickyTaskQueue
        if try r.bool() { _ = try r.signed() }                           // stickyScheduleToStartTimeout
        try r.skipLengthPrefixed()                                       // run options (extended layout)
        guard try r.bool() == false else { return nil }                  // workflow task's layout-3 fields
        _ = try r.signed(); try r.skipLengthPrefixed(); _ = try r.unsigned() // priority (extended layout)
        try r.skipLengthPrefixed()                                       // related runs (current layout: related)
        return Run(key: key, state: nil, closeTime: closeTime, recordOffsets: [])
    }

    /// The full state of a skimmed run, decoded from its entry or its table data.
    func state(of run: Run) throws(SpoolError) -> ExecutionState {
        if let state = run.state { return state }
        if let index = run.tableIndex, let table { return try table.run(at: index).state }
        guard let entry = run.entry else { throw run.key.error(.corruptRecord, "the checkpoint entry of the run is gone") }
        var r = BinaryReader<SpoolError>(bytes, context: "checkpoint")
        try r.skip(entry.lowerBound)
        return try ExecutionState.decode(from: &r, layout: .current)
    }

    /// `run` as a checkpoint encodes it (its state, then its record offsets): its entry's bytes
    /// while it is unchanged, else encoded from its state.
    func encoded(_ run: Run) throws(SpoolError) -> [UInt8] {
        if let entry = run.entry { return Array(bytes[entry]) }
        if let index = run.tableIndex, let table { return table.data(at: index) }
        var w = BinaryWriter(capacity: 256)
        EngineCheckpoint.Run(state: try state(of: run), recordOffsets: run.recordOffsets).encode(into: &w)
        return w.bytes
    }

    /// Appends `run`'s entry to `w` (see ``encoded(_:)``).
    func write(_ run: Run, into w: inout BinaryWriter) throws(SpoolError) {
        if let entry = run.entry {
            w.raw(bytes[entry])
        } else {
            EngineCheckpoint.Run(state: try state(of: run), recordOffsets: run.recordOffsets).encode(into: &w)
        }
    }
}

extension CheckpointStore {
    /// For compaction: the checkpoint and its closed-run table skimmed, or decoded in full when
    /// the skim cannot read them; nil when there is none, or it is damaged (compaction replays
    /// the whole log then, as an open does).
    /// - Throws: ``SpoolError/Code/io`` when the checkpoint file exists but cannot be read.
    func readCheckpointSkim() throws(SpoolError) -> CheckpointSkim? {
        guard let bytes = try read() else { return nil }
        if let skim = CheckpointSkim(bytes, loadTable: { reference throws(SpoolError) in try readTable(reference) }) { return skim }
        return checkpointWithEveryRun(bytes).map(CheckpointSkim.init(decoded:))
    }
}

extension BinaryReader<SpoolError> {
    /// Steps over a list of payloads in the whole layout (count; per payload its metadata
    /// entries, then its data).
    mutating func skipPayloads() throws(SpoolError) {
        for _ in 0..<(try count()) {
            for _ in 0..<(try count()) {
                try skipLengthPrefixed()
                try skipLengthPrefixed()
            }
            try skipLengthPrefixed()
        }
    }
}
