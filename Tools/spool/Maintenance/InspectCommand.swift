#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolLog
import SpoolToolSupport

/// `spool inspect`: a readable dump of a log's segments, batches and records, like kafka-dump-log.
struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the segments of a data directory's log, or dump the batches and records of one segment.",
        discussion: """
        Without SEGMENT or --offset: one line per segment (base offset, size, batches, records, first and last \
        offset, index entries, first timestamp). With SEGMENT (a file name such as 00000000000000000000.log, or \
        a base offset): every batch of that segment (position, base offset, count, stored and raw length, \
        compression, checksum, timestamp) and every damaged byte range; --records adds each record. With \
        --offset N: the batch holding offset N.

        A data directory holds one log per store (DIR/history, DIR/tasks): without SEGMENT or --offset each \
        is listed; with them, name the log with --log when there are several.

        Read-only: nothing is created, changed or deleted. Refuses while a process has the log open.
        --json prints JSON lines: one object per line, each with a "type" field (segment, batch, record, \
        damage, zeroTail), so that large segments stream. Exit status: 0, 1 when --offset names no record, \
        2 when the directory cannot be read (missing, empty, foreign, locked).
        """
    )

    @Option(name: .long, help: "The data directory (its logs are DIR/history and DIR/tasks, or DIR itself).")
    var data: String

    @Option(name: .customLong("log"), help: "Only this log of the data directory (history, tasks); needed with SEGMENT or --offset when there are several.")
    var logName: String?

    @Argument(help: "A segment: its file name or base offset.")
    var segment: String?

    @Option(name: .long, help: "Show the batch holding this offset.")
    var offset: UInt64?

    @Flag(name: .long, help: "Also print every record (offset, length, preview).")
    var records = false

    @Option(name: .long, help: "Bytes of each record shown in the preview (JSON: the record as hex).")
    var previewBytes = 48

    @Flag(name: .long, help: "Print JSON lines instead of text.")
    var json = false

    func validate() throws {
        if segment != nil && offset != nil { throw ValidationError("give a SEGMENT or --offset, not both") }
        guard previewBytes >= 0 else { throw ValidationError("--preview-bytes must not be negative") }
    }

    func run() async throws {
        let directory = try DataDirectoryLogs(data, log: logName, command: "inspect")
        if segment == nil && offset == nil {
            for (_, path) in directory.logs {
                let log = try directory.open(path, writable: false, command: "inspect")
                defer { log.close() }
                do {
                    try list(log, try log.listing())
                } catch let error as LogError {
                    printError("spool inspect: \(error)")
                    throw ExitCode(2)
                }
            }
            return
        }
        let log = try directory.open(try directory.single(command: "inspect"), writable: false, command: "inspect")
        defer { log.close() }
        do {
            let listing = try log.listing()
            if let offset {
                try dumpOffset(offset, log, listing)
            } else if let segment {
                guard let index = Self.find(segment, in: listing) else {
                    printError("spool inspect: \(log.directory): no segment \(segment) (segments: "
                               + "\(listing.segments.prefix(5).map(\.name).joined(separator: ", "))\(listing.segments.count > 5 ? ", …" : ""))")
                    throw ExitCode(2)
                }
                try dumpSegment(listing.segments[index], log, listing, only: nil)
            }
        } catch let error as LogError {
            printError("spool inspect: \(error)")
            throw ExitCode(2)
        }
    }

    static func find(_ name: String, in listing: LogDirectoryListing) -> Int? {
        let base = name.split(separator: "/").last.map(String.init) ?? name
        if let offset = UInt64(base) { return listing.segments.firstIndex { $0.baseOffset == offset } }
        let stem = base.hasSuffix(".index") ? String(base.dropLast(6)) : base.hasSuffix(".log") ? String(base.dropLast(4)) : base
        return UInt64(stem).flatMap { offset in listing.segments.firstIndex { $0.baseOffset == offset } }
    }

    private func nextBase(_ segment: SegmentFileInfo, _ listing: LogDirectoryListing) -> UInt64? {
        listing.segments.first { $0.baseOffset > segment.baseOffset }?.baseOffset
    }

    // MARK: The segment list

    private func list(_ log: OfflineLog, _ listing: LogDirectoryListing) throws {
        let progress = PhaseProgress(enabled: !json)
        let total = listing.segmentBytes
        var done = 0
        var rows: [[String]] = []
        var totals = (batches: 0, records: 0)
        for segment in listing.segments {
            var damaged = 0
            var reported = done
            let report = progress.callback
            let summary = try log.walkSegment(segment, nextSegmentBase: nextBase(segment, listing)) { item in
                switch item {
                case .damage: damaged += 1
                case .batch(let batch):
                    if !batch.isIntact { damaged += 1 }
                    if let report, done + batch.position - reported >= 1 << 20 {
                        reported = done + batch.position
                        report(.verifying, reported, total)
                    }
                default: break
                }
            }
            done += segment.size
            progress.callback?(.verifying, done, total)
            totals.batches += summary.batches
            totals.records += summary.records
            let entries = segment.indexSize.map { $0 / 8 }
            let last = summary.firstOffset.map { _ in summary.nextOffset - 1 }
            if json {
                var fields: [(String, JSON)] = [
                    ("type", .string("segment")), ("file", .string(segment.name)), ("baseOffset", .integer(Int(clamping: segment.baseOffset))),
                    ("bytes", .integer(segment.size)), ("dataBytes", .integer(summary.endOfIntactData)),
                    ("batches", .integer(summary.batches)), ("records", .integer(summary.records)),
                ]
                if let first = summary.firstOffset { fields.append(("firstOffset", .integer(Int(clamping: first)))) }
                if let last { fields.append(("lastOffset", .integer(Int(clamping: last)))) }
                if let entries { fields.append(("indexEntries", .integer(entries))) }
                if let stamp = summary.firstTimestamp {
                    fields.append(("firstTimestamp", .integer(Int(stamp))))
                    fields.append(("firstTime", .string(formatTimestamp(stamp))))
                }
                fields.append(("damagedRanges", .integer(damaged)))
                print(JSON.object(fields).text)
            } else {
                rows.append([segment.name, formatCount(Double(segment.size)), formatCount(Double(summary.batches)),
                             formatCount(Double(summary.records)), summary.firstOffset.map { String($0) } ?? "-",
                             last.map { String($0) } ?? "-", entries.map { String($0) } ?? "missing",
                             summary.firstTimestamp.map(formatTimestamp) ?? "-", damaged == 0 ? "" : "\(damaged) damaged"])
            }
        }
        progress.finish()
        guard !json else { return }
        print("log \(log.directory): \(listing.segments.count) segment\(listing.segments.count == 1 ? "" : "s"), "
              + "\(formatCount(Double(totals.batches))) batches, \(formatCount(Double(totals.records))) records, "
              + "\(formatCount(Double(total))) bytes")
        printTable(["segment", "bytes", "batches", "records", "first offset", "last offset", "index entries", "first timestamp", ""], rows)
        let others = listing.checkpointFiles + (listing.temporaryFiles + listing.compactionFiles + listing.orphanIndexes + listing.foreignFiles)
            .map { String($0.split(separator: "/").last ?? "") }
        if !others.isEmpty { print("other files: " + others.joined(separator: ", ")) }
    }

    // MARK: One segment

    private func dumpOffset(_ offset: UInt64, _ log: OfflineLog, _ listing: LogDirectoryListing) throws {
        guard let segment = listing.segments.last(where: { $0.baseOffset <= offset }) else {
            printError("spool inspect: offset \(offset) is below the first segment (\(listing.segments.first?.baseOffset ?? 0))")
            throw ExitCode(1)
        }
        if try !dumpSegment(segment, log, listing, only: offset) {
            printError("spool inspect: no intact batch of \(segment.name) holds offset \(offset) "
                       + "(beyond the end, removed by compaction, or in damaged bytes)")
            throw ExitCode(1)
        }
    }

    /// Dumps the segment's batches (only the one holding `only`, when given); returns whether one was printed.
    @discardableResult
    private func dumpSegment(_ segment: SegmentFileInfo, _ log: OfflineLog, _ listing: LogDirectoryListing, only: UInt64?) throws -> Bool {
        if !json && only == nil {
            print("segment \(segment.path): \(formatCount(Double(segment.size))) bytes, index "
                  + (segment.indexSize.map { "\($0 / 8) entries" } ?? "missing"))
        }
        var found = false
        var rows: [[String]] = []
        let header = ["position", "base offset", "count", "stored", "raw", "lz4", "crc", "timestamp", "note"]
        func flushRows() {
            if !rows.isEmpty { printTable(header, rows); rows = [] }
        }
        try log.walkSegment(segment, nextSegmentBase: nextBase(segment, listing), decodeRecords: records) { item in
            switch item {
            case .batch(let batch):
                if let only, !batch.offsets.contains(only) { return }
                found = true
                let h = batch.header
                if json {
                    var fields: [(String, JSON)] = [
                        ("type", .string("batch")), ("file", .string(segment.name)), ("position", .integer(batch.position)),
                        ("baseOffset", .integer(Int(clamping: h.baseOffset))), ("count", .integer(Int(h.recordCount))),
                        ("storedLength", .integer(Int(h.storedLength))), ("rawLength", .integer(Int(h.rawLength))),
                        ("compressed", .bool(h.isCompressed)), ("crcOk", .bool(true)), ("timestamp", .integer(Int(h.timestampMilliseconds))),
                        ("intact", .bool(batch.isIntact)),
                    ]
                    if let problem = batch.problem { fields.append(("problem", .string(problem))) }
                    print(JSON.object(fields).text)
                } else {
                    rows.append([String(batch.position), String(h.baseOffset), String(h.recordCount), String(h.storedLength),
                                 String(h.rawLength), h.isCompressed ? "yes" : "no", "ok", formatTimestamp(h.timestampMilliseconds),
                                 batch.problem ?? ""])
                }
                if records, let decoded = batch.records {
                    flushRows()
                    for record in decoded {
                        if json {
                            print(JSON.object([("type", .string("record")), ("offset", .integer(Int(clamping: record.offset))),
                                               ("length", .integer(record.payload.count)),
                                               ("hex", .string(hexString(Array(record.payload.prefix(previewBytes))))),
                                               ("truncated", .bool(record.payload.count > previewBytes))]).text)
                        } else {
                            let mark = only == record.offset ? " <" : ""
                            print("    offset \(record.offset)  length \(record.payload.count)  \(preview(record.payload, limit: previewBytes))\(mark)")
                        }
                    }
                }
            case .damage(let damage):
                if only != nil { return }
                if json {
                    var fields: [(String, JSON)] = [("type", .string("damage")), ("file", .string(segment.name)),
                                                    ("bytes", jsonRange(damage.bytes)), ("reason", .string(damage.reason))]
                    if let offsets = damage.offsetsAtMost { fields.append(("offsetsAtMost", jsonOffsets(offsets))) }
                    if let h = damage.header {
                        fields += [("claimedBaseOffset", .integer(Int(clamping: h.baseOffset))), ("claimedCount", .integer(Int(h.recordCount))),
                                   ("crcOk", .bool(false))]
                    }
                    print(JSON.object(fields).text)
                } else {
                    let claimed = damage.header.map { h in
                        [String(damage.bytes.lowerBound), "\(h.baseOffset)?", "\(h.recordCount)?", String(h.storedLength),
                         String(h.rawLength), h.isCompressed ? "yes" : "no", "BAD", formatTimestamp(h.timestampMilliseconds)]
                    } ?? [String(damage.bytes.lowerBound), "-", "-", "-", "-", "-", "-", "-"]
                    rows.append(claimed + ["damaged: \(damage.reason), bytes \(damage.bytes.lowerBound)..<\(damage.bytes.upperBound)"])
                }
            case .zeroTail(let range):
                if only != nil { return }
                if json {
                    print(JSON.object([("type", .string("zeroTail")), ("file", .string(segment.name)), ("bytes", jsonRange(range))]).text)
                } else {
                    rows.append([String(range.lowerBound), "-", "-", "-", "-", "-", "-", "-", "zero-filled tail, \(range.count) bytes"])
                }
            }
        }
        flushRows()
        return found
    }

    private func printTable(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                let isLast = i == cells.count - 1
                out += isLast ? cell : pad(cell, widths[i], right: i > 0 && i < 7) + "  "
            }
            while out.hasSuffix(" ") { out.removeLast() }
            return out
        }
        print(line(header))
        for row in rows { print(line(row)) }
    }
}
