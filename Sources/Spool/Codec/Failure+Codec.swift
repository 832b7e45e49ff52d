import SpoolLog

// The binary layout of failures (flat and whole) and retry policies, shared by events, state
// changes and checkpoints (see HistoryEvent+Codec.swift for the events).

/// How deep a decoded failure's cause chain may go: deeper is damage (Temporal itself keeps 20).
let maximumFailureDepth = 64

extension Failure {
    /// Writes the whole layout: message, source, stack trace, encoded attributes (optional
    /// payload), cause (optional failure), the info's tag byte (0 none, 1 application, 2 timeout,
    /// 3 canceled, 4 terminated, 5 server, 6 activity) and its fields.
    func encode(into w: inout BinaryWriter) {
        w.string(message)
        w.string(source)
        w.string(stackTrace)
        w.payload(encodedAttributes)
        w.optional(cause) { $1.encode(into: &$0) }
        switch info {
        case nil:
            w.byte(0)
        case .application(let a)?:
            w.byte(1)
            w.string(a.type); w.bool(a.nonRetryable); w.payloads(a.details); w.duration(a.nextRetryDelay); w.byte(a.category.rawValue)
        case .timeout(let a)?:
            w.byte(2)
            w.byte(a.timeoutType.rawValue); w.payloads(a.lastHeartbeatDetails)
        case .canceled(let a)?:
            w.byte(3)
            w.payloads(a.details); w.string(a.identity)
        case .terminated(let a)?:
            w.byte(4)
            w.string(a.identity)
        case .server(let a)?:
            w.byte(5)
            w.bool(a.nonRetryable)
        case .activity(let a)?:
            w.byte(6)
            w.signed(a.scheduledEventID); w.signed(a.startedEventID); w.string(a.identity); w.string(a.activityType)
            w.string(a.activityID); w.byte(a.retryState.rawValue)
        }
    }

    static func decode(from r: inout BinaryReader<SpoolError>, layout: ValueLayout, depth: Int = 0) throws(SpoolError) -> Failure {
        switch layout {
        case .flat: return try decodeFlat(from: &r)
        case .whole, .extended, .related: break
        }
        guard depth < maximumFailureDepth else { throw r.corrupt("a failure's cause chain is deeper than \(maximumFailureDepth)") }
        let message = try r.string(), source = try r.string(), stackTrace = try r.string()
        let encoded = try r.optionalWholePayload()
        let cause = try r.optional { r throws(SpoolError) in try Failure.decode(from: &r, layout: layout, depth: depth + 1) }
        let info: FailureInfo?
        let tag = try r.byte()
        switch tag {
        case 0: info = nil
        case 1:
            info = .application(ApplicationFailureInfo(
                type: try r.string(), nonRetryable: try r.bool(), details: try r.optionalPayloads(layout),
                nextRetryDelay: try r.optionalDuration(), category: try r.enumeration(ApplicationErrorCategory.self)))
        case 2:
            info = .timeout(TimeoutFailureInfo(timeoutType: try r.enumeration(TimeoutType.self),
                                               lastHeartbeatDetails: try r.optionalPayloads(layout)))
        case 3: info = .canceled(CanceledFailureInfo(details: try r.optionalPayloads(layout), identity: try r.string()))
        case 4: info = .terminated(TerminatedFailureInfo(identity: try r.string()))
        case 5: info = .server(ServerFailureInfo(nonRetryable: try r.bool()))
        case 6:
            info = .activity(ActivityFailureInfo(
                scheduledEventID: try r.signed(), startedEventID: try r.signed(), identity: try r.string(),
                activityType: try r.string(), activityID: try r.string(), retryState: try r.enumeration(RetryState.self)))
        default: throw r.corrupt("\(tag) is not a failure kind")
        }
        return Failure(message: message, source: source, stackTrace: stackTrace, encodedAttributes: encoded, cause: cause, info: info)
    }

    /// The flat layout: message, type, non-retryable, details, next retry delay, timeout type,
    /// last heartbeat details. Mapped to the kinds `spool serve` gave such failures: a timeout
    /// type makes a timeout failure (source `Server`: only the engine wrote them); the types
    /// `CanceledError`, `TerminatedError` and `ServerError` the server used for those kinds make
    /// them again; anything else is an application failure.
    private static func decodeFlat(from r: inout BinaryReader<SpoolError>) throws(SpoolError) -> Failure {
        let message = try r.string(), type = try r.string(), nonRetryable = try r.bool()
        let details = try r.optionalPayloads(.flat)
        let nextRetryDelay = try r.optionalDuration()
        let timeoutType = try r.optional { r throws(SpoolError) in try r.enumeration(TimeoutType.self) }
        let lastHeartbeatDetails = try r.optionalPayloads(.flat)
        if let timeoutType {
            return Failure(message: message, source: serverSource,
                           info: .timeout(TimeoutFailureInfo(timeoutType: timeoutType, lastHeartbeatDetails: lastHeartbeatDetails)))
        }
        switch type {
        case "CanceledError": return Failure(message: message, info: .canceled(CanceledFailureInfo(details: details)))
        case "TerminatedError": return Failure(message: message, info: .terminated(TerminatedFailureInfo()))
        case "ServerError": return Failure(message: message, info: .server(ServerFailureInfo(nonRetryable: nonRetryable)))
        default:
            return .application(message, type: type, nonRetryable: nonRetryable, details: details, nextRetryDelay: nextRetryDelay)
        }
    }
}

extension BinaryWriter {
    mutating func failure(_ value: Failure?) { optional(value) { $1.encode(into: &$0) } }
}

extension BinaryReader<SpoolError> {
    mutating func failure(_ layout: ValueLayout) throws(SpoolError) -> Failure { try Failure.decode(from: &self, layout: layout) }
    mutating func optionalFailure(_ layout: ValueLayout) throws(SpoolError) -> Failure? {
        try optional { r throws(SpoolError) in try Failure.decode(from: &r, layout: layout) }
    }
}

extension RetryPolicy {
    func encode(into writer: inout BinaryWriter) {
        writer.duration(initialInterval)
        writer.unsigned(backoffCoefficient.bitPattern)
        writer.duration(maximumInterval)
        writer.signed(Int64(maximumAttempts))
        writer.count(nonRetryableErrorTypes.count)
        for type in nonRetryableErrorTypes { writer.string(type) }
    }

    static func decode(from reader: inout BinaryReader<SpoolError>) throws(SpoolError) -> RetryPolicy {
        let initial = try reader.duration()
        let coefficient = Double(bitPattern: try reader.unsigned())
        let maximum = try reader.optionalDuration()
        let attempts = try reader.int32()
        var types: [String] = []
        for _ in 0..<(try reader.count()) { types.append(try reader.string()) }
        return RetryPolicy(initialInterval: initial, backoffCoefficient: coefficient, maximumInterval: maximum,
                           maximumAttempts: attempts, nonRetryableErrorTypes: types)
    }
}
