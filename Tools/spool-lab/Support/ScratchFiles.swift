#if canImport(Glibc)
import Glibc
#endif

// The benches' and torture runs' scratch directories and files.

/// Removes a directory tree (the bench's scratch data).
func removeTree(_ path: String) {
    guard !path.isEmpty, path != "/" else { return }
    var status: Int32 = 0
    let args = ["/bin/rm", "-rf", path]
    var pid = pid_t()
    var cArgs = args.map { strdup($0) } + [nil]
    defer { for arg in cArgs { free(arg) } }
    if posix_spawn(&pid, "/bin/rm", nil, nil, &cArgs, environ) == 0 { waitpid(pid, &status, 0) }
}

/// A fresh directory under $TMPDIR (or /tmp).
func makeTemporaryDirectory() throws(ValidationErrorMessage) -> String {
    let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    var template = Array((base + "/spool-bench-XXXXXX").utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
        throw ValidationErrorMessage("cannot create a scratch directory in \(base): \(String(cString: strerror(errno)))")
    }
    return String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
}

func makeDirectory(_ path: String) throws(ValidationErrorMessage) {
    if mkdir(path, 0o700) != 0 && errno != EEXIST {
        throw ValidationErrorMessage("cannot create \(path): \(String(cString: strerror(errno)))")
    }
}

struct ValidationErrorMessage: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
