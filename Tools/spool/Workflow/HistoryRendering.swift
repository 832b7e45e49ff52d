import Spool
import SpoolToolSupport

/// How `spool demo` and `spool workflow show` print a history: a table for people, JSON lines for scripts.
enum HistoryRendering {
    /// The table: event id, time of day (UTC), time since the first event, type, key attributes.
    static func table(_ events: [HistoryEvent]) -> [String] {
        table(events.map { event in
            Row(eventID: event.eventID, time: event.eventTime, type: event.eventType.description,
                details: attributes(of: event).map { "\($0.0)=\(display($0.1))" }.joined(separator: " "))
        })
    }

    /// One event of the table, however it was read (from the engine, or from a server's answer).
    struct Row {
        var eventID: Int64
        var time: Timestamp
        var type: String
        var details: String
    }

    /// The table of `rows`: milliseconds are counted from the first row's time.
    static func table(_ rows: [Row]) -> [String] {
        let first = rows.first?.time
        let typeWidth = max(4, rows.map(\.type.count).max() ?? 0)
        var lines = [pad("ID", 4) + "  " + pad("TIME (UTC)", 12, right: false) + "  " + pad("+MS", 7) + "  "
                     + pad("TYPE", typeWidth, right: false) + "  DETAILS"]
        for row in rows {
            let elapsed = first.map { Double(row.time.duration(since: $0).components.attoseconds) / 1e15
                + Double(row.time.duration(since: $0).components.seconds) * 1000 } ?? 0
            lines.append(pad(String(row.eventID), 4) + "  " + pad(timeOfDay(row.time), 12, right: false) + "  "
                         + pad(String(Int(elapsed.rounded())), 7) + "  " + pad(row.type, typeWidth, right: false)
                         + "  " + row.details)
        }
        return lines
    }

    /// One JSON object per event: `{"eventId":…,"eventTime":"…","eventType":"…","attributes":{…}}`.
    static func jsonLines(_ events: [HistoryEvent]) -> [String] {
        events.map { event in
            JSON.object([
                ("eventId", .integer(Int(event.eventID))),
                ("eventTime", .string(isoTime(event.eventTime))),
                ("eventType", .string(event.eventType.description)),
                ("attributes", .object(attributes(of: event).map { ($0.0, $0.1.json) })),
            ]).text
        }
    }

    typealias Value = HistoryAttributes.Value

    static func display(_ value: Value) -> String {
        switch value {
        case .text(let text): text.contains(" ") || text.isEmpty ? "'\(text)'" : text
        case .integer(let value): String(value)
        case .payload(let payloads): payloads.map { payloadDisplay($0.data) }.joined(separator: ",")
        case .duration(let duration): format(duration.seconds, decimals: 3) + "s"
        case .bool(let value): value ? "true" : "false"
        }
    }

    /// The attributes worth showing (``HistoryAttributes/of(_:)``).
    static func attributes(of event: HistoryEvent) -> [(String, Value)] { HistoryAttributes.of(event) }
}

/// A payload for a table: quoted UTF-8 text when it is printable text, else `preview`'s hex.
func payloadDisplay(_ bytes: [UInt8], limit: Int = 60) -> String {
    var decoded = String(decoding: bytes, as: UTF8.self)
    let printable = !decoded.unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{FFFD}" || $0 == "\u{7F}" }
    guard printable else { return preview(bytes, limit: limit) }
    if decoded.count > limit { decoded = String(decoded.prefix(limit)) + "…" }
    var quoted = "\""
    for character in decoded { quoted += character == "\"" ? "\\\"" : String(character) }
    return quoted + "\""
}

/// `2026-11-25T12:37:44.123Z`.
func isoTime(_ time: Timestamp) -> String {
    formatTimestamp(time.nanosecondsSinceEpoch / 1_000_000)
}

/// `12:37:44.123` (UTC).
func timeOfDay(_ time: Timestamp) -> String {
    let iso = isoTime(time)
    guard let t = iso.firstIndex(of: "T") else { return iso }
    return String(iso[iso.index(after: t)...].dropLast())
}

/// Every event of a run, read page by page.
func readHistory(_ engine: SpoolEngine, execution: WorkflowExecution) async throws(SpoolError) -> [HistoryEvent] {
    var events: [HistoryEvent] = []
    var token: [UInt8]? = nil
    repeat {
        let page = try await engine.getWorkflowExecutionHistory(execution: execution, nextPageToken: token)
        events += page.history
        token = page.nextPageToken
    } while token != nil
    return events
}
