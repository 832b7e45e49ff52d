#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolLogTesting
import SpoolQueue
import SpoolTestSupport
import SpoolToolSupport
import Testing

/// The loop of `spool task add` (``TaskAdder``) against a task store whose log's system calls
/// can fail: disk full names the line and how many were added before it; batching keeps
/// fdatasyncs far below one per line.
@Suite struct TaskAdderFaultTests {
    /// A store in `scratch` whose log goes through `faults`.
    func openStore(_ scratch: ScratchDirectory, faults: FaultInjectingSyscalls) throws -> TaskStore {
        var configuration = TaskStoreConfiguration(durability: .sync)
        configuration.log.syscalls = faults
        configuration.log.preallocationBytes = 0
        configuration.checkpointInterval = .seconds(3600)
        return try TaskStore.open(directory: scratch.path + "/tasks", configuration: configuration)
    }

    /// A pipe whose read end holds `bytes` (written before reading starts, so under 64 KiB).
    func pipeHolding(_ bytes: [UInt8], close closeWriter: Bool = true) throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        try #require(bytes.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) } == bytes.count)
        if closeWriter { close(ends[1]) }
        return (ends[0], ends[1])
    }

    @Test("2,000 lines: ids in line order, and far fewer fdatasyncs than lines")
    func orderWithBatchedSyncs() async throws {
        let scratch = ScratchDirectory()
        let faults = FaultInjectingSyscalls()
        let store = try openStore(scratch, faults: faults)
        let input = (1...2000).map { "line \($0)\n" }.joined()
        let ends = try pipeHolding(Array(input.utf8))
        defer { close(ends.read) }
        var lines = InputLines(descriptor: ends.read)
        var seen: [(Int, UInt64)] = []
        faults.clearTrace()
        let queue = try store.queue("q", kind: .activity)
        let outcome = await TaskAdder(format: .text, options: TaskOptions()).run(lines: &lines, queue: queue, store: store) { seen.append(($0, $1)) }
        #expect(outcome.failure.map { "line \($0.line): \($0.message)" } == nil)
        #expect(outcome.added == 2000)
        #expect(seen.map(\.0) == Array(1...2000))
        #expect(seen.map(\.1) == seen.map(\.1).sorted())
        let syncs = faults.calls(.fdatasync).count
        #expect(syncs <= 100, "\(syncs) fdatasyncs for 2,000 lines")
        try await store.close()
    }

    @Test("disk full: the failure names the first line not added and how many were added before it")
    func diskFullNamesTheLine() async throws {
        let scratch = ScratchDirectory()
        let faults = FaultInjectingSyscalls()
        let store = try openStore(scratch, faults: faults)
        // Three lines now; two more once the first three are durable, then the disk is full.
        let ends = try pipeHolding(Array("one\ntwo\nthree\n".utf8), close: false)
        defer { close(ends.read) }
        var lines = InputLines(descriptor: ends.read)
        let queue = try store.queue("q", kind: .activity)
        var added: [Int] = []
        let outcome = await TaskAdder(format: .text, options: TaskOptions()).run(lines: &lines, queue: queue, store: store) { line, _ in
            added.append(line)
            if line == 3 {
                faults.fail(.pwrite, errno: ENOSPC)
                faults.fail(.fdatasync, errno: ENOSPC)
                let more = Array("four\nfive\n".utf8)
                _ = more.withUnsafeBytes { write(ends.write, $0.baseAddress, $0.count) }
                close(ends.write)
            }
        }
        #expect(added == [1, 2, 3])
        #expect(outcome.added == 3)
        let failure = try #require(outcome.failure)
        #expect(failure.line == 4)
        #expect(failure.message.contains("No space left on device") || failure.message.contains("ENOSPC") || failure.message.contains("28"),
                "\(failure.message)")
        _ = try? await store.close()
    }
}
