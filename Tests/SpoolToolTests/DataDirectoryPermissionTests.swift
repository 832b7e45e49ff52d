#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing

/// A data directory holds other people's work: whatever the stores create in it — the
/// directories of the logs and stores, segments, indexes, checkpoints, lock files — is readable
/// by its owner only (directories 0700, files 0600), whatever the process umask allows.
@Suite("data directory permissions")
struct DataDirectoryPermissionTests {
    @Test("the engine and the task store create directories 0700 and files 0600")
    func ownerOnly() throws {
        let scratch = ScratchDirectory()
        let data = scratch.path + "/data"
        let demo = try SpoolProcess.run(["demo", "--data", data])
        #expect(demo.status == 0, "\(demo.stderr)")
        // The task commands need an existing data directory; the store creates DIR/tasks in it.
        let queues = scratch.path + "/queues"
        mkdir(queues, 0o755)
        let add = try SpoolProcess.run(["task", "add", "--data", queues, "--queue", "q"], input: "one\ntwo\n")
        #expect(add.status == 0, "\(add.stderr)")

        var checked = 0
        for (path, mode, isDirectory) in tree(data) + tree(queues + "/tasks") {
            checked += 1
            #expect(mode == (isDirectory ? 0o700 : 0o600), "\(path) has mode \(String(mode, radix: 8))")
        }
        #expect(checked >= 8, "only \(checked) paths were checked")
    }

    /// Every path under `root` (itself included) with its permission bits.
    private func tree(_ root: String) -> [(String, mode_t, Bool)] {
        var info = stat()
        guard lstat(root, &info) == 0 else { return [] }
        let isDirectory = info.st_mode & S_IFMT == S_IFDIR
        var result = [(root, info.st_mode & 0o777, isDirectory)]
        if isDirectory {
            for name in directoryEntries(root) { result += tree(root + "/" + name) }
        }
        return result
    }
}
