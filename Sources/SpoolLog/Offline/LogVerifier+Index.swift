#if canImport(Glibc)
import Glibc
#endif

/// The verification of a segment's offset index against its batches.
extension OfflineLog {
    /// Checks an index against the intact batches of its segment; returns its entry count.
    func checkIndex(_ segment: SegmentFileInfo, positions: [Int: UInt64], dataEnd: Int, preallocated: Bool,
                            segmentDamaged: Bool, _ result: inout LogVerification) -> Int? {
        func problem(_ kind: String, _ message: String, position: Int? = nil) {
            result.problems.append(LogProblem(kind: kind, severity: .inconsistency, file: segment.indexPath, position: position,
                                              message: message))
        }
        guard let size = segment.indexSize, let mapping = try? mapFile(segment.indexPath) else {
            // Present (its name is there) but not statable, say a symbolic link in a loop: open cannot
            // open it either, so it is not "missing" (which open rebuilds) but unreadable.
            var info = stat()
            guard segment.indexSize != nil || lstat(segment.indexPath, &info) == 0 else {
                if segment.size > 0 { problem("indexMissing", "missing (rebuilt by the next open)") }
                return nil
            }
            // Open cannot use it either (it opens the index read-write), so it refuses the directory.
            result.problems.append(LogProblem(kind: "indexUnreadable", severity: .damage, file: segment.indexPath,
                                              message: "cannot be read; open refuses the directory. Remove it if it is not a "
                                                  + "file or fix its permissions (the next open rebuilds a missing index)"))
            return nil
        }
        guard size % OffsetIndex.entrySize == 0 else {
            problem("indexDamaged", "size \(size) is not a multiple of \(OffsetIndex.entrySize)")
            return nil
        }
        var entries = size / OffsetIndex.entrySize
        func entry(_ i: Int) -> (UInt32, UInt32) {
            (mapping.bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt32.self).littleEndian,
             mapping.bytes.loadUnaligned(fromByteOffset: i * 8 + 4, as: UInt32.self).littleEndian)
        }
        if preallocated {
            // The active index of a log that was not closed is preallocated with zeros and is rebuilt at
            // the next open; only its non-zero prefix means anything.
            while entries > 1 && entry(entries - 1) == (0, 0) { entries -= 1 }
            if entries == 1 && dataEnd == 0 && entry(0) == (0, 0) { entries = 0 }
        }
        // The index of a damaged segment is rewritten by any repair; its entries are not worth reporting.
        if segmentDamaged { return entries }
        if dataEnd > 0 && entries == 0 {
            problem("indexEmpty", "empty for a segment of \(dataEnd) bytes")
            return 0
        }
        var previous: (UInt32, UInt32)?
        for i in 0..<entries {
            let (relative, position) = entry(i)
            if let (p, q) = previous, relative <= p || position <= q {
                problem("indexDamaged", "entry \(i) (\(relative), \(position)) does not follow entry \(i - 1)", position: i * 8)
                return entries
            }
            previous = (relative, position)
            guard let base = positions[Int(position)], base == segment.baseOffset + UInt64(relative) else {
                if preallocated { continue }  // rebuilt from the scan anyway
                problem("indexStale", "entry \(i) says offset \(segment.baseOffset + UInt64(relative)) is at byte \(position), "
                        + "where no intact batch of that offset starts", position: i * 8)
                return entries
            }
        }
        if let first = positions[0], entries > 0, entry(0) != (UInt32(truncatingIfNeeded: first - segment.baseOffset), 0) {
            problem("indexStale", "the first entry does not point at the first batch", position: 0)
        }
        return entries
    }
}
