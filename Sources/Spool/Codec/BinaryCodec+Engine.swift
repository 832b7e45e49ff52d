import SpoolMatching
import SpoolLog

// The engine reads its records, checkpoints and tokens with SpoolLog's BinaryReader and
// BinaryWriter; these are the engine's own types on top of them.

extension SpoolError: BinaryDecodingFailure {
    /// Bytes that do not decode are a ``SpoolError/Code/corruptRecord``.
    @usableFromInline package static func undecodable(_ message: String) -> SpoolError {
        SpoolError(.corruptRecord, message)
    }
}

extension BinaryReader {
    /// A ``Duration`` as signed varint nanoseconds.
    /// - Throws: as ``BinaryReader/signed()``.
    mutating func duration() throws(ReadError) -> Duration { .nanoseconds(try signed()) }

    /// An optional ``duration()`` after a presence flag.
    mutating func optionalDuration() throws(ReadError) -> Duration? { try optional { r throws(ReadError) in try r.duration() } }

    /// A ``Timestamp`` as signed varint nanoseconds since the epoch.
    /// - Throws: as ``BinaryReader/signed()``.
    mutating func timestamp() throws(ReadError) -> Timestamp { Timestamp(nanosecondsSinceEpoch: try signed()) }
}

extension BinaryWriter {
    /// A ``Duration`` as signed varint nanoseconds.
    mutating func duration(_ value: Duration) { signed(value.nanoseconds) }

    /// An optional ``duration(_:)-(Duration)`` after a presence byte.
    mutating func duration(_ value: Duration?) { optional(value) { $0.duration($1) } }

    /// A ``Timestamp`` as signed varint nanoseconds since the epoch.
    mutating func timestamp(_ value: Timestamp) { signed(value.nanosecondsSinceEpoch) }
}

/// The layout of the engine's values (payloads, failures, events, run states) inside a log
/// record, a checkpoint or a closed-run table. Each of those names its layout in its own version
/// byte (Docs/file-format.md, "The engine's values"); encoders always write ``current``, decoders
/// read both.
enum ValueLayout: UInt8, Sendable {
    /// Before payload metadata: a payload field is one byte string, a failure is flat (message,
    /// type, non-retryable, details, next retry delay, timeout type, last heartbeat details), and
    /// events have no headers, user metadata or worker metadata.
    case flat = 1
    /// Payloads with metadata, failures with their kind and cause chain, and every field Temporal
    /// records from a client or worker.
    case whole = 2
    /// The whole layout plus the fields added after it, each appended at the end of its event's
    /// or record's layout (Docs/file-format.md, "Layout 3"): run-level options (memo, search
    /// attributes, retry policy, cron, execution timeout and the chain fields of
    /// WorkflowExecutionStarted; the new run's id on closing events; the upsert events; the run
    /// options in a run's state), priorities, and transient workflow-task attempts (the run
    /// state's transient flag and request id, and their state changes).
    case extended = 3
    /// The extended layout plus the fields of workflows that act on other workflows, appended at
    /// the end of their event's or record's layout (Docs/file-format.md, "Layout 4"): the parent
    /// link of WorkflowExecutionStarted, the sender of WorkflowExecutionSignaled and
    /// WorkflowExecutionCancelRequested, and a run's related-runs record (parent, pending
    /// children, pending external requests) in its state.
    case related = 4

    static let current = ValueLayout.related

    /// Whether the extended layout's fields are present (layout 3 and later).
    var isExtended: Bool { rawValue >= ValueLayout.extended.rawValue }
    /// Whether the related layout's fields are present (layout 4 and later).
    var isRelated: Bool { rawValue >= ValueLayout.related.rawValue }

    /// Whether payloads, failures and events have the whole layout's fields (every layout after
    /// ``flat``).
    var isWhole: Bool { self != .flat }
}

extension BinaryWriter {
    /// A payload: metadata count, its entries sorted by key (key string, value bytes), then data.
    mutating func payload(_ value: Payload) {
        count(value.metadata.count)
        switch value.metadata.count {
        case 0: break
        case 1:
            // The usual case (`encoding` alone): no sort, no array.
            for (key, bytes) in value.metadata {
                string(key)
                payload(bytes)
            }
        default:
            for key in value.metadata.keys.sorted() {
                string(key)
                payload(value.metadata[key] ?? [])
            }
        }
        payload(value.data)
    }

    /// A list of payloads: count, then each (``payload(_:)-(Payload)``).
    mutating func payloads(_ value: Payloads) {
        count(value.count)
        for item in value { payload(item) }
    }

    /// An optional list of payloads after a presence byte.
    mutating func payloads(_ value: Payloads?) { optional(value) { $0.payloads($1) } }

    /// An optional single payload after a presence byte.
    mutating func payload(_ value: Payload?) { optional(value) { $0.payload($1) } }

    /// A payload map (memo, search attributes): entry count, then its entries sorted by key (key
    /// string, payload).
    mutating func payloadMap(_ value: [String: Payload]) {
        count(value.count)
        if value.isEmpty { return }
        for key in value.keys.sorted() {
            string(key)
            payload(value[key] ?? Payload(data: []))
        }
    }

