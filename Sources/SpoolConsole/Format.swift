import Foundation
import Spool

/// How the console writes times, durations, sizes, payloads and failures.
enum Format {
    /// `2026-12-06T16:10:24.123Z`.
    static func isoUTC(_ time: Timestamp) -> String {
        let nanoseconds = time.nanosecondsSinceEpoch
        let milliseconds = nanoseconds >= 0 ? nanoseconds / 1_000_000 : (nanoseconds - 999_999) / 1_000_000
        var days = milliseconds >= 0 ? milliseconds / 86_400_000 : (milliseconds - 86_399_999) / 86_400_000
        let msOfDay = milliseconds - days * 86_400_000
        // Howard Hinnant's civil_from_days.
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(msOfDay / 3_600_000, 2)):\(pad(msOfDay / 60_000 % 60, 2))"
            + ":\(pad(msOfDay / 1000 % 60, 2)).\(pad(msOfDay % 1000, 3))Z"
    }

    /// A time for a page: UTC in the markup and on hover; console.js writes it in the browser's zone.
    static func time(_ time: Timestamp?) -> HTML {
        guard let time else { return "<span class=\"none\">—</span>" }
        let iso = isoUTC(time)
        return "<time datetime=\"\(iso)\" title=\"\(iso) UTC\">\(iso.replacingOccurrences(of: "T", with: " "))</time>"
    }

    /// `850ms`, `12.5s`, `3m 20s`, `2h 5m`, `3d 4h`.
    static func duration(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        if seconds < 0 { return "-" + self.duration(.zero - duration) }
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds < 60 { return seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds) }
        let whole = Int(seconds)
        if whole < 3600 { return "\(whole / 60)m \(whole % 60)s" }
        if whole < 86400 { return "\(whole / 3600)h \(whole % 3600 / 60)m" }
        return "\(whole / 86400)d \(whole % 86400 / 3600)h"
    }

    static func duration(_ duration: Duration?) -> HTML {
        guard let duration else { return "<span class=\"none\">—</span>" }
        return "\(self.duration(duration))"
    }

    /// `1.5 KiB`, `3.2 MiB`.
    static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// A rate: `0`, `0.25`, `12.5`, `1200`.
    static func rate(_ value: Double) -> String {
        if value == 0 { return "0" }
        if value >= 100 { return String(Int(value.rounded())) }
        return String(format: value >= 10 ? "%.1f" : "%.2f", value)
    }

    /// The status as a coloured badge.
    static func status(_ status: WorkflowExecutionStatus) -> HTML {
        "<span class=\"status status-\(status.description.lowercased())\">\(status.description)</span>"
    }

    // MARK: Payloads

    /// What a payload holds, decoded as its `encoding` metadata says: JSON (pretty-printed when
    /// it parses), text, null, or else its size and the first bytes in hex.
    static func payloadText(_ payload: Payload) -> (kind: String, text: String) {
        let encoding = payload.encoding ?? ""
        switch encoding {
        case "binary/null":
            return ("null", "null")
        case "json/plain", "json/protobuf":
            let text = String(decoding: payload.data, as: UTF8.self)
            if let object = try? JSONSerialization.jsonObject(with: Data(payload.data), options: [.fragmentsAllowed]),
               let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]) {
                return ("json", String(decoding: pretty, as: UTF8.self))
            }
            return ("json", text)
        default:
            if let text = String(validating: payload.data, as: UTF8.self),
               encoding.hasPrefix("text/") || encoding == "binary/plain" || encoding.isEmpty,
               !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" && $0 != "\r" }) {
                return ("text", text)
            }
            let shown = payload.data.prefix(64).map { byte in
                let hex = Array("0123456789abcdef")
                return String([hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            }.joined(separator: " ")
            return (encoding.isEmpty ? "binary" : encoding, "\(payload.data.count) bytes: \(shown)\(payload.data.count > 64 ? " …" : "")")
        }
    }

    /// Payloads as blocks, each labelled with what it was decoded as.
    static func payloads(_ payloads: Payloads?) -> HTML {
        guard let payloads, !payloads.isEmpty else { return "<span class=\"none\">—</span>" }
        return HTML.join(payloads.map { payload in
            let (kind, text) = payloadText(payload)
            let shown = text.count > 4000 ? String(text.prefix(4000)) + "\n… (\(text.count) characters)" : text
            return "<pre class=\"payload payload-\(kind)\" data-encoding=\"\(kind)\">\(shown)</pre>"
        })
    }

    /// A failure with its cause chain, each with its type, message, source and stack trace.
    static func failure(_ failure: Failure?) -> HTML {
        guard let failure else { return "<span class=\"none\">—</span>" }
        var items: [HTML] = []
        var current: Failure? = failure
        var depth = 0
        while let f = current, depth < 20 {
            var kind: String
            switch f.info {
            case .application(let info)?: kind = info.type.isEmpty ? "ApplicationFailure" : info.type
            case .timeout(let info)?: kind = "Timeout (\(info.timeoutType))"
            case .canceled?: kind = "Canceled"
            case .terminated?: kind = "Terminated"
            case .server?: kind = "ServerFailure"
            case .activity(let info)?: kind = "ActivityFailure (\(info.activityType) \(info.activityID))"
            default: kind = "Failure"
            }
            if case .application(let info)? = f.info, info.nonRetryable { kind += ", non-retryable" }
            var item: HTML = "<li class=\"failure\"><span class=\"failure-type\">\(kind)</span> <span class=\"failure-message\">\(f.message)</span>"
            if !f.source.isEmpty { item += " <span class=\"muted\">(\(f.source))</span>" }
            if case .application(let info)? = f.info, let details = info.details { item += payloads(details) }
            if !f.stackTrace.isEmpty {
                item += "<details class=\"stack\"><summary>stack trace</summary><pre>\(f.stackTrace)</pre></details>"
            }
            item += "</li>"
            items.append(item)
            current = f.cause
            depth += 1
        }
        return "<ol class=\"failure-chain\">\(items)</ol>"
    }
}
