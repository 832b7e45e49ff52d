#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives
import SpoolLog
import SpoolLogTesting
import SpoolToolSupport

/// The process `spool torture` kills: opens the log (recovering it), then appends from
/// `appenders` tasks until it is killed, and writes `<offset> <id>` on standard output, one line
/// per record, as soon as each append returns (one `write(2)` per append, so lines never mix).
enum TortureChild {
    static func run(directory: String, configuration: LogConfiguration, seed: UInt64, round: Int, appenders: Int) async -> Int32 {
        let log: Log
        do {
            log = try Log.open(directory: directory, configuration: configuration)
        } catch {
            writeStandardError("spool torture child: open failed: \(error)\n")
            return 2
        }
        // A guard against a parent that died: stop after a minute.
        let deadline = monotonicNanoseconds() + 60_000_000_000
        await withTaskGroup(of: Void.self) { group in
            for appender in 0..<appenders {
                group.addTask {
                    var random = SplitMix64(seed: seed &+ UInt64(appender) &* 0x9E37_79B9)
                    // Ids are unique across the whole run: round, appender, counter.
                    var next = UInt64(round + 1) << 32 | UInt64(appender) << 24
                    while monotonicNanoseconds() < deadline {
                        let roll = random.below(100)
                        do {
                            if roll < 3 {
                                try await log.flush()
                            } else if roll < 18 {
                                let ids = (0..<(2 + random.below(7))).map { next + UInt64($0) }
                                next += UInt64(ids.count)
                                let offsets = try await log.append(contentsOf: ids.map(TortureRecord.bytes))
                                emit(zip(offsets, ids).map { "\($0) \($1)\n" }.joined())
                            } else {
                                let id = next
                                next += 1
                                let offset = try await log.append(TortureRecord.bytes(id))
                                emit("\(offset) \(id)\n")
                            }
                        } catch {
                            writeStandardError("spool torture child: append failed: \(error)\n")
                            return
                        }
                    }
                }
            }
        }
        try? log.close()
        return 0
    }

    /// Writes `text` to standard output with one `write(2)` (retried on a short write), so that
    /// the parent reads whole lines even from a child killed at any moment.
    static func emit(_ text: String) {
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(STDOUT_FILENO, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                done += n
            }
        }
    }
}

/// What `spool torture`'s kill loop needs of a store workload's ledger (`--workload tasks`,
/// `--workload workflows`).
protocol KillLoopLedger: DamageProbing {
    /// Takes in the lines a killed child wrote, in order.
    mutating func apply(_ lines: [String], round: Int, into ledger: inout TortureLedger)
    /// Reopens the store, checks it against what was promised, then closes it cleanly or abandons
    /// it. Returns false when it did not open (the run stops).
    mutating func check(directory: String, round: Int, closingCleanly: Bool, into ledger: inout TortureLedger) async -> Bool
    /// One line of progress for the terminal.
    func progress(_ ledger: TortureLedger) -> String
}
