import Synchronization
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// Many tasks appending and reading at once: every append gets its own offset, offsets are dense,
/// each reads back what its appender wrote, and readers never see an error or foreign bytes.
@Suite struct LogConcurrencyTests {
    /// A record that names its writer: task and sequence number, then bytes derived from both, so
    /// that a reader can check any record it sees without knowing who wrote it.
    static func tagged(task: Int, sequence: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt32(task).littleEndian) { bytes += $0 }
        withUnsafeBytes(of: UInt32(sequence).littleEndian) { bytes += $0 }
        return bytes + payload(task << 20 | sequence, size: (task * 7 + sequence * 13) % 120)
    }

    /// The (task, sequence) a record names, or `nil` when its bytes are not exactly what that writer wrote.
    static func tag(of bytes: [UInt8]) -> (task: Int, sequence: Int)? {
        guard bytes.count >= 8 else { return nil }
        let task = bytes.withUnsafeBytes { Int($0.loadUnaligned(as: UInt32.self).littleEndian) }
        let sequence = bytes.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian) }
        return tagged(task: task, sequence: sequence) == bytes ? (task, sequence) : nil
    }

    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    /// Reads while appends go on, until `done`: random records below the end, runs of records, and
    /// a reader following the tail. Returns the problems seen (empty when none) and how far the
    /// tailing reader got.
    static func readConcurrently(_ log: Log, until done: Flag, seed: UInt64) async -> (problems: [String], tail: UInt64) {
        var problems: [String] = []
        var random = seed | 1
        var tail = log.reader(from: 0)
        var expectedNext: UInt64 = 0
        func note(_ problem: String) { if problems.count < 20 { problems.append(problem) } }
        while true {
            let finished = done.isSet  // read before the last pass, so the last pass sees every append
            let end = log.endOffset
            if end > 0 {
                random ^= random << 13; random ^= random >> 7; random ^= random << 17
                let offset = random % end
                do {
                    if tag(of: try log.read(at: offset)) == nil { note("read(at: \(offset)) returned foreign bytes") }
                    let run = try log.read(from: offset, maxRecords: 64)
                    if run.isEmpty { note("read(from: \(offset)) below the end \(end) returned nothing") }
                    for (k, record) in run.enumerated() {
                        if record.offset != offset + UInt64(k) { note("read(from: \(offset)) has a gap at \(record.offset)") }
                        if tag(of: record.payload) == nil { note("read(from: \(offset)) returned foreign bytes at \(record.offset)") }
                    }
                } catch {
                    note("reading at \(offset) below the end \(end) threw \(error)")
                }
            }
            do {
                while let record = try tail.next() {
                    if record.offset != expectedNext { note("the tailing reader skipped from \(expectedNext) to \(record.offset)") }
                    if tag(of: record.payload) == nil { note("the tailing reader got foreign bytes at \(record.offset)") }
                    expectedNext = record.offset + 1
                }
            } catch {
                note("the tailing reader threw \(error)")
            }
            if finished { return (problems, expectedNext) }
            await Task.yield()
        }
    }

    @Test(arguments: [Durability.sync, .interval(milliseconds: 1), .none])
    func concurrentAppendsGetDenseUniqueOffsets(durability: Durability) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(durability, preallocationBytes: 16 << 10)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        let tasks = 64, appendsPerTask = 200, total = tasks * appendsPerTask
        let done = Flag()

        let readers = (0..<2).map { r in Task { await Self.readConcurrently(log, until: done, seed: UInt64(r + 1) * 0x9E37_79B9) } }
        let appended: [(task: Int, offsets: [UInt64])] = try await withThrowingTaskGroup(of: (Int, [UInt64]).self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var offsets: [UInt64] = []
                    offsets.reserveCapacity(appendsPerTask)
                    for sequence in 0..<appendsPerTask {
                        offsets.append(try await log.append(Self.tagged(task: task, sequence: sequence)))
                    }
                    return (task, offsets)
                }
            }
            var all: [(task: Int, offsets: [UInt64])] = []
            for try await result in group { all.append(result) }
            return all
        }
        done.set()
        for reader in readers {
            let (problems, tail) = await reader.value
            #expect(problems == [])
            #expect(tail == UInt64(total), "the tailing reader reaches the end")
        }

        #expect(log.endOffset == UInt64(total))
        let everyOffset = appended.flatMap(\.offsets)
        #expect(everyOffset.count == total)
        #expect(Set(everyOffset).count == total, "no offset is given twice")
        #expect(everyOffset.sorted() == Array(0..<UInt64(total)), "offsets are dense")
        var wrong: [String] = []
        for (task, offsets) in appended {
            // One task's appends, each awaited before the next, are ordered.
            if offsets != offsets.sorted() { wrong.append("task \(task): offsets out of order") }
            for (sequence, offset) in offsets.enumerated() {
                let tag = Self.tag(of: try log.read(at: offset))
                if tag?.task != task || tag?.sequence != sequence { wrong.append("offset \(offset): not task \(task) #\(sequence)") }
            }
        }
        #expect(wrong.prefix(10) == [])
        #expect(log.segmentBaseOffsets.count > 1, "the appends should have crossed segment rolls")
        try log.close()

        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        let records = try readAll(reopened)
        #expect(records.count == total)
        #expect(records.allSatisfy { Self.tag(of: $0.payload) != nil })
        try reopened.close()
    }

    /// `append(contentsOf:)` from many tasks: each call's records get one contiguous range and read
    /// back in the order given.
    @Test(arguments: [Durability.sync, .none])
    func concurrentMultiRecordAppendsGetContiguousRanges(durability: Durability) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(durability, preallocationBytes: 16 << 10)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        let tasks = 32, callsPerTask = 30
        let results: [(task: Int, call: Int, range: Range<UInt64>)] = try await withThrowingTaskGroup(
            of: [(Int, Int, Range<UInt64>)].self
        ) { group in
            for task in 0..<tasks {
                group.addTask {
                    var ranges: [(Int, Int, Range<UInt64>)] = []
                    for call in 0..<callsPerTask {
                        let count = 1 + (task + call) % 8
                        let records = (0..<count).map { Self.tagged(task: task, sequence: call * 100 + $0) }
                        ranges.append((task, call, try await log.append(contentsOf: records)))
                    }
                    return ranges
                }
            }
            var all: [(task: Int, call: Int, range: Range<UInt64>)] = []
            for try await ranges in group { all += ranges.map { (task: $0.0, call: $0.1, range: $0.2) } }
            return all
        }
        var wrong: [String] = []
        var covered: [UInt64] = []
        for (task, call, range) in results {
            let count = 1 + (task + call) % 8
            if range.count != count { wrong.append("task \(task) call \(call): \(range) for \(count) records") }
            covered += Array(range)
            for (k, offset) in range.enumerated() {
                let tag = Self.tag(of: try log.read(at: offset))
                if tag?.task != task || tag?.sequence != call * 100 + k { wrong.append("offset \(offset): not task \(task) call \(call) #\(k)") }
            }
        }
        #expect(wrong.prefix(10) == [])
        let total = (0..<tasks).reduce(0) { sum, task in sum + (0..<callsPerTask).reduce(0) { $0 + 1 + (task + $1) % 8 } }
        #expect(results.count == tasks * callsPerTask)
        #expect(covered.sorted() == Array(0..<UInt64(total)), "ranges are disjoint and leave no gaps")
        #expect(log.endOffset == UInt64(total))
        try log.close()
    }

    /// A crash while many tasks append: every append that was acknowledged is there after reopening,
    /// with the bytes its appender wrote; what follows is only whole, well-formed records.
    @Test(arguments: [Durability.sync, .interval(milliseconds: 1), .none])
    func acknowledgedAppendsSurviveACrashUnderLoad(durability: Durability) async throws {
        let dir = TemporaryDirectory()
        let configuration = smallSegmentConfiguration(durability, preallocationBytes: 16 << 10)
        let log = try Log.open(directory: dir.log, configuration: configuration)
        let stop = Flag()
        let appenders = (0..<16).map { task in
            Task { () -> [(offset: UInt64, sequence: Int)] in
                var acknowledged: [(offset: UInt64, sequence: Int)] = []
                var sequence = 0
                while !stop.isSet {
                    do {
                        acknowledged.append((try await log.append(Self.tagged(task: task, sequence: sequence)), sequence))
                    } catch {
                        break  // the log was abandoned under this append
                    }
                    sequence += 1
                }
                return acknowledged
            }
        }
        while log.endOffset < 3000 { await Task.yield() }
        log.abandon()
        stop.set()
        var acknowledged: [(task: Int, offset: UInt64, sequence: Int)] = []
        for (task, appender) in appenders.enumerated() {
            acknowledged += await appender.value.map { (task, $0.offset, $0.sequence) }
        }
        #expect(acknowledged.count >= 3000)

        let reopened = try Log.open(directory: dir.log, configuration: configuration)
        #expect(!reopened.recovery.cleanShutdown)
        let maxAcknowledged = try #require(acknowledged.map(\.offset).max())
        #expect(reopened.endOffset > maxAcknowledged)
        var wrong: [String] = []
        for (task, offset, sequence) in acknowledged {
            do {
                let tag = Self.tag(of: try reopened.read(at: offset))
                if tag?.task != task || tag?.sequence != sequence { wrong.append("offset \(offset): not task \(task) #\(sequence)") }
            } catch {
                wrong.append("offset \(offset): \(error)")
            }
        }
        #expect(wrong.prefix(10) == [])
        let records = try readAll(reopened)
        #expect(records.map(\.offset) == Array(0..<reopened.endOffset))
        #expect(records.allSatisfy { Self.tag(of: $0.payload) != nil })
        try reopened.close()
    }
}
