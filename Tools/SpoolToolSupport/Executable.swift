#if canImport(Glibc)
import Glibc
#endif

/// The path of the running executable, read from `/proc/self/exe` (symbolic links resolved);
/// nil when it cannot be read.
package func runningExecutablePath() -> String? {
    var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = buffer.withUnsafeMutableBufferPointer { pointer in
        pointer.withMemoryRebound(to: CChar.self) { readlink("/proc/self/exe", $0.baseAddress!, $0.count - 1) }
    }
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count], as: UTF8.self)
}

/// Where an executable named `name` is expected beside the running one: `spool` and `spool-lab`
/// are built into, and installed in, one directory. Nil when the running executable's path
/// cannot be read.
package func siblingExecutablePath(_ name: String) -> String? {
    guard let own = runningExecutablePath() else { return nil }
    let directory = own.lastIndex(of: "/").map { String(own[..<$0]) } ?? "."
    return (directory.isEmpty ? "" : directory) + "/" + name
}
