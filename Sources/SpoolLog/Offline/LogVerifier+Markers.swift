#if canImport(Glibc)
import Glibc
#endif

/// The verification of the clean-shutdown marker and the recovery point.
extension OfflineLog {
    struct CleanShutdown { var nextOffset: UInt64; var activeBase: UInt64; var activeSize: UInt64 }

    /// The clean-shutdown marker when it is valid and matches the last segment; reports one that is not.
    func readCleanShutdown(lastBase: UInt64?, manifestLength: UInt64?, manifestCleanClose: Bool,
                                   _ result: inout LogVerification) -> CleanShutdown? {
        let path = directory + "/" + CheckpointFile.cleanShutdownName
        let read: [UInt8]?
        do {
            read = try CheckpointFile.readFile(path, syscalls: syscalls)
        } catch {
            result.problems.append(LogProblem(kind: "cleanShutdownUnreadable", severity: .damage, file: path,
                                              message: "the clean-shutdown marker cannot be read (\(error.underlying.map { "\($0)" } ?? error.message)); "
                                                  + "open refuses the directory. Remove it if it is not a file (the next open then scans)"))
            return nil
        }
        guard let bytes = read else { return nil }
        guard let file = CheckpointFile.decode(bytes, magic: CheckpointFile.cleanShutdownMagic, fieldCount: 3) else {
            result.problems.append(LogProblem(kind: "cleanShutdownDamaged", severity: .inconsistency, file: path,
                                              message: "the clean-shutdown marker is damaged (the next open ignores it and scans)"))
            return nil
        }
        let marker = CleanShutdown(nextOffset: file.fields[0], activeBase: file.fields[1], activeSize: file.fields[2])
        let lastSize = lastBase.flatMap { Self.size(of: directory + "/" + Segment.fileName($0, ".log")) } ?? 0
        // As open: a marker whose length disagrees with the one the manifest recorded at the same clean
        // close (while the file still holds that length) is not this close's, and open ignores it.
        if marker.activeBase == lastBase, manifestCleanClose, let recorded = manifestLength, recorded != marker.activeSize,
           UInt64(lastSize) >= recorded {
            result.problems.append(LogProblem(kind: "cleanShutdownMismatch", severity: .inconsistency, file: path,
                                              message: "the clean-shutdown marker says the last segment holds \(marker.activeSize) bytes, "
                                                  + "but the log manifest written by the same clean close records \(recorded); the marker is "
                                                  + "not this log's (another store's?): the next open ignores it and scans"))
            return nil
        }
        // As open: bytes after the length the close recorded (where that close cut the file) are data the
        // marker does not know; open ignores it and scans, which finds them.
        if marker.activeBase == lastBase, let base = lastBase,
           Segment.holdsBytes(directory + "/" + Segment.fileName(base, ".log"), after: marker.activeSize, size: lastSize, syscalls: syscalls) {
            result.problems.append(LogProblem(kind: "cleanShutdownMismatch", severity: .inconsistency, file: path,
                                              message: "the clean-shutdown marker says the last segment holds \(marker.activeSize) bytes, "
                                                  + "but it holds data after them (a newer copy of the segment under an older marker?): "
                                                  + "the next open ignores the marker and scans"))
            return nil
        }
        // Also remembered when it claims more than the file holds: a shortened last segment's lost offsets end at its next offset.
        if marker.activeBase == lastBase { result.markerNextOffset = marker.nextOffset }
        if marker.activeBase == lastBase, marker.nextOffset >= marker.activeBase, UInt64(lastSize) < marker.activeSize,
           manifestLength.map({ UInt64(lastSize) < $0 }) ?? true {
            // The log was closed cleanly and its last segment lost bytes since: reported as the segment's
            // damage (`segmentShortened`, below), not as a marker that does not match.
            result.markerRecordedLastLength = marker.activeSize
            return nil
        }
        guard marker.activeBase == lastBase, marker.nextOffset >= marker.activeBase, UInt64(lastSize) >= marker.activeSize else {
            result.problems.append(LogProblem(kind: "cleanShutdownMismatch", severity: .inconsistency, file: path,
                                              message: "the clean-shutdown marker (segment \(marker.activeBase), \(marker.activeSize) bytes, "
                                                  + "next offset \(marker.nextOffset)) does not match the last segment; the next open ignores it"))
            return nil
        }
        return marker
    }

    func checkRecoveryPoint(_ segments: [SegmentFileInfo], _ result: inout LogVerification) throws(LogError) {
        let path = directory + "/" + CheckpointFile.recoveryPointName
        guard let bytes = try CheckpointFile.readFile(path, syscalls: syscalls) else {
            result.problems.append(LogProblem(kind: "recoveryPointMissing", severity: .inconsistency, file: path,
                                              message: "missing; an unclean open scans every segment"))
            return
        }
        guard let point = CheckpointFile.decode(bytes, magic: CheckpointFile.recoveryPointMagic, fieldCount: 1)?.fields[0] else {
            result.problems.append(LogProblem(kind: "recoveryPointDamaged", severity: .inconsistency, file: path,
                                              message: "damaged; an unclean open scans every segment"))
            return
        }
        if !segments.contains(where: { $0.baseOffset == point }) {
            result.problems.append(LogProblem(kind: "recoveryPointStale", severity: .inconsistency, file: path,
                                              message: "names segment \(point), which does not exist"))
        }
    }
}
