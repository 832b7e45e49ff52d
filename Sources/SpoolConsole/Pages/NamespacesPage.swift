import Foundation
import Spool

/// The namespaces (retention, search attributes, runs by status) and the store (data
/// directory, log size and segments, last checkpoint, fdatasync latency, what the last open found).
enum NamespacesPage {
    /// The size of every file under `path`, summed (the log's segments and indexes).
    static func directorySize(_ path: String) -> Int {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        while let name = enumerator.nextObject() as? String {
            if let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + name),
               let size = attributes[.size] as? NSNumber, (attributes[.type] as? FileAttributeType) == .typeRegular {
                total += size.intValue
            }
        }
        return total
    }

    static func render(engine: SpoolEngine, layout: Layout) throws -> HTML {
        let namespaces = engine.listNamespaces().sorted { $0.name < $1.name }
        let rows = HTML.join(try namespaces.map { ns throws in
            let count = try engine.countWorkflowExecutions(namespace: ns.name, query: "")
            let attributes = ns.searchAttributes.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value.description))" }.joined(separator: ", ")
            return """
                <tr data-namespace="\(ns.name)"><td><a href="\(Links.workflows(ns.name))">\(ns.name)</a></td><td>\(ns.description)</td>\
                <td class="retention">\((ns.retention ?? engine.configuration.closedRunRetention).map { (r: Duration) -> String in Format.duration(r) } ?? "forever")\(ns.retention == nil ? " (the server's default)" : "")</td><td class="num">\(count.count)</td>\
                <td><a href="\(Links.taskQueues(ns.name))">task queues</a></td><td>\(attributes.isEmpty ? "—" : attributes)</td></tr>
                """
        })
        let log = engine.logStatus
        let history = engine.directory + "/history"
        let checkpoint = engine.directory + "/checkpoint"
        let checkpointTime: HTML
        if let attributes = try? FileManager.default.attributesOfItem(atPath: checkpoint), let date = attributes[.modificationDate] as? Date {
            let written = Format.time(Timestamp(nanosecondsSinceEpoch: Int64(date.timeIntervalSince1970 * 1e9)))
            checkpointTime = "\(written) (\(Format.bytes((attributes[.size] as? NSNumber)?.intValue ?? 0)))"
        } else {
            checkpointTime = "none yet (one is written periodically and at a clean shutdown)"
        }
        let recovery: HTML = engine.recovery.map { r in
            "\(r.usedCheckpoint ? "from the checkpoint (\(r.runsFromCheckpoint) runs), " : "without a checkpoint, ")\(r.recordsReplayed) records replayed, \(r.runs) runs (\(r.openRuns) open)"
        } ?? "—"
        let fsync: HTML = log.meanFdatasync.map { "\(Format.duration($0)) mean over \(log.fdatasyncs) since the server started" }
            ?? "no fdatasync since the server started"
        return layout.page(title: "Namespaces & store", """
            <h1>Namespaces</h1>
            <div class="scroll"><table id="namespaces"><thead><tr><th>Name</th><th>Description</th><th>Retention</th><th class="num">Runs</th><th></th><th>Search attributes</th></tr></thead>\
            <tbody>\(rows)</tbody></table></div>
            <h1>Store</h1>
            <table class="summary" id="store">
            <tr><th>Data directory</th><td class="mono">\(engine.directory)</td></tr>
            <tr><th>Log size</th><td id="log-size">\(Format.bytes(directorySize(history)))</td></tr>
            <tr><th>Segments</th><td id="segments">\(log.segmentBaseOffsets.count)</td></tr>
            <tr><th>Log end offset</th><td>\(log.endOffset)</td></tr>
            <tr><th>Written since start</th><td>\(log.recordsWritten) records, \(Format.bytes(log.bytesWritten))</td></tr>
            <tr><th>fdatasync latency</th><td id="fdatasync">\(fsync)</td></tr>
            <tr><th>Last checkpoint</th><td id="checkpoint">\(checkpointTime)</td></tr>
            <tr><th>Opened</th><td>\(recovery)</td></tr>
            </table>
            """)
    }
}
