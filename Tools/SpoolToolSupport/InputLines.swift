#if canImport(Glibc)
import Glibc
#endif

/// Lines of a file descriptor (standard input) as raw bytes: no decoding, so what a line held is
/// what the caller gets, `\r` and invalid UTF-8 included. A line ends at `\n` (not included);
/// a last line without one is still a line.
///
/// ``next(wait:)`` with `wait: false` returns only what has already arrived, which lets a
/// caller gather the lines available now into one batch and still answer a line at a time to
/// a writer that waits for each answer.
package struct InputLines {
    private let descriptor: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var ended = false
    /// Lines returned so far (the number of the last one, counted from 1).
    package private(set) var count = 0

    package init(descriptor: Int32 = STDIN_FILENO) { self.descriptor = descriptor }

    /// The next line; nil at the end of input, or (with `wait: false`) when no whole line has
    /// arrived yet. Throws the errno of a failed read.
    package mutating func next(wait: Bool) throws(InputError) -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[start..<newline])
                start = newline + 1
                count += 1
                return line
            }
            if ended {
                guard start < buffer.count else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                count += 1
                return line
            }
            if !wait && !readable() { return nil }
            try fill()
        }
    }

    /// Whether the end of input has been reached and every line returned.
    package var isFinished: Bool { ended && start >= buffer.count }

    private func readable() -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0
    }

    private mutating func fill() throws(InputError) {
        if start > 0 && start * 2 >= buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if n > 0 {
                buffer += chunk[..<n]
                return
            }
            if n == 0 {
                ended = true
                return
            }
            if errno == EINTR { continue }
            throw InputError(errno: errno)
        }
    }
}

/// A read of standard input failed.
package struct InputError: Error, CustomStringConvertible {
    package var errno: Int32
    package var description: String { "reading standard input: \(String(cString: strerror(errno)))" }
}
