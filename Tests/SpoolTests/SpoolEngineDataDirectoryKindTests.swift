#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing
@testable import Spool

/// The engine opens only an engine data directory: pointed at a task store's directory or at a
/// log, it refuses before writing anything (issue 25, "The engine, pointed at a task-store
/// directory … writes its own [checkpoint] over it").
@Suite struct SpoolEngineDataDirectoryKindTests {
    /// A task store's directory as stores made before the `kind` marker left it: `log/` with a
    /// segment, and a task store checkpoint (`SQCP`).
    private func makeTaskStoreDirectory(_ path: String) throws {
        try #require(mkdir(path, 0o700) == 0 && mkdir(path + "/log", 0o700) == 0)
        let log = try Log.open(directory: path + "/log")
        try log.close()
        try writeBytes(path + "/checkpoint", Array("SQCP".utf8) + [1, 0, 0, 0] + Array(repeating: 0, count: 12) + [0x11, 0x22, 0x33, 0x44])
    }

    private func expectRefusal(_ directory: String, saying words: String) {
        #expect {
            _ = try SpoolEngine.open(directory: directory)
        } throws: { error in
            guard let error = error as? SpoolError else { return false }
            return error.code == .invalidArgument && error.message.contains(words)
                && (error.underlying as? LogError)?.code == .wrongDirectoryKind
        }
    }

    @Test("pointed at a task store's directory, the engine refuses and leaves it byte for byte")
    func refusesATaskStore() throws {
        let dir = TemporaryDirectory()
        let tasks = dir.path + "/tasks"
        try makeTaskStoreDirectory(tasks)
        let before = fileTree(tasks)
        expectRefusal(tasks, saying: "is a Spool task store")
        #expect(fileTree(tasks) == before)
        #expect(!directoryEntries(tasks).contains("history"))

        // Marked stores are refused the same way.
        try writeBytes(tasks + "/kind", Array("spool-task-store 1\n".utf8))
        let marked = fileTree(tasks)
        expectRefusal(tasks, saying: "is a Spool task store")
        #expect(fileTree(tasks) == marked)
    }

    @Test("pointed at its own history log, the engine refuses")
    func refusesALogDirectory() async throws {
        let dir = TemporaryDirectory()
        let data = dir.path + "/data"
        try await SpoolEngine.open(directory: data).close()
        let before = fileTree(data + "/history")
        expectRefusal(data + "/history", saying: "is a Spool log directory")
        #expect(fileTree(data + "/history") == before)
    }

    @Test("a directory marked by something unknown is refused")
    func refusesAnUnknownMarker() throws {
        let dir = TemporaryDirectory()
        try writeBytes(dir.path + "/kind", Array("spool-engine 99\n".utf8))
        expectRefusal(dir.path, saying: "does not know")
    }

    @Test("a data directory made before markers opens with its runs and is marked")
    func adoptsAnUnmarkedDataDirectory() async throws {
        let harness = try EngineHarness()
        let execution = try await harness.start("wf-1")
        let data = harness.directory + "/data"
        #expect(readFile(data + "/kind") == Array("spool-engine 1\n".utf8))
        try await harness.engine.close()
        #expect(unlink(data + "/kind") == 0)
        harness.engine = try EngineHarness.open(harness.directory, clock: harness.clock, durability: harness.durability)
        _ = try harness.describe(execution)  // throws notFound if the run were lost
        #expect(readFile(data + "/kind") == Array("spool-engine 1\n".utf8))
    }
}

/// Replaces `path` with `bytes`.
private func writeBytes(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    try #require(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    try #require(written == bytes.count)
}
