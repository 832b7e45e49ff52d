#if canImport(Glibc)
import Glibc
#endif

extension Log {
    /// Deletes whole sealed segments all of whose records are below `offset`; returns how many.
    ///
    /// This is how acknowledged data is reclaimed: by dropping segments, never by rewriting
    /// records. The active segment is never deleted. Readers already inside a deleted segment
    /// finish their read (the mapping outlives the file). The `log-manifest` is rewritten first,
    /// without the doomed segments and with their offsets recorded as a retention gap (a crash
    /// before the deletions leaves unlisted segments, which open accepts); then the files go and
    /// the directory is fsynced.
    /// - Throws: ``LogError/Code/io``; ``LogError/Code/poisoned`` or ``LogError/Code/closed``.
    @discardableResult
    public func deleteSegments(below offset: UInt64) throws(LogError) -> Int {
        if let error = pipelineLock.withLock({ refusal() }) { throw error }
        maintenanceLock.lock()
        defer { maintenanceLock.unlock() }
        let doomed: [Segment] = segmentLock.withLock {
            var count = 0
            while count + 1 < segments.count && segments[count + 1].baseOffset <= offset { count += 1 }
            let removed = Array(segments[0..<count])
            segments.removeFirst(count)
            return removed
        }
        guard !doomed.isEmpty, let newStart = segmentLock.withLock({ segments.first?.baseOffset }) else { return 0 }
        do {
            try writeManifest(adding: LogManifest.Gap(offsets: doomed[0].baseOffset..<newStart, reason: .retention))
        } catch {
            poison(error)
            throw error
        }
        do {
            for segment in doomed {
                try syscalls.unlink(segment.logPath)
                try? syscalls.unlink(segment.indexPath)
            }
            try syscalls.fsyncDirectory(directory)
        } catch {
            let failure = LogError.io(error, "cannot delete old segments")
            poison(failure)
            throw failure
        }
        return doomed.count
    }
}
