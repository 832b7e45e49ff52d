#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

/// Starts this executable (`spool-lab`, through `/proc/self/exe`, whether it was run directly or
/// through `spool bench`/`spool torture`) again with `arguments` (without the program name), its
/// standard output a pipe. Returns the child's pid and the pipe's read end, which the caller
/// closes.
/// - Throws: `ValidationError` when the pipe or the child cannot be made.
func spawnSelf(_ arguments: [String]) throws -> (pid: pid_t, output: Int32) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw ValidationError("pipe failed: \(String(cString: strerror(errno)))") }
    // Not inherited by the child except as its standard output (dup2 clears the flag there).
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO)
    let argv = (["spool-lab"] + arguments).map { strdup($0) } + [nil]
    defer { for arg in argv { free(arg) } }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, "/proc/self/exe", &actions, nil, argv, environ)
    close(fds[1])
    guard spawned == 0 else {
        close(fds[0])
        throw ValidationError("posix_spawn failed: \(String(cString: strerror(spawned)))")
    }
    return (pid, fds[0])
}

/// Runs this executable again with `arguments` (see ``spawnSelf(_:)``) and returns what it
/// printed on standard output, once it has exited. Benches measure memory this way, so that a
/// figure is one process's alone.
/// - Throws: `ValidationError` when the child cannot be started or does not exit with status 0.
func runSelf(_ arguments: [String]) throws -> String {
    let (pid, fd) = try spawnSelf(arguments)
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n > 0 { output.append(contentsOf: buffer[0..<n]); continue }
        if n < 0 && errno == EINTR { continue }
        break
    }
    close(fd)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let text = String(decoding: output, as: UTF8.self)
    guard status == 0 else {
        throw ValidationError("the measuring child `spool-lab \(arguments.joined(separator: " "))` failed (wait status \(status)); it printed: \(text)")
    }
    return text
}

/// Runs this executable again with `arguments` (see ``runSelf(_:)``), which must print exactly
/// `count` integers separated by spaces or newlines (a measuring child's one line), and returns them.
/// - Throws: `ValidationError` when the child fails or prints anything else.
func runSelf(_ arguments: [String], expectingNumbers count: Int) throws -> [Int] {
    let output = try runSelf(arguments)
    let fields = output.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
    guard fields.count == count else {
        throw ValidationError("the measuring child printed something else than \(count) numbers: \(output)")
    }
    return fields
}

/// A field of /proc/self/status given in kB (`VmRSS:`, `RssAnon:`, `VmHWM:` …), in bytes; 0 if absent.
func residentBytes(_ field: String = "VmRSS:") -> Int {
    let fd = open("/proc/self/status", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 8192)
    let n = read(fd, &bytes, bytes.count)
    guard n > 0 else { return 0 }
    for line in String(decoding: bytes[0..<n], as: UTF8.self).split(separator: "\n") where line.hasPrefix(field) {
        let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kilobytes * 1024
    }
    return 0
}
