#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolToolSupport

/// Progress bars for the phases of verification and repair: one bar per phase, on standard error,
/// only when both standard output and standard error are terminals and `--json` is not given.
final class PhaseProgress {
    private let enabled: Bool
    private var phase: MaintenancePhase?
    private var bar: ProgressBar?
    private let done = SharedCounter()

    init(enabled: Bool) {
        self.enabled = enabled && isatty(STDOUT_FILENO) != 0
    }

    /// The callback to hand to ``OfflineLog``; nil when nothing is drawn.
    var callback: MaintenanceProgress? {
        guard enabled else { return nil }
        return { [self] phase, done, total in self.update(phase, done, total) }
    }

    private func update(_ phase: MaintenancePhase, _ value: Int, _ total: Int) {
        if phase != self.phase {
            bar?.finish()
            self.phase = phase
            done.value.store(value, ordering: .relaxed)
            let counter = done
            bar = ProgressBar(title: phase.rawValue, total: total, unit: "bytes", enabled: true) { counter.value.load(ordering: .relaxed) }
        }
        done.value.store(value, ordering: .relaxed)
    }

    /// Clears the bar; call before printing the result.
    func finish() {
        bar?.finish()
        bar = nil
        phase = nil
    }
}

/// Milliseconds since the epoch as `2026-11-25T12:37:44.123Z`.
func formatTimestamp(_ milliseconds: Int64) -> String {
    var seconds = time_t(milliseconds / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let millis = Int(milliseconds % 1000 + 1000) % 1000
    let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
    return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
}

/// A record's bytes for a terminal: quoted text when every byte is printable ASCII, hex otherwise;
/// at most `limit` bytes, with an ellipsis when cut.
func preview(_ bytes: [UInt8], limit: Int) -> String {
    let shown = bytes.prefix(limit)
    let more = bytes.count > limit ? "…" : ""
    let printable = shown.filter { $0 >= 0x20 && $0 < 0x7F }.count
    if !shown.isEmpty && printable * 4 >= shown.count * 3 {
        // Mostly text: quoted, with the other bytes as \xNN.
        var text = "\""
        for byte in shown {
            switch byte {
            case 0x22: text += "\\\""
            case 0x5C: text += "\\\\"
            case 0x20..<0x7F: text.append(Character(UnicodeScalar(byte)))
            default: text += "\\x" + hexString([byte])
            }
        }
        return text + "\"" + more
    }
    let hexDigits = Array("0123456789abcdef")
    var hex = ""
    for (i, byte) in shown.enumerated() {
        if i > 0 && i % 4 == 0 { hex += " " }
        hex.append(hexDigits[Int(byte >> 4)])
        hex.append(hexDigits[Int(byte & 15)])
    }
    return "hex " + hex + more
}

func hexString(_ bytes: [UInt8]) -> String {
    let hexDigits = Array("0123456789abcdef")
    var hex = ""
    hex.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        hex.append(hexDigits[Int(byte >> 4)])
        hex.append(hexDigits[Int(byte & 15)])
    }
    return hex
}

func jsonRange(_ range: Range<Int>?) -> JSON {
    range.map { .array([.integer($0.lowerBound), .integer($0.upperBound)]) } ?? .string("")
}

func jsonOffsets(_ range: Range<UInt64>?) -> JSON {
    range.map { .array([.integer(Int(clamping: $0.lowerBound)), .integer(Int(clamping: $0.upperBound))]) } ?? .string("")
}

extension LogProblem {
    var json: JSON {
        var fields: [(String, JSON)] = [("kind", .string(kind)), ("severity", .string(severity.rawValue)), ("file", .string(file))]
        if let position { fields.append(("position", .integer(position))) }
        if let bytes { fields.append(("bytes", jsonRange(bytes))) }
        if let offsets { fields.append(("offsets", jsonOffsets(offsets))) }
        fields.append(("message", .string(message)))
        return .object(fields)
    }
}

extension LostData {
    var json: JSON {
        var fields: [(String, JSON)] = [("file", .string(file)), ("bytes", jsonRange(bytes))]
        if let offsets { fields.append(("offsets", jsonOffsets(offsets))) }
        if let firstPossibleOffset { fields.append(("firstPossibleOffset", .integer(Int(clamping: firstPossibleOffset)))) }
        fields += [("offsetsExact", .bool(offsetsExact)), ("reason", .string(reason))]
        return .object(fields)
    }
}

extension LogVerification {
    var json: JSON {
        .object([
            ("directory", .string(directory)), ("clean", .bool(isClean)), ("opens", .bool(opensCleanly)),
            ("cleanShutdown", .bool(cleanShutdown)), ("segments", .integer(segments.count)), ("files", .integer(files)),
            ("batches", .integer(batches)), ("records", .integer(records)), ("bytes", .integer(bytes)),
            ("problems", .array(problems.map(\.json))), ("notes", .array(notes.map { .string($0) })),
        ])
    }

    /// The human-readable report, one problem per line.
    var lines: [String] {
        var out = ["  \(segments.count) segments, \(files) files, \(formatCount(Double(batches))) batches, "
                   + "\(formatCount(Double(records))) records, \(formatCount(Double(bytes))) bytes read"]
        if problems.isEmpty {
            out.append("  no problems")
        } else {
            out.append("  \(problems.count) problem\(problems.count == 1 ? "" : "s"):")
            out += problems.map { "    \($0)" }
        }
        if !notes.isEmpty {
            out.append("  notes:")
            out += notes.map { "    \($0)" }
        }
        return out
    }
}
