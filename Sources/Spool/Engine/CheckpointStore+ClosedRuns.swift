#if canImport(Glibc)
import Glibc
#endif
import SpoolLog

extension CheckpointStore {
    /// Loads the closed-run table `reference` names and checks it: its size and CRC must be the
    /// ones the checkpoint recorded, and its own CRC must match.
    /// - Throws: ``SpoolError/Code/corruptRecord`` when it is missing, of another size, or damaged;
    ///   ``SpoolError/Code/io`` when it cannot be read.
    func readTable(_ reference: EngineCheckpoint.TableReference) throws(SpoolError) -> ClosedRunTable {
        let path = directory + "/" + reference.name
        let fd: Int32
        do {
            fd = try syscalls.open(path, flags: O_RDONLY | O_CLOEXEC, mode: 0)
        } catch {
            if error.errno == ENOENT { throw SpoolError(.corruptRecord, "the closed-run table \(reference.name) it names is missing") }
            throw SpoolError(.io, "cannot open the closed-run table \(path)", underlying: error)
        }
        defer { syscalls.close(fd) }
        let size: Int
        do { size = Int(try syscalls.fileSize(fd)) } catch {
            throw SpoolError(.io, "cannot read the closed-run table \(path)", underlying: error)
        }
        guard size == reference.byteCount else {
            throw SpoolError(.corruptRecord, "the closed-run table \(reference.name) is \(size) bytes, not \(reference.byteCount)")
        }
        if syscalls is SystemCalls, size > 0 {
            // Mapped, not read: a read copies every byte into fresh anonymous pages, which took
            // most of an open's time with a large table. The file is never written after its
            // rename (a merge writes a new name), and it is checked in full here before use.
            // (Test layers that model reads, such as fault injection, get the read path below.)
            let mapping: MappedFile
            do { mapping = try MappedFile(fd: fd, size: size, path: path) } catch {
                throw SpoolError(.io, "cannot map the closed-run table \(path)", underlying: error)
            }
            mapping.advise(MADV_SEQUENTIAL)
            let table = try ClosedRunTable(name: reference.name, mapping: mapping)
            mapping.advise(MADV_RANDOM)
            guard table.checksum == reference.checksum else {
                throw SpoolError(.corruptRecord, "the closed-run table \(reference.name) is not the one the checkpoint names (CRC differs)")
            }
            return table
        }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
        var done = 0
        do {
            while done < size {
                let n = try syscalls.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: storage[done...]), at: Int64(done))
                if n == 0 { break }
                done += n
            }
        } catch {
            storage.deallocate()
            throw SpoolError(.io, "cannot read the closed-run table \(path)", underlying: error)
        }
        guard done == size else {
            storage.deallocate()
            throw SpoolError(.corruptRecord, "the closed-run table \(reference.name) is shorter than \(size) bytes")
        }
        let table = try ClosedRunTable(name: reference.name, taking: storage)
        guard table.checksum == reference.checksum else {
            throw SpoolError(.corruptRecord, "the closed-run table \(reference.name) is not the one the checkpoint names (CRC differs)")
        }
        return table
    }

    /// The checkpoint with its closed-run table loaded; nil when there is none. A damaged file
    /// throws (the caller decides to ignore it).
    func readCheckpoint() throws(SpoolError) -> (checkpoint: EngineCheckpoint, table: ClosedRunTable?)? {
        guard let bytes = try read() else { return nil }
        let checkpoint = try EngineCheckpoint.decode(bytes)
        let table = try checkpoint.closedTable.map { reference throws(SpoolError) in try readTable(reference) }
        return (checkpoint, table)
    }

    /// For offline tools (recover's runs hit by lost records; compaction falls back on
    /// ``checkpointWithEveryRun(_:)`` when the skim cannot read the checkpoint): the checkpoint
    /// with every run in `runs` (the table's decoded too), or nil when there is none or it is
    /// damaged (they replay the whole log then).
    /// - Throws: ``SpoolError/Code/io`` when the checkpoint file exists but cannot be read.
    func readCheckpointWithEveryRun() throws(SpoolError) -> EngineCheckpoint? {
        guard let bytes = try read() else { return nil }
        return checkpointWithEveryRun(bytes)
    }

    /// The checkpoint `bytes` hold with every run in `runs` (the table's decoded too); nil when
    /// it or its table is damaged.
    func checkpointWithEveryRun(_ bytes: [UInt8]) -> EngineCheckpoint? {
        do throws(SpoolError) {
            var checkpoint = try EngineCheckpoint.decode(bytes)
            if let reference = checkpoint.closedTable {
                let table = try readTable(reference)
                for index in 0..<table.count { checkpoint.runs.append(try table.run(at: index)) }
                checkpoint.closedTable = nil
            }
            return checkpoint
        } catch {
            return nil
        }
    }

    /// Writes `bytes` to `name` in the data directory atomically (see `AtomicFile`: `name.tmp`,
    /// fsync, rename, directory fsync).
    /// - Throws: ``SpoolError/Code/io`` "cannot write DIR/NAME", with the system call's error.
    func writeFile(_ bytes: UnsafeRawBufferPointer, name: String) throws(SpoolError) {
        do {
            try AtomicFile.replace(name, in: directory, with: bytes, syscalls: syscalls)
        } catch {
            throw SpoolError(.io, "cannot write \(directory + "/" + name)", underlying: error.underlying)
        }
    }

    /// Removes closed-run tables (and their temporary files) other than `keeping`: superseded by
    /// a merge, or left by a merge whose checkpoint was never written. Failures are ignored (the
    /// next checkpoint tries again).
    func removeClosedRunTables(keeping: String?) {
        guard let names = try? syscalls.listDirectory(directory) else { return }
        for name in names where name.hasPrefix(ClosedRunTable.filePrefix) && name != keeping {
            try? syscalls.unlink(directory + "/" + name)
        }
    }

    /// Writes the closed-run table of the runs `order` names (see ``ClosedRunTable/merge(_:old:fresh:)``)
    /// atomically, as `closed-runs-<replayFrom>-<crc>`, and returns its reference for the
    /// checkpoint that will name it (written after it).
    /// `withVisibility: false` writes it without its visibility section, as builds before the
    /// section did (for tests).
    func writeTable(_ order: [ClosedRunTable.Source], old: ClosedRunTable?, fresh: [ClosedRunTable.Entry],
                    replayFrom: UInt64, withVisibility: Bool = true) throws(SpoolError) -> EngineCheckpoint.TableReference {
        let buffer = try ClosedRunTable.merge(order, old: old, fresh: fresh, withVisibility: withVisibility)
        defer { buffer.deallocate() }
        let checksum = buffer.loadUnaligned(fromByteOffset: buffer.count - 4, as: UInt32.self).littleEndian
        let digits = String(replayFrom)
        let name = ClosedRunTable.filePrefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + "-" + String(checksum, radix: 16)
        try writeFile(UnsafeRawBufferPointer(buffer), name: name)
        return EngineCheckpoint.TableReference(name: name, byteCount: buffer.count, checksum: checksum)
    }

    /// Writes a checkpoint of `open` and `closed` runs. Closed runs go into the checkpoint file
    /// while there are fewer than `mergeThreshold` of them; from then on they are merged with
    /// `table`'s runs (those within `retention` at `now`, and not superseded by one of `closed`)
    /// into a new closed-run table, written before the checkpoint that names it. Returns the new
    /// table when it wrote one. Superseded tables are removed once the checkpoint is durable.
    func writeCheckpoint(replayFrom: UInt64, open: [EngineCheckpoint.Run], closed: [EngineCheckpoint.Run], table: ClosedRunTable?,
                         mergeThreshold: Int, retention: Duration?, now: Timestamp) throws(SpoolError) -> ClosedRunTable? {
        var merged: ClosedRunTable?
        var checkpoint = EngineCheckpoint(replayFrom: replayFrom, runs: open + closed,
                                          closedTable: table.map { .init(name: $0.name, byteCount: $0.byteCount, checksum: $0.checksum) })
        if !closed.isEmpty && closed.count >= mergeThreshold {
            var fresh = closed.map(ClosedRunTable.entry)
            let superseded = Set(fresh.map(\.firstRecordOffset))
            let kept = (0..<(table?.count ?? 0)).lazy.filter { index in
                guard let table, !superseded.contains(table.firstRecordOffset(at: index)) else { return false }
                guard let retention else { return true }
                return now < table.closeTime(at: index).advanced(by: retention)
            }
            // A merge copies kept runs byte for byte: from a table of an older layout they are
            // decoded and encoded anew instead, so the new table holds one layout.
            var copyFrom = table
            if let table, table.layout != .current {
                for index in kept { fresh.append(ClosedRunTable.entry(try table.run(at: index))) }
                copyFrom = nil
            }
            fresh.sort { ($0.workflowHash, $0.firstRecordOffset) < ($1.workflowHash, $1.firstRecordOffset) }
            let order = copyFrom == nil
                ? ClosedRunTable.mergeOrder(kept: [], of: nil, fresh: fresh)
                : ClosedRunTable.mergeOrder(kept: kept, of: copyFrom, fresh: fresh)
            let reference = try writeTable(order, old: copyFrom, fresh: fresh, replayFrom: replayFrom)
            // Loaded back from the file as an open loads it (mapped, checked in full): what the
            // engine looks runs up in is what is on disk, and the buffer's memory goes.
            merged = try readTable(reference)
            checkpoint.runs = open
            checkpoint.closedTable = reference
        }
        try write(checkpoint.encoded())
        removeClosedRunTables(keeping: checkpoint.closedTable?.name)
        return merged
    }
}
