#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Writes to standard error.
func printError(_ text: String) {
    var line = text
    if !line.hasSuffix("\n") { line += "\n" }
    writeStandardError(line)
}

/// A one-line progress bar on standard error, drawn only when it is a terminal.
/// `done` is read from the work's own counter; the bar never slows the work down.
final class ProgressBar: Sendable {
    private let title: String
    private let total: Int
    private let unit: String
    private let enabled: Bool
    private let started = ContinuousClock.now
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(title: String, total: Int, unit: String, enabled: Bool, done: @escaping @Sendable () -> Int) {
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
    func finish() {
        guard enabled else { return }
        task.withLock { $0?.cancel() }
        writeStandardError("\r\u{1B}[2K")
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var nanoseconds: UInt64 { UInt64(max(0, components.seconds)) * 1_000_000_000 + UInt64(max(0, components.attoseconds)) / 1_000_000_000 }
}

/// 1234567 → "1,234,567".
func formatCount(_ value: Double) -> String {
    let n = Int(value.rounded())
    let digits = String(n)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return out
}

func format(_ value: Double, decimals: Int) -> String {
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

func pad(_ text: String, _ width: Int, right: Bool = true) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return right ? fill + text : text + fill
}

/// A JSON value for `--json` output, written without Foundation.
enum JSON {
    case number(Double)
    case integer(Int)
    case string(String)
    case bool(Bool)
    case array([JSON])
    case object([(String, JSON)])

    var text: String {
        switch self {
        case .number(let value): return value.isFinite ? String(value) : "null"
        case .integer(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .string(let value): return JSON.quote(value)
        case .array(let values): return "[" + values.map(\.text).joined(separator: ",") + "]"
        case .object(let fields): return "{" + fields.map { JSON.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ value: String) -> String {
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

/// Removes a directory tree (the bench's scratch data).
func removeTree(_ path: String) {
    guard !path.isEmpty, path != "/" else { return }
    var status: Int32 = 0
    let args = ["/bin/rm", "-rf", path]
    var pid = pid_t()
    var cArgs = args.map { strdup($0) } + [nil]
    defer { for arg in cArgs { free(arg) } }
    if posix_spawn(&pid, "/bin/rm", nil, nil, &cArgs, environ) == 0 { waitpid(pid, &status, 0) }
}

/// A fresh directory under $TMPDIR (or /tmp).
func makeTemporaryDirectory() throws(ValidationErrorMessage) -> String {
    let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    var template = Array((base + "/spool-bench-XXXXXX").utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
        throw ValidationErrorMessage("cannot create a scratch directory in \(base): \(String(cString: strerror(errno)))")
    }
    return String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
}

/// Bytes of the regular files directly in `directory` (not in its subdirectories); 0 if it cannot be read.
func regularFileBytes(in directory: String) -> Int {
    guard let dir = opendir(directory) else { return 0 }
    defer { closedir(dir) }
    var total = 0
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        var info = stat()
        if stat(directory + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG { total += Int(info.st_size) }
    }
    return total
}

func makeDirectory(_ path: String) throws(ValidationErrorMessage) {
    if mkdir(path, 0o700) != 0 && errno != EEXIST {
        throw ValidationErrorMessage("cannot create \(path): \(String(cString: strerror(errno)))")
    }
}

struct ValidationErrorMessage: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// `stderr` is a C global that Swift 6 cannot prove safe; writing through the file descriptor avoids it.
func writeStandardError(_ text: String) {
    let bytes = Array(text.utf8)
    bytes.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

/// A counter shared between tasks (the progress of a run).
final class SharedCounter: Sendable {
    let value = Atomic<Int>(0)
}
