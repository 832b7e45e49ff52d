#if canImport(Glibc)
import Glibc
#endif

/// The segments a verification walks: the directory as the next open will see it.
extension OfflineLog {
    /// The segments, in offset order, as the next ``Log/open(directory:configuration:)`` will see them:
    /// when a compaction swap is pending (the process stopped after its commit point), the swap is
    /// modelled as finished — replaced segments left out, compacted ones read from their
    /// `.log.cleaned` files where not yet renamed. Readers of a stopped directory (the engine's
    /// history check) walk these rather than ``listing()``'s raw segments, which would count
    /// records of both generations. Nothing is written.
    /// - Throws: ``LogError/Code/io`` when the directory cannot be listed or a file read.
    public func segmentsAsTheNextOpenSeesThem() throws(LogError) -> [SegmentFileInfo] {
        let segments = try listing().segments
        guard let bytes = try CheckpointFile.readFile(directory + "/" + SegmentSwap.manifestName, syscalls: syscalls),
              let file = CheckpointFile.decode(bytes, magic: SegmentSwap.magic, fieldCount: max(0, (bytes.count - 12) / 8)),
              let swap = SegmentSwap(fields: file.fields) else { return segments }
        var scratch = LogVerification(directory: directory)
        return try segmentsAfterSwap(swap, segments, &scratch)
    }

    /// The segments the next open will see once it has rolled `swap` forward; reports a missing replacement.
    func segmentsAfterSwap(_ swap: SegmentSwap, _ listed: [SegmentFileInfo],
                                   _ result: inout LogVerification) throws(LogError) -> [SegmentFileInfo] {
        let replaced = Set(swap.old).subtracting(swap.new)
        var byBase: [UInt64: SegmentFileInfo] = [:]
        for segment in listed where !replaced.contains(segment.baseOffset) { byBase[segment.baseOffset] = segment }
        for base in swap.new {
            let cleaned = directory + "/" + CleanedSegmentWriter.cleanedName(base, ".log")
            guard let size = Self.size(of: cleaned) else {
                if byBase[base] == nil {
                    result.problems.append(LogProblem(kind: "swapSegmentMissing", severity: .damage, file: directory + "/" + SegmentSwap.manifestName,
                                                      message: "names the compacted segment \(Segment.fileName(base, ".log")), which is missing; "
                                                          + "open refuses the directory"))
                }
                continue
            }
            let cleanedIndex = directory + "/" + CleanedSegmentWriter.cleanedName(base, ".index")
            let indexPath = Self.size(of: cleanedIndex) != nil ? cleanedIndex : directory + "/" + Segment.fileName(base, ".index")
            byBase[base] = SegmentFileInfo(baseOffset: base, path: cleaned, size: size, indexPath: indexPath, indexSize: Self.size(of: indexPath))
        }
        return byBase.values.sorted { $0.baseOffset < $1.baseOffset }
    }
}
