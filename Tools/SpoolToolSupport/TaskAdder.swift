import SpoolMatching
import SpoolQueue

/// What `spool task add` did: how many tasks were added, and the line that stopped it.
package struct TaskAddOutcome: Sendable {
    /// Tasks added (acknowledged under the store's durability), the first `added` lines.
    package var added = 0
    /// The first line not added (counted from 1) and why, when input did not end normally.
    package var failure: (line: Int, message: String)?
}

/// The loop of `spool task add`: reads lines, turns each into a payload under `format`, and adds
/// them in input order, in batches of the lines available at the time (at most ``window``),
/// each batch one append to the log and one `fdatasync`.
///
/// So ids increase with line numbers, a batch's ids are printed once the batch is durable (a
/// script killed at any moment knows which lines were acknowledged), and a writer that waits for
/// each line's id before writing the next still gets it: a batch never waits for more lines.
/// It stops at the first line it cannot add; the lines before it stay added.
package struct TaskAdder: Sendable {
    /// The most lines in one batch.
    package static let window = 128

    package let format: PayloadFormat
    package let options: TaskOptions

    package init(format: PayloadFormat, options: TaskOptions) {
        self.format = format
        self.options = options
    }

    /// Adds every line of `lines` to `queue` of `store`; calls `added(line, id)` for each line
    /// added, in order, once it is durable.
    package func run(lines: inout InputLines, queue: DurableTaskQueue, store: TaskStore,
                     added: (Int, UInt64) -> Void) async -> TaskAddOutcome {
        var outcome = TaskAddOutcome()
        let maxPayload = store.maxPayloadBytes(queue: queue.name, fairness: options.fairness)
        let segmentBytes = store.configuration.log.segmentBytes
        // A line read that did not fit in the previous batch.
        var carried: [UInt8]?
        while true {
            var batch: [[UInt8]] = []
            var payloadBytes = 0
            var stop: (line: Int, message: String)?
            let firstLine = lines.count + (carried == nil ? 1 : 0)
            gathering: while batch.count < Self.window {
                let payload: [UInt8]
                if let next = carried {
                    payload = next
                    carried = nil
                } else {
                    let line: [UInt8]?
                    do {
                        line = try lines.next(wait: batch.isEmpty)
                    } catch {
                        stop = (lines.count + 1, error.description)
                        break
                    }
                    guard let line else { break }
                    switch decode(line) {
                    case .success(let decoded):
                        payload = decoded
                    case .failure(let problem):
                        stop = (lines.count, problem.description)
                        break gathering
                    }
                    guard payload.count <= maxPayload else {
                        stop = (lines.count, "a payload of \(payload.count) bytes exceeds the limit of \(maxPayload) for queue "
                                + "'\(IdentifierText.shown(queue.name))'")
                        break
                    }
                }
                let bytes = store.batchBytes(payloadBytes: payloadBytes + payload.count, count: batch.count + 1, queue: queue.name,
                                             fairness: options.fairness)
                if !batch.isEmpty && bytes > segmentBytes {
                    carried = payload
                    break
                }
                batch.append(payload)
                payloadBytes += payload.count
            }
            if !batch.isEmpty {
                do {
                    let ids = try await queue.add(contentsOf: batch, options: options)
                    for (offset, id) in ids.enumerated() { added(firstLine + offset, id) }
                    outcome.added += ids.count
                } catch {
                    outcome.failure = (firstLine, "\(error)" + (batch.count > 1 ? " (lines \(firstLine)…\(firstLine + batch.count - 1) "
                                                                    + "were written together; none of them was acknowledged)" : ""))
                    return outcome
                }
            }
            if let stop {
                outcome.failure = stop
                return outcome
            }
            if batch.isEmpty && carried == nil { return outcome }
        }
    }

    /// The payload a line carries under ``format``, or why it cannot be read.
    func decode(_ line: [UInt8]) -> Result<[UInt8], PayloadFormatError> {
        switch format {
        case .text:
            if let problem = TextPayload.problem(in: line) {
                return .failure(PayloadFormatError("\(problem); text lines must be UTF-8 without control characters "
                                                   + "other than tab (use --format jsonl for any bytes)"))
            }
            return .success(line)
        case .jsonl:
            if line.isEmpty { return .failure(PayloadFormatError("an empty line (expected {\"\(PayloadFormat.payloadField)\":\"…\"})")) }
            do { return .success(try JSONLinePayload.decode(line)) } catch { return .failure(error) }
        }
    }
}
