#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// Runs the `spool torture` crash harness (built next to this test bundle by `swift test`):
/// real `SIGKILL`s of a child process appending in `.sync` mode, and in-process simulated power
/// losses. The harness itself verifies every crash (see `Tools/spool/Torture/`); this checks
/// its verdict: 0 acknowledged records lost, 0 duplicated, 0 corrupt, the log opened every time.
@Suite struct LogTortureTests {
    @Test func twentyKillsLoseNothingAcknowledged() throws {
        let result = try Self.torture(["--kills", "20", "--appenders", "8", "--max-life-ms", "200"])
        Self.expectClean(result, crashes: 20)
    }

    @Test func fiftySimulatedPowerLossesLoseNothingAcknowledged() throws {
        let result = try Self.torture(["--power-loss", "--kills", "50", "--appenders", "6"])
        Self.expectClean(result, crashes: 50)
    }

    struct Result {
        var status: Int32
        var output: String
        var seed: UInt64

        /// The integer field `name` of the JSON object the harness printed.
        func field(_ name: String) -> Int? {
            let key = Array("\"\(name)\":".utf8)
            let bytes = Array(output.utf8)
            guard bytes.count >= key.count, let start = (0...(bytes.count - key.count)).first(where: { bytes[$0..<$0 + key.count].elementsEqual(key) })
            else { return nil }
            return Int(String(decoding: bytes[(start + key.count)...].prefix { $0 >= 48 && $0 <= 57 }, as: UTF8.self))
        }
    }

    static func expectClean(_ result: Result, crashes: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        let context = "seed \(result.seed): \(result.output)"
        #expect(result.status == 0, "\(context)", sourceLocation: sourceLocation)
        #expect(result.field("crashes") == crashes, "\(context)", sourceLocation: sourceLocation)
        #expect(result.field("lost") == 0, "\(context)", sourceLocation: sourceLocation)
        #expect(result.field("duplicated") == 0, "\(context)", sourceLocation: sourceLocation)
        #expect(result.field("corrupt") == 0, "\(context)", sourceLocation: sourceLocation)
        #expect(result.field("failedOpens") == 0, "\(context)", sourceLocation: sourceLocation)
        #expect((result.field("acknowledged") ?? 0) > 0, "\(context)", sourceLocation: sourceLocation)
    }

    /// The `spool` executable beside this test bundle.
    static func spoolExecutable() throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        try #require(n > 0)
        let me = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let path = String(me[..<me.lastIndex(of: "/")!]) + "/spool"
        try #require(access(path, X_OK) == 0, "\(path) is missing: build the package (swift build or swift test) first")
        return path
    }

    static func torture(_ arguments: [String]) throws -> Result {
        let executable = try spoolExecutable()
        let dir = TemporaryDirectory("spool-torture")
        let seed = LogPowerLossTests.seed()
        let argv = ["spool", "torture", "--json", "--data", dir.path, "--seed", String(seed)] + arguments
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO)
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, nil, cArguments, environ)
        close(fds[1])
        defer { close(fds[0]) }
        try #require(spawned == 0, "posix_spawn \(executable): \(spawned)")
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 { output += buffer[0..<n] } else if n == 0 || errno != EINTR { break }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return Result(status: status, output: String(decoding: output, as: UTF8.self), seed: seed)
    }
}
