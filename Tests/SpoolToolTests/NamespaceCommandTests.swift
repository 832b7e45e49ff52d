#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing

/// `spool namespace …` and `spool search-attribute …` as a user runs them: what they print, their
/// exit statuses, and that a rejected command leaves the data directory as it was.
@Suite("spool namespace and spool search-attribute")
struct NamespaceCommandTests {
    @Test("namespaces and search attributes are registered durably; rejections exit 1 or 64 and change nothing")
    func namespacesAndSearchAttributes() throws {
        let scratch = ScratchDirectory()
        let data = scratch.path
        #expect(try SpoolProcess.run(["workflow", "start", "--data", data, "--id", "w", "--type", "t", "--task-queue", "q"]).status == 0)

        let created = try SpoolProcess.run(["namespace", "create", "--data", data, "--namespace", "billing", "--retention", "3d",
                                            "--description", "invoices", "--json"])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("\"name\":\"billing\"") && created.stdout.contains("\"retention\":\"3d\"")
                && created.stdout.contains("\"description\":\"invoices\""), "\(created.stdout)")
        var info = stat()
        #expect(stat(data + "/namespaces", &info) == 0 && info.st_mode & 0o777 == 0o600)

        let before = snapshot(data)
        let again = try SpoolProcess.run(["namespace", "create", "--data", data, "--namespace", "billing"])
        #expect(again.status == 1 && again.stderr.contains("namespace 'billing' is already registered"), "\(again.stderr)")
        let badName = try SpoolProcess.run(["namespace", "create", "--data", data, "--namespace", "no spaces"])
        #expect(badName.status == 1 && badName.stderr.contains("must be 1 to 255 letters"), "\(badName.stderr)")
        let badRetention = try SpoolProcess.run(["namespace", "create", "--data", data, "--namespace", "x", "--retention", "soon"])
        #expect(badRetention.status == 64 && badRetention.stderr.contains("--retention"), "\(badRetention.stderr)")
        let badType = try SpoolProcess.run(["search-attribute", "create", "--data", data, "--name", "X", "--type", "Blob"])
        #expect(badType.status == 64 && badType.stderr.contains("--type"), "\(badType.stderr)")
        let missing = try SpoolProcess.run(["namespace", "describe", "--data", data, "--namespace", "nope"])
        #expect(missing.status == 1 && missing.stderr.contains("namespace 'nope' is not registered"), "\(missing.stderr)")
        #expect(snapshot(data) == before, "a rejected command changed the data directory")

        #expect(try SpoolProcess.run(["namespace", "update", "--data", data, "--namespace", "billing", "--retention", "12h"]).status == 0)
        let listed = try SpoolProcess.run(["namespace", "list", "--data", data])
        #expect(listed.stdout == "billing  retention 12h  invoices\ndefault  retention default  \n", "\(listed.stdout)")

        #expect(try SpoolProcess.run(["search-attribute", "create", "--data", data, "--name", "CustomerId", "--type", "keyword"]).status == 0)
        let attributes = try SpoolProcess.run(["search-attribute", "list", "--data", data])
        #expect(attributes.stdout == "CustomerId  Keyword\n", "\(attributes.stdout)")
        let counted = try SpoolProcess.run(["workflow", "count", "--data", data, "--query", "CustomerId IS NULL"])
        #expect(counted.status == 0 && counted.stdout.hasPrefix("1 run"), "\(counted.stdout) \(counted.stderr)")
        #expect(try SpoolProcess.run(["search-attribute", "remove", "--data", data, "--name", "CustomerId"]).status == 0)
        let gone = try SpoolProcess.run(["workflow", "count", "--data", data, "--query", "CustomerId IS NULL"])
        #expect(gone.status == 64 && gone.stderr.contains("unknown search attribute CustomerId"), "\(gone.stderr)")
    }
}
