#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing

/// Found by the damage matrix: a damaged `kind` marker makes every open refuse the directory (it
/// may be another program's, or a newer Spool's), yet `spool recover` said "clean" (exit 0) and
/// salvage left it as it was. Check now reports it, naming the file and what the layout says;
/// salvage rewrites it from the layout and keeps the damaged one.
@Suite("spool recover: the directories' kind markers")
struct RecoverKindMarkerTests {
    @Test("a damaged marker: check exits 1 naming it; salvage rewrites it; the stores open with every task and run",
          arguments: ["", "tasks"])
    func damagedMarker(_ store: String) throws {
        let scratch = ScratchDirectory()
        let data = scratch.path + "/data"
        let add = try SpoolProcess.run(["task", "add", "--data", data, "--queue", "q"], input: "a\nb\n")
        try #require(add.status == 0, "\(add.stderr)")
        let start = try SpoolProcess.run(["workflow", "start", "--data", data, "--id", "w", "--type", "t", "--task-queue", "q"])
        try #require(start.status == 0, "\(start.stderr)")
        let directory = store.isEmpty ? data : data + "/" + store
        let marker = directory + "/kind"
        let original = readBytes(marker)
        try writeFile(marker, Array("spool-e\u{7F}gine 1\n".utf8))

        let peek = try SpoolProcess.run(["queue", "peek", "--data", data, "--queue", "q"])
        #expect(peek.status == 2 && peek.stderr.contains("kind file"), "\(peek.stderr)")
        let check = try SpoolProcess.run(["recover", "--data", data])
        #expect(check.status == 1, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("problem: kindMarkerDamaged (damage): \(marker): the directory's kind marker reads"), "\(check.stdout)")
        #expect(check.stdout.contains("Its layout is that of a Spool \(store.isEmpty ? "data directory" : "task store")"), "\(check.stdout)")

        let salvage = try SpoolProcess.run(["recover", "--data", data, "--mode", "salvage", "--no-backup"])
        #expect(salvage.status == 0, "\(salvage.stdout)\(salvage.stderr)")
        #expect(salvage.stdout.contains("kind: \(marker) read 'spool-e") && salvage.stdout.contains("kept as \(marker).damaged"),
                "\(salvage.stdout)")
        #expect(readBytes(marker) == original)
        let again = try SpoolProcess.run(["recover", "--data", data])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
        let ids = try SpoolProcess.run(["queue", "peek", "--data", data, "--queue", "q"])
        #expect(ids.status == 0 && ids.stdout.split(separator: "\n").count == 2, "\(ids.stdout)\(ids.stderr)")
        let list = try SpoolProcess.run(["workflow", "list", "--data", data, "--json"])
        #expect(list.status == 0 && list.stdout.contains("\"workflowId\":\"w\""), "\(list.stdout)\(list.stderr)")
    }
}
