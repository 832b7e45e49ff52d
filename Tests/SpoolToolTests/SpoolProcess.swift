#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport

/// Runs the `spool` executable built beside the test bundle and collects what it printed.
enum SpoolProcess {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    struct LaunchError: Error, CustomStringConvertible {
        var description: String
    }

    /// `.build/<triple>/debug/spool`: `swift test` builds every product of the package, and the test
    /// bundle runs from the same directory.
    static var executable: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let bundle = count > 0 ? String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        let directory = bundle.lastIndex(of: "/").map { String(bundle[..<$0]) } ?? "."
        return directory + "/spool"
    }

    /// Runs `spool arguments…` to completion with `input` on its standard input, its stdout and
    /// stderr sent to files and read back.
    static func run(_ arguments: [String], input: String = "") throws -> Result {
        try run(arguments, input: input, executable: executable)
    }

    /// Runs `path arguments…` as ``run(_:input:)`` runs `spool` (a copy of it elsewhere, say).
    static func run(_ arguments: [String], input: String = "", executable path: String) throws -> Result {
        guard fileExists(path) else {
            throw LaunchError(description: "the spool executable was not found beside the test bundle (looked for \(path))")
        }
        let scratch = ScratchDirectory()
        let out = scratch.path + "/stdout", err = scratch.path + "/stderr", inputPath = scratch.path + "/stdin"
        try writeFile(inputPath, Array(input.utf8))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard spawned == 0 else { throw LaunchError(description: "posix_spawn \(path): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, which Glibc's overlay does not import as functions.
        let exited = status & 0x7f == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, stdout: readText(out), stderr: readText(err))
    }

    /// ``run(_:input:)`` on a thread of its own: for long runs, which would otherwise hold one
    /// of the cooperative pool's threads (two on a 2-core machine) while the child runs.
    static func runOnOwnThread(_ arguments: [String], input: String = "") async throws -> Result {
        try await onOwnThread { try run(arguments, input: input) }
    }
}

/// A fresh directory under /tmp, removed with its contents when released.
typealias ScratchDirectory = TemporaryDirectory

func fileExists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

func readBytes(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        bytes += chunk[..<count]
    }
    return bytes
}

func readText(_ path: String) -> String { String(decoding: readBytes(path), as: UTF8.self) }

struct WriteError: Error {}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { throw WriteError() }
    defer { close(fd) }
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw WriteError() }
}

/// Every file under `path` with its bytes: equal snapshots mean nothing was created, changed or deleted.
func snapshot(_ path: String) -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    func walk(_ directory: String, _ prefix: String) {
        for name in directoryEntries(directory) {
            let full = directory + "/" + name
            var info = stat()
            guard lstat(full, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR {
                files[prefix + name + "/"] = []
                walk(full, prefix + name + "/")
            } else {
                files[prefix + name] = readBytes(full)
            }
        }
    }
    walk(path, "")
    return files
}
