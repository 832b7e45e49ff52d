#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives

// The active segment's zero fill ahead of its data, and (in `sync` mode) the writer thread that
// keeps it and the durable extent ahead. Why the zero fill: Docs/durability.md, "Why the active
// segment is zero-filled ahead".

extension Log {
    /// Called by the thread that writes a batch ending at `end`, under `writeLock`, before the write.
    ///
    /// - In `sync` mode (``keepsExtentAhead``) the writer thread keeps one to two steps of synced
    ///   zeros ahead of the data, asked once less than a step is left (short of the segment's
    ///   end); if the data outran them, this fills inline.
    /// - In the other modes this fills inline half a step early: the sync that covers a step's
    ///   zeros lets a syncer record the new durable extent after its acknowledgements, before the
    ///   data reaches the old one.
    func keepZerosAhead(of segment: Segment, writingUpTo end: Int, zeros: UnsafeRawBufferPointer) throws(LogError) {
        let step = configuration.preallocationBytes
        guard step > 0 else { return }
        if keepsExtentAhead {
            if end > segment.zeroedUpTo { try preallocate(segment, through: end, zeros: zeros) }
            if end + step > segment.zeroedUpTo && segment.zeroedUpTo < configuration.segmentBytes
                && !extentRequested.exchange(true, ordering: .acquiringAndReleasing) {
                intake.wake()
            }
        } else if end + step / 2 > segment.zeroedUpTo {
            try preallocate(segment, through: end, zeros: zeros)
        }
    }

    /// Zero-fills the active segment ahead of the write position. Overwriting allocated blocks
    /// lets `fdatasync` skip the journal commit a growing file needs (measured here: 79 µs
    /// against 136 µs per write + fdatasync).
    ///
    /// Fills to one and a half steps beyond `end`: steps of about `preallocationBytes`, and the
    /// zeros stay at least half a step ahead of the data.
    private func preallocate(_ segment: Segment, through end: Int, zeros: UnsafeRawBufferPointer) throws(LogError) {
        let limit = max(configuration.segmentBytes, end)
        try fillZeros(segment, to: min(limit, end + configuration.preallocationBytes + configuration.preallocationBytes / 2), zeros: zeros)
    }

    /// Writes zeros from the end of `segment`'s zeros (or data, if beyond) up to `target`, and
    /// records `target` as `zeroedUpTo`. Call with `writeLock` held.
    private func fillZeros(_ segment: Segment, to target: Int, zeros: UnsafeRawBufferPointer) throws(LogError) {
        var position = max(segment.zeroedUpTo, segment.writePosition)
        do {
            while position < target {
                let n = min(zeros.count, target - position)
                try syscalls.pwriteAll(segment.fd, UnsafeRawBufferPointer(rebasing: zeros[0..<n]), at: Int64(position))
                position += n
            }
        } catch {
            throw .io(error, "cannot preallocate the segment at byte \(position)", path: segment.logPath)
        }
        segment.zeroedUpTo = max(segment.zeroedUpTo, target)
    }

    /// The writer thread's work in `sync` mode (``keepsExtentAhead``): zero-fills the active segment
    /// to two steps of ``LogConfiguration/preallocationBytes`` beyond the data, syncs the zeros
    /// through a descriptor of its own, and records the new durable extent in `log-manifest`. That
    /// is the work a syncer did between two group commits before; done here, beside them, no
    /// append waits for it unless the data outruns the zeros (then the write fills inline).
    ///
    /// The zeros go in chunks of ``zeroFillChunkBytes``, each written under `writeLock` (a syncer
    /// waits at most one chunk to write) and synced before the next, so a group commit's
    /// `fdatasync` queues behind at most one chunk's flush on a device that serves them one at a
    /// time. Stops at a roll, a close or a failure; a failed write or sync poisons the log, as a
    /// failed append does.
    func keepExtentAhead() {
        let step = configuration.preallocationBytes
        var segment: Segment?
        var filledTo = 0
        while true {
            writeLock.lock()
            let current = currentSegment
            if segment == nil { segment = current }
            let stopped = pipelineLock.withLock { closing || failure != nil }
            guard current === segment, !stopped else {
                writeLock.unlock()
                return
            }
            let position = max(current.zeroedUpTo, current.writePosition)
            let target = min(max(configuration.segmentBytes, current.writePosition), current.writePosition + 2 * step)
            // Nothing to do while a step is still ahead (a request that a fill just answered).
            if position >= target || (filledTo == 0 && position >= current.writePosition + step) {
                writeLock.unlock()
                break
            }
            let chunkEnd = min(position + Self.zeroFillChunkBytes, target)
            do {
                try fillZeros(current, to: chunkEnd, zeros: writerScratch.zeros)
            } catch {
                writeLock.unlock()
                poison(error)
                return
            }
            filledTo = chunkEnd
            writeLock.unlock()
            do {
                try syscalls.fdatasync(current.syncDescriptor(syncerCount))
            } catch {
                poison(.io(error, "fdatasync of the zero fill failed; the log is poisoned (no retry: the kernel may have dropped the pages)",
                           path: current.logPath))
                return
            }
        }
        guard let segment, filledTo > 0 else { return }
        do { try raiseExtentAhead(of: segment, to: filledTo) } catch { poison(error) }
    }

    /// The zero fill of ``keepExtentAhead()`` is written and synced this much at a time.
    static let zeroFillChunkBytes = 256 << 10

    /// Whether the writer thread keeps the zero fill and the durable extent ahead of the data
    /// (``keepExtentAhead()``): in `sync` mode, where the syncers write, with a zero fill.
    var keepsExtentAhead: Bool { syncersWrite && configuration.preallocationBytes > 0 }

    /// Descriptors each segment opens for syncing: one per syncer, and one for the writer thread's
    /// syncs of the zero fill (``keepExtentAhead()``).
    var syncDescriptorCount: Int { syncerCount + (keepsExtentAhead ? 1 : 0) }
}
