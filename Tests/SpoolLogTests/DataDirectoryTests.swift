#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolLogTesting
import SpoolTestSupport
import Testing

/// The data directory's layout, and the one way it is checked and created.
@Suite("DataDirectory")
struct DataDirectoryTests {
    @Test("trailing slashes are dropped once, and every path of the layout is built from the result")
    func layout() {
        let data = DataDirectory("/var/lib/spool//")
        #expect(data.path == "/var/lib/spool")
        #expect(data.history == "/var/lib/spool/history")
        #expect(data.checkpoint == "/var/lib/spool/checkpoint")
        #expect(data.taskStore.path == "/var/lib/spool/tasks")
        #expect(data.taskStore.log == "/var/lib/spool/tasks/log")
        #expect(data.taskStore.checkpoint == "/var/lib/spool/tasks/checkpoint")
        #expect(DataDirectory.lockFile(ofLog: data.history) == "/var/lib/spool/history/lock")
        #expect(DataDirectory("/").path == "/")
        #expect(DataDirectory("data/").path == "data")
        #expect(DataDirectory.StoreDirectory("queues/").log == "queues/log")
        #expect(DataDirectory.parent(of: "/a") == "/" && DataDirectory.parent(of: "a") == "." && DataDirectory.parent(of: "a/b") == "a")
    }

    @Test("requireExisting refuses a missing path and a file, each with its code, and creates nothing")
    func requireExisting() throws {
        let scratch = TemporaryDirectory()
        let missing = DataDirectory(scratch.path + "/absent")
        let refusal = #expect(throws: LogError.self) { try missing.requireExisting() }
        #expect(refusal?.code == .directoryMissing && refusal?.message == DataDirectory.missingMessage && refusal?.path == missing.path)
        #expect(!missing.exists)
        let file = scratch.path + "/file"
        close(open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600))
        #expect(#expect(throws: LogError.self) { try DataDirectory(file).requireExisting() }?.code == .notADirectory)
        try DataDirectory(scratch.path).requireExisting()
    }

    @Test("create makes the directory 0700, once; a missing parent or a file is refused")
    func create() throws {
        let scratch = TemporaryDirectory()
        let data = DataDirectory(scratch.path + "/data/")
        #expect(try data.create())
        #expect(try !data.create())
        var info = stat()
        #expect(stat(data.path, &info) == 0 && info.st_mode & 0o777 == 0o700)

        #expect(#expect(throws: LogError.self) { try DataDirectory(scratch.path + "/absent/data").create() }?.code == .directoryMissing)
        #expect(!DataDirectory(scratch.path + "/absent").exists)
        let file = scratch.path + "/file"
        close(open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600))
        #expect(#expect(throws: LogError.self) { try DataDirectory(file).create() }?.code == .notADirectory)
    }

    @Test("a created directory's entry is made durable: its parent is fsynced, and a failed fsync is an error")
    func createSyncsTheParent() throws {
        let scratch = TemporaryDirectory()
        let faults = FaultInjectingSyscalls()
        #expect(try DataDirectory(scratch.path + "/a").create(syscalls: faults))
        #expect(!faults.calls(.fsync).isEmpty)

        faults.fail(.fsync, errno: EIO)
        #expect(throws: LogError.self) { try DataDirectory(scratch.path + "/b").create(syscalls: faults) }
    }
}
