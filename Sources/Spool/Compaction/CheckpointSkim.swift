import SpoolLog

/// The engine checkpoint read the cheap way, for planning a history compaction.
///
/// Decoding a checkpoint builds every run's full ``ExecutionState`` — its input, strings, pending
/// work. A compaction needs much less of a closed run: its key, its close time, its record
/// offsets, and, when it is kept, the bytes of its entry to copy into the new checkpoint. So a
/// closed run is skimmed: its key and close time are read, the rest of its entry is stepped over
/// (a closed run has no buffered events, workflow task, activities or timers: `close(_:at:)`
/// clears them) and remembered as a byte range. Open runs are decoded in full (replay may change
/// them, and they are kept anyway).
///
/// It reads layout version 1 of ``EngineCheckpoint`` (and of `ExecutionState+Codec`). Anything
/// else — another version, a closed run with pending work — gives `nil`, and the caller decodes
/// the checkpoint in full instead: never a different answer, only a slower one.
struct CheckpointSkim {
    struct Run {
        var key: ExecutionKey
        /// Decoded for open runs, and for closed ones once something needs their state.
        var state: ExecutionState?
        var closeTime: Timestamp?
        var recordOffsets: [UInt64]
        /// The run's entry in ``bytes`` (its state, then its record offsets), while it is unchanged.
        var entry: Range<Int>?
    }

    var replayFrom: UInt64
    var runs: [Run]
    /// The checkpoint file's bytes.
    let bytes: [UInt8]

    /// Skims `bytes`; nil when they are not a valid version-1 checkpoint of the shape skimming
    /// relies on (decode them in full then: it says what is wrong, or handles what this does not).
    init?(_ bytes: [UInt8]) {
        guard bytes.count >= EngineCheckpoint.magic.count + 5 else { return nil }
        let stored = bytes[(bytes.count - 4)...].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<(bytes.count - 4)])) }
        guard crc == stored else { return nil }
        self.bytes = bytes
        do throws(SpoolError) {
            var r = BinaryReader(bytes, context: "checkpoint")
            for byte in EngineCheckpoint.magic where try r.byte() != byte { return nil }
            guard try r.byte() == 1 else { return nil }
            replayFrom = try r.unsigned()
            let count = try r.count()
            runs = []
            runs.reserveCapacity(count)
            for _ in 0..<count {
                let start = r.position
                guard var run = try Self.skimState(&r, bytes: bytes, start: start) else { return nil }
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
                run.entry = start..<r.position
                runs.append(run)
            }
            guard r.position == bytes.count - 4 else { return nil }
        } catch {
            return nil
        }
    }

    /// One run's state: decoded in full when it is open; for a closed run, its key and close
    /// time, with the rest stepped over. Nil when a closed run's state has a shape this does not skim.
    private static func skimState(_ r: inout BinaryReader, bytes: [UInt8], start: Int) throws(SpoolError) -> Run? {
        let key = ExecutionKey(namespace: try r.string(), workflowID: try r.string(), runID: try r.string())
        try r.skipLengthPrefixed()                                       // workflowType
        try r.skipLengthPrefixed()                                       // taskQueue
        if try r.bool() { try r.skipLengthPrefixed() }                   // input
        if try r.bool() { _ = try r.signed() }                           // workflowRunTimeout
        _ = try r.signed()                                               // workflowTaskTimeout
        try r.skipLengthPrefixed()                                       // firstExecutionRunID
        try r.skipLengthPrefixed()                                       // requestID
        _ = try r.signed()                                               // startTime
        let status = try r.enumeration(WorkflowExecutionStatus.self)
        let closeTime = try r.optional { r throws(SpoolError) in try r.timestamp() }
        if status == .running {
            var full = BinaryReader(bytes, context: "checkpoint")
            try full.skip(start)
            let state = try ExecutionState.decode(from: &full)
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
        return Run(key: key, state: nil, closeTime: closeTime, recordOffsets: [])
    }

    /// The full state of a skimmed run, decoded from its entry.
    func state(of run: Run) throws(SpoolError) -> ExecutionState {
        if let state = run.state { return state }
        guard let entry = run.entry else { throw run.key.error(.corruptRecord, "the checkpoint entry of the run is gone") }
        var r = BinaryReader(bytes, context: "checkpoint")
        try r.skip(entry.lowerBound)
        return try ExecutionState.decode(from: &r)
    }

    /// A checkpoint of `runs` replaying from `replayFrom`, in ``EngineCheckpoint``'s layout:
    /// unchanged entries copied as bytes, the others encoded from their state.
    func encoded(replayFrom: UInt64, runs: [Run]) -> [UInt8] {
        var w = BinaryWriter(capacity: 64 + runs.reduce(0) { $0 + ($1.entry?.count ?? 256) })
        for byte in EngineCheckpoint.magic { w.byte(byte) }
        w.byte(EngineCheckpoint.version)
        w.unsigned(replayFrom)
        w.count(runs.count)
        for run in runs {
            if let entry = run.entry {
                w.raw(bytes[entry])
                continue
            }
            // A run without an entry was changed by replay, which decoded its state first.
            guard let state = run.state else { preconditionFailure("a changed run without its state") }
            state.encode(into: &w)
            w.count(run.recordOffsets.count)
            var previous: UInt64 = 0
            for offset in run.recordOffsets {
                w.unsigned(offset &- previous)
                previous = offset
            }
        }
        var bytes = w.bytes
        let crc = CRC32C.checksum(bytes)
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }
}
