import Synchronization
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// Appends racing `close()`: an append that returned an offset is in the log after reopen with
/// its bytes, an append that lost the race fails with `closed`, and none is left waiting.
/// (The intake's push is also its admission check: a request is either on the writer's stack
/// before the log starts refusing, and is written, or is refused. Nothing is in between.)
@Suite struct LogCloseRaceTests {
    @Test(.timeLimit(.minutes(10)), arguments: [Durability.sync, .none])
    func everyAppendRacingCloseIsWrittenOrRefusedAsClosed(durability: Durability) async throws {
        for round in 0..<6 {
            let dir = TemporaryDirectory()
            var configuration = LogConfiguration(durability: durability)
            configuration.concurrentSyncs = 2
            let log = try Log.open(directory: dir.log, configuration: configuration)
            let started = Counter()
            // Close once some appends are in, at a point that moves from round to round.
            let closeAt = 200 + round * 400
            let appenders = 16
            typealias Outcome = (task: Int, sequence: Int, offset: UInt64?, error: LogError?)
            let outcomes = await withTaskGroup(of: [Outcome].self) { group in
                for task in 0..<appenders {
                    group.addTask {
                        var outcomes: [Outcome] = []
                        for sequence in 0..<1_000 {
                            // The append that crosses the threshold starts the close on a thread
                            // of its own: it comes at that point however the tasks are scheduled.
                            if started.value.add(1, ordering: .relaxed).newValue == closeAt {
                                startDetachedThread { try? log.close() }
                            }
                            do throws(LogError) {
                                let offset = try await log.append(LogConcurrencyTests.tagged(task: task, sequence: sequence))
                                outcomes.append((task, sequence, offset, nil))
                            } catch {
                                outcomes.append((task, sequence, nil, error))
                                break  // refused once, refused for good
                            }
                        }
                        return outcomes
                    }
                }
                var all: [Outcome] = []
                for await outcome in group { all += outcome }
                return all
            }

            let refused = outcomes.filter { $0.error != nil }
            for outcome in refused {
                #expect(outcome.error?.code == .closed, "round \(round): an append racing close() failed with \(outcome.error!)")
            }
            // Each appender ran until refused: the race was run, not avoided.
            #expect(refused.count == appenders, "round \(round): \(refused.count) of \(appenders) appenders were refused")
            // Every append that returned an offset is in the reopened log with the bytes it gave, and
            // offsets are dense: nothing but acknowledged appends was written.
            let reopened = try Log.open(directory: dir.log, configuration: LogConfiguration(durability: durability))
            defer { try? reopened.close() }
            let acknowledged = outcomes.filter { $0.offset != nil }
            for outcome in acknowledged {
                let tag = LogConcurrencyTests.tag(of: try reopened.read(at: outcome.offset!))
                #expect(tag?.task == outcome.task && tag?.sequence == outcome.sequence,
                        "round \(round): offset \(outcome.offset!) holds \(tag.map { "\($0)" } ?? "foreign bytes"), not \(outcome.task)/\(outcome.sequence)")
            }
            #expect(Set(acknowledged.map { $0.offset! }).count == acknowledged.count)
            #expect(reopened.endOffset == UInt64(acknowledged.count),
                    "round \(round): \(reopened.endOffset) records after reopen, \(acknowledged.count) acknowledged")
        }
    }
}

private final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
