#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Writes to standard error.
package func printError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    writeStandardError(line)
}

/// Writes one line to standard output and flushes it at once (scripts read it as it comes).
package func printLine(_ text: String) {
    print(text)
    fflush(nil)  // every output stream: standard output without touching the global `stdout`
}

/// A one-line progress bar on standard error, drawn only when it is a terminal.
/// `done` is read from the work's own counter; the bar never slows the work down.
package final class ProgressBar: Sendable {
    private let title: String
    private let total: Int
    private let unit: String
    private let enabled: Bool
    private let started = ContinuousClock.now
    private let task = Mutex<Task<Void, Never>?>(nil)

    package init(title: String, total: Int, unit: String, enabled: Bool, done: @escaping @Sendable () -> Int) {
        self.title = title
        self.total = max(total, 1)
        self.unit = unit
        self.enabled = enabled && isatty(STDERR_FILENO) != 0
        guard self.enabled else { return }
        let draw = Task { [self] in
            while !Task.isCancelled {
                self.draw(done())
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        task.withLock { $0 = draw }
    }

    private func draw(_ done: Int) {
        let fraction = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = (ContinuousClock.now - started).seconds
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let left = rate > 0 ? Double(total - done) / rate : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        writeStandardError("\r\(title) [\(bar)] \(Int(fraction * 100))% \(formatCount(rate)) \(unit)/s, \(Int(left.rounded())) s left   ")
    }

    /// Stops drawing and clears the line.
    package func finish() {
        guard enabled else { return }
        task.withLock { $0?.cancel() }
        writeStandardError("\r\u{1B}[2K")
    }
}

extension Duration {
    /// The duration in seconds, as a `Double` (for rates and tables).
    package var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// The duration in whole nanoseconds; 0 for a negative one.
    package var nanoseconds: UInt64 { UInt64(max(0, components.seconds)) * 1_000_000_000 + UInt64(max(0, components.attoseconds)) / 1_000_000_000 }
}

/// 1234567 → "1,234,567".
package func formatCount(_ value: Double) -> String {
    let n = Int(value.rounded())
    let digits = String(n)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return out
}

/// `value` with exactly `decimals` digits after the point (1.5, 2 → "1.50").
package func format(_ value: Double, decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = String(rounded)
    if let dot = text.firstIndex(of: ".") {
        let fraction = text[text.index(after: dot)...]
        if fraction.count < decimals { text += String(repeating: "0", count: decimals - fraction.count) }
    } else if decimals > 0 {
        text += "." + String(repeating: "0", count: decimals)
    }
    return text
}

/// `text` padded with spaces to `width` characters, on the left (`right`-aligned) or on the right.
package func pad(_ text: String, _ width: Int, right: Bool = true) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return right ? fill + text : text + fill
}

/// A JSON value for `--json` output, written without Foundation.
package enum JSON {
    case number(Double)
    case integer(Int)
    case string(String)
    case bool(Bool)
    case array([JSON])
    case object([(String, JSON)])

    /// The value as JSON text.
    package var text: String {
        switch self {
        case .number(let value): return value.isFinite ? String(value) : "null"
        case .integer(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .string(let value): return JSON.quote(value)
        case .array(let values): return "[" + values.map(\.text).joined(separator: ",") + "]"
        case .object(let fields): return "{" + fields.map { JSON.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    /// `value` as a JSON string literal, quoted and escaped.
    package static func quote(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case let c where c.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(c.value, radix: 16).count) + String(c.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// `stderr` is a C global that Swift 6 cannot prove safe; writing through the file descriptor avoids it.
package func writeStandardError(_ text: String) {
    let bytes = Array(text.utf8)
    bytes.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

/// A counter shared between tasks (the progress of a run).
package final class SharedCounter: Sendable {
    package init() {}
    /// The count.
    package let value = Atomic<Int>(0)
}