    /// A header: field count, then its fields sorted by key (key string, payload).
    mutating func header(_ value: Header) {
        count(value.fields.count)
        if value.fields.isEmpty { return }
        for key in value.fields.keys.sorted() {
            string(key)
            payload(value.fields[key] ?? Payload(data: []))
        }
    }

    /// Optional user metadata: presence byte, then summary and details (each an optional payload).
    mutating func userMetadata(_ value: UserMetadata?) {
        optional(value) { w, metadata in
            w.payload(metadata.summary)
            w.payload(metadata.details)
        }
    }

    /// An optional worker version stamp: presence byte, build id, use-versioning flag.
    mutating func workerVersion(_ value: WorkerVersionStamp?) {
        optional(value) { w, stamp in
            w.string(stamp.buildID)
            w.bool(stamp.useVersioning)
        }
    }
}

extension BinaryReader<SpoolError> {
    /// A payload (see `BinaryWriter.payload(_:)`).
    mutating func wholePayload() throws(SpoolError) -> Payload {
        let entries = try count()
        var metadata: [String: [UInt8]] = [:]
        if entries > 0 {
            metadata.reserveCapacity(entries)
            for _ in 0..<entries {
                let key = try string()
                metadata[key] = try payload()
            }
        }
        return Payload(metadata: metadata, data: try payload())
    }

    /// An optional single payload after a presence byte.
    mutating func optionalWholePayload() throws(SpoolError) -> Payload? {
        try optional { r throws(SpoolError) in try r.wholePayload() }
    }

    /// A list of payloads in `layout`: in the flat layout one byte string, read as one payload
    /// (see ``LegacyPayloads``).
    mutating func payloads(_ layout: ValueLayout) throws(SpoolError) -> Payloads {
        switch layout {
        case .flat:
            return LegacyPayloads.payloads(fromFlatBytes: try payload())
        case .whole, .extended, .related:
            let n = try count()
            var list: Payloads = []
            list.reserveCapacity(n)
            for _ in 0..<n { list.append(try wholePayload()) }
            return list
        }
    }

    /// An optional list of payloads in `layout` after a presence byte.
    mutating func optionalPayloads(_ layout: ValueLayout) throws(SpoolError) -> Payloads? {
        try optional { r throws(SpoolError) in try r.payloads(layout) }
    }

    /// A header (see `BinaryWriter.header(_:)`); empty in the flat layout, which has none.
    mutating func header(_ layout: ValueLayout) throws(SpoolError) -> Header {
        guard layout.isWhole else { return Header() }
        let n = try count()
        if n == 0 { return Header() }
        var fields: [String: Payload] = [:]
        fields.reserveCapacity(n)
        for _ in 0..<n {
            let key = try string()
            fields[key] = try wholePayload()
        }
        return Header(fields: fields)
    }

    /// A payload map (see `BinaryWriter.payloadMap(_:)`).
    mutating func payloadMap() throws(SpoolError) -> [String: Payload] {
        let n = try count()
        if n == 0 { return [:] }
        var fields: [String: Payload] = [:]
        fields.reserveCapacity(n)
        for _ in 0..<n {
            let key = try string()
            fields[key] = try wholePayload()
        }
        return fields
    }

    /// Optional user metadata (see `BinaryWriter.userMetadata(_:)`); nil in the flat layout.
    mutating func userMetadata(_ layout: ValueLayout) throws(SpoolError) -> UserMetadata? {
        guard layout.isWhole else { return nil }
        return try optional { r throws(SpoolError) in
            UserMetadata(summary: try r.optionalWholePayload(), details: try r.optionalWholePayload())
        }
    }

    /// An optional worker version stamp; nil in the flat layout.
    mutating func workerVersion(_ layout: ValueLayout) throws(SpoolError) -> WorkerVersionStamp? {
        guard layout.isWhole else { return nil }
        return try optional { r throws(SpoolError) in WorkerVersionStamp(buildID: try r.string(), useVersioning: try r.bool()) }
    }

    /// A string field that the flat layout does not have (empty there).
    mutating func wholeString(_ layout: ValueLayout) throws(SpoolError) -> String {
        layout.isWhole ? try string() : ""
    }

    /// A ``Priority`` (see `BinaryWriter.priority(_:)`); unset in layouts before ``ValueLayout/extended``.
    mutating func priority(_ layout: ValueLayout) throws(SpoolError) -> Priority {
        guard layout.isExtended else { return Priority() }
        let key = try signed()
        guard (0...Int64(TaskPriority.lowest)).contains(key) else { throw corrupt("priority key \(key) is outside 0…\(TaskPriority.lowest)") }
        let fairnessKey = try string()
        let bits = try unsigned()
        guard bits <= UInt64(UInt32.max) else { throw corrupt("a fairness weight of \(bits) is not a 32-bit float") }
        return Priority(priorityKey: Int(key), fairnessKey: fairnessKey, fairnessWeight: Float(bitPattern: UInt32(bits)))
    }
}

extension BinaryWriter {
    /// A ``Priority``: priority key (signed varint), fairness key (string), fairness weight (the
    /// float's 32 bits as an unsigned varint). Written in ``ValueLayout/extended`` only.
    mutating func priority(_ value: Priority) {
        signed(Int64(value.priorityKey)); string(value.fairnessKey); unsigned(UInt64(value.fairnessWeight.bitPattern))
    }
}
