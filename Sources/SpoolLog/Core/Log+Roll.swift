#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives

// Sealing the active segment and starting the next one (called by whichever thread writes,
// under `writeLock`, when `needsRoll` says so; or at open).

extension Log {
    /// Seals the active segment (trim, fdatasync, index trimmed) and starts a new one at `baseOffset`.
    /// Called by the writer thread, or at open before it starts (``LogConfiguration/sealsActiveSegmentAtOpen``).
    func roll(to baseOffset: UInt64) throws(LogError) -> Segment {
        rollRequested.store(false, ordering: .relaxed)
        let old = currentSegment
        // The durable extent around the cut, under `manifestLock` so that no syncer raises it
        // meanwhile: lowered to the data before the `ftruncate` (a crash after it must not find the
        // file shorter than recorded), then, once the cut is durable, raised to the data's end if it
        // was below, so that the syncers can acknowledge the segment's last groups before this
        // roll's final rewrite records its length. Each rewrite happens only when needed.
        try manifestLock.withLock { () throws(LogError) in
            try lowerExtentBeforeCut(of: old, to: old.writePosition)
            do throws(SystemError) {
                try syscalls.ftruncate(old.fd, to: Int64(old.writePosition))
                try syscalls.fdatasync(old.fd)
            } catch {
                throw .io(error, "cannot seal the segment", path: old.logPath)
            }
            if old.recordedExtent.load(ordering: .relaxed) < old.writePosition {
                try writeExtentLocked(old.writePosition, of: old)
            }
        }
        try old.index.persist(trim: true)
        let new = try Segment(directory: directory, baseOffset: baseOffset, size: 0, indexEntries: 0,
                              indexCapacity: indexCapacity, syscalls: syscalls, create: true)
        try new.openSyncDescriptors(syncDescriptorCount)
        do { try syscalls.fsyncDirectory(directory) } catch { throw .io(error, "cannot sync the directory", path: directory) }
        let recoveryPoint = CheckpointFile(magic: CheckpointFile.recoveryPointMagic, fields: [baseOffset])
        try CheckpointFile.writeAtomically(recoveryPoint.encoded, directory: directory, name: CheckpointFile.recoveryPointName,
                                           syscalls: syscalls)
        let mapping = try old.map(size: old.writePosition)
        // Readers may now see the whole sealed segment, groups not yet acknowledged included: they are
        // synced (above), and within the extent recorded above, so a cut could not hide them either.
        segmentLock.withLock {
            old.mapping = mapping
            old.readableSize.store(old.writePosition, ordering: .releasing)
            segments.append(new)
        }
        pipelineLock.withLock { currentSegment = new }
        counters.rolls.add(1, ordering: .relaxed)
        // After the new segment exists: a crash before this leaves a segment the manifest does not
        // list yet, which open accepts (never a listed segment that is missing).
        try writeManifest()
        return new
    }
}
