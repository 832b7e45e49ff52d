#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport

extension SpoolProcess {
    /// What a run printed, as bytes.
    struct ByteResult {
        var status: Int32
        var stdout: [UInt8]
        var stderr: String
    }

    /// Runs `spool` with arguments given as raw bytes (not necessarily UTF-8) and `input` as
    /// raw bytes on its standard input.
    static func runBytes(_ arguments: [[UInt8]], input: [UInt8] = []) throws -> ByteResult {
        let path = executable
        guard fileExists(path) else { throw LaunchError(description: "the spool executable was not found at \(path)") }
        let scratch = ScratchDirectory()
        let out = scratch.path + "/stdout", err = scratch.path + "/stderr", inputPath = scratch.path + "/stdin"
        try writeFile(inputPath, input)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([Array(path.utf8)] + arguments).map { bytes in
            let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            for (index, byte) in bytes.enumerated() { pointer[index] = CChar(bitPattern: byte) }
            pointer[bytes.count] = 0
            return pointer
        } + [nil]
        defer { for pointer in argv { pointer?.deallocate() } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard spawned == 0 else { throw LaunchError(description: "posix_spawn \(path): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return ByteResult(status: code, stdout: readBytes(out), stderr: readText(err))
    }

    /// ``runBytes(_:input:)`` with UTF-8 arguments.
    static func runBytes(_ arguments: [String], input: [UInt8]) throws -> ByteResult {
        try runBytes(arguments.map { Array($0.utf8) }, input: input)
    }
}
