#if canImport(Glibc)
import Glibc
#endif

extension LogError.Code {
    /// A segment that the log's manifest (`log-manifest`) lists is not in the directory, and nothing
    /// (compaction, retention, a repair) removed it on purpose. The message names the file and the
    /// offsets lost; `spool recover --mode salvage` can accept the loss.
    public static let missingSegment = LogError.Code("missingSegment")
    /// A segment is shorter than the length the log recorded for it (in `log-manifest` when it was
    /// sealed or at a clean close, or in the `clean-shutdown` marker), or the active segment of a log
    /// that was not closed cleanly is shorter than the durable extent `log-manifest` records for it:
    /// bytes that were on stable storage are gone. Not a torn tail; the message names the file, the
    /// bytes and the offsets lost.
    public static let segmentShortened = LogError.Code("segmentShortened")
    /// A segment is not the one the log recorded: its first batch's checksum differs from the one
    /// `log-manifest` recorded when the segment's length became final (another store's file, or
    /// another log's, was put in its place). Its records are not this log's; the message names the
    /// file. Restore the right file from a backup, or move this one away (a repair then accepts the
    /// missing segment and reports its offsets).
    public static let segmentReplaced = LogError.Code("segmentReplaced")
    /// The log was opened with ``LogAccess/readOnly`` and the call would write, or the directory
    /// needs a write (an interrupted compaction swap) before it can be read.
    public static let readOnly = LogError.Code("readOnly")
}

/// The log's record of its own shape: which segments exist, how long the sealed ones are (and, at a
/// clean close, the active one), and which offset ranges were dropped on purpose. Stored in
/// `log-manifest` beside the segments with the checkpoint layout (`Docs/file-format.md`), replaced
/// through ``AtomicFile``.
///
/// It is rewritten when the set of segments changes — a roll, a compaction swap, retention, a
/// repair — at a clean close, and when the active segment's durable extent grows (about once per
/// `preallocationBytes` of appended data, normally after the acknowledgements of the sync that made a
/// zero-fill step durable, else before the acknowledgement that needs it; see
/// ``Log/recordExtent(of:covering:extent:)``), never per append. Opening compares the directory with
/// it: a listed segment that is missing, or shorter than its recorded length or extent, is damage
/// (``LogError/Code/missingSegment``, ``LogError/Code/segmentShortened``). A segment that exists but
/// is not listed is accepted (a roll or a deletion interrupted between its file operation and the
/// manifest's rewrite leaves one; it holds data, it loses none).
struct LogManifest: Equatable {
    static let fileName = "log-manifest"
    static let magic: UInt32 = 0x4D4C_5053  // "SPLM"
    /// The length field of a segment whose length is not recorded (the active segment of an open log).
    static let unknownLength = UInt64.max

    /// Why a range of offsets is absent on purpose.
    enum GapReason: UInt64, Equatable {
        case compaction = 1
        case retention = 2
        case repair = 3

        var description: String {
            switch self {
            case .compaction: "compaction"
            case .retention: "retention (deleted segments)"
            case .repair: "a repair (`spool recover`)"
            }
        }
    }

    struct Entry: Equatable {
        var base: UInt64
        /// Bytes of the segment; `nil` when not recorded.
        var length: UInt64?
        /// The CRC32C field of the segment's first batch, recorded with its length: what tells this
        /// log's segment from another store's file of the same name and length. Filled in by
        /// ``LogManifest/write(directory:syscalls:)`` from the file for every entry with a length.
        var fingerprint: UInt32? = nil
        /// The active segment's **durable extent**: a length its file is known to have reached on
        /// stable storage (data, then the zero fill ahead of it, covered by a completed `fdatasync`).
        /// The log acknowledges no record that ends beyond it, so a file shorter than this was cut
        /// after the fact, not torn by a crash. `nil` when not recorded (a sealed segment, whose
        /// `length` says more; an active one before its first acknowledged sync; an old manifest).
        var extent: UInt64? = nil
    }

    /// Offsets in `offsets` may be absent from the log: `reason` removed them.
    struct Gap: Equatable {
        var offsets: Range<UInt64>
        var reason: GapReason
    }

    /// Written by a clean ``Log/close()`` (the last segment's length is then recorded too).
    var cleanClose = false
    /// The segments, by base offset.
    var segments: [Entry] = []
    /// Ranges dropped on purpose, oldest first.
    var gaps: [Gap] = []

    /// Fields: flags (bit 0: clean close; bit 1: segments carry fingerprints; bit 2: segments carry
    /// extents; bits 1 and 2 always written), n, n × (base, length or `UInt64.max`, fingerprint or
    /// `UInt64.max`, extent or `UInt64.max`), g, g × (first offset, end offset, reason). A manifest
    /// without bit 2 (written before extents) has triples, one without bit 1 either has pairs.
    var encoded: [UInt8] {
        var fields: [UInt64] = [(cleanClose ? 1 : 0) | Self.fingerprintsFlag | Self.extentsFlag, UInt64(segments.count)]
        for entry in segments {
            fields += [entry.base, entry.length ?? Self.unknownLength, entry.fingerprint.map { UInt64($0) } ?? Self.unknownLength,
                       entry.extent ?? Self.unknownLength]
        }
        fields.append(UInt64(gaps.count))
        for gap in gaps { fields += [gap.offsets.lowerBound, gap.offsets.upperBound, gap.reason.rawValue] }
        return CheckpointFile(magic: Self.magic, fields: fields).encoded
    }

    /// Parses the file's bytes; `nil` when they are not a valid manifest.
    static func decode(_ bytes: [UInt8]) -> LogManifest? {
        guard bytes.count >= 12, (bytes.count - 12) % 8 == 0,
              let file = CheckpointFile.decode(bytes, magic: magic, fieldCount: (bytes.count - 12) / 8) else { return nil }
        let fields = file.fields
        // Counts come from disk: compare them with what is there before using them.
        guard fields.count >= 3, fields[0] <= 1 | fingerprintsFlag | extentsFlag, fields[1] <= UInt64(fields.count) else { return nil }
        // Each flag adds a field per segment, in the order they were introduced: extents come after fingerprints.
        guard fields[0] & extentsFlag == 0 || fields[0] & fingerprintsFlag != 0 else { return nil }
        let n = Int(fields[1])
        let per = fields[0] & extentsFlag != 0 ? 4 : fields[0] & fingerprintsFlag != 0 ? 3 : 2
        guard fields.count >= 3 + per * n, fields[2 + per * n] <= UInt64(fields.count) else { return nil }
        let g = Int(fields[2 + per * n])
        guard fields.count == 3 + per * n + 3 * g else { return nil }
        var manifest = LogManifest(cleanClose: fields[0] & 1 == 1)
        for i in 0..<n {
            let length = fields[3 + per * i]
            var entry = Entry(base: fields[2 + per * i], length: length == unknownLength ? nil : length)
            if per >= 3 {
                let fingerprint = fields[4 + per * i]
                guard fingerprint == unknownLength || fingerprint <= UInt64(UInt32.max) else { return nil }
                entry.fingerprint = fingerprint == unknownLength ? nil : UInt32(fingerprint)
            }
            if per == 4 {
                let extent = fields[5 + per * i]
                entry.extent = extent == unknownLength ? nil : extent
            }
            manifest.segments.append(entry)
        }
        for i in 0..<g {
            let at = 3 + per * n + 3 * i
            guard fields[at] <= fields[at + 1], let reason = GapReason(rawValue: fields[at + 2]) else { return nil }
            manifest.gaps.append(Gap(offsets: fields[at]..<fields[at + 1], reason: reason))
        }
        guard zip(manifest.segments, manifest.segments.dropFirst()).allSatisfy({ $0.base < $1.base }) else { return nil }
        return manifest
    }

    /// The manifest in `directory`; `nil` when there is none (a log made before manifests existed).
    /// - Throws: ``LogError/Code/corruptCheckpoint`` when it is damaged; ``LogError/Code/io``.
    static func read(directory: String, syscalls: any Syscalls) throws(LogError) -> LogManifest? {
        let path = directory + "/" + fileName
        guard let bytes = try CheckpointFile.readFile(path, syscalls: syscalls) else { return nil }
        guard let manifest = decode(bytes) else {
            throw LogError(.corruptCheckpoint, "the log manifest is damaged, so the log cannot tell a lost segment from one "
                           + "removed on purpose; run `spool recover` (a repair rewrites it from the segments present)", path: path)
        }
        return manifest
    }

    /// Replaces the manifest in `directory` (``AtomicFile``: `.tmp`, fsync, rename, directory fsync).
    /// Every segment with a recorded length gets the fingerprint of its file as it is now (those
    /// lengths are final and on stable storage: sealed, compacted, repaired, or closed cleanly).
    func write(directory: String, syscalls: any Syscalls) throws(LogError) {
        var manifest = self
        for i in manifest.segments.indices where manifest.segments[i].length != nil && manifest.segments[i].fingerprint == nil {
            manifest.segments[i].fingerprint = Self.fingerprint(ofSegment: directory + "/" + Segment.fileName(manifest.segments[i].base, ".log"),
                                                                syscalls: syscalls)
        }
        try CheckpointFile.writeAtomically(manifest.encoded, directory: directory, name: Self.fileName, syscalls: syscalls)
    }

    /// Bit 1 of the flags field: segment entries carry a fingerprint.
    static let fingerprintsFlag: UInt64 = 2
    /// Bit 2 of the flags field: segment entries carry a durable extent (after the fingerprint).
    static let extentsFlag: UInt64 = 4

    /// The CRC32C of the first batch of the segment file at `path`, when that batch is whole and its
    /// checksum matches; nil otherwise (no file, an empty, cut or damaged first batch). Only a valid
    /// batch counts: a damaged first batch is damaged bytes (which salvage can cut), not another
    /// store's segment (which a repair refuses to adopt).
    static func fingerprint(ofSegment path: String, syscalls: any Syscalls) -> UInt32? {
        guard let fd = try? syscalls.open(path, flags: O_RDONLY, mode: 0) else { return nil }
        defer { syscalls.close(fd) }
        var bytes = [UInt8](repeating: 0, count: RecordBatchHeader.size)
        guard (try? syscalls.preadFully(fd, into: &bytes, count: bytes.count, at: 0)) == bytes.count,
              let header = bytes.withUnsafeBytes({ RecordBatchHeader($0) }) else { return nil }
        bytes = [UInt8](repeating: 0, count: header.totalLength)
        guard (try? syscalls.preadFully(fd, into: &bytes, count: bytes.count, at: 0)) == bytes.count,
              bytes.withUnsafeBytes({ header.checksumMatches($0) }) else { return nil }
        return header.crc
    }

    /// Adds a gap, merging it with an overlapping or adjacent one of the same reason.
    mutating func record(_ offsets: Range<UInt64>, _ reason: GapReason) {
        guard !offsets.isEmpty else { return }
        if let i = gaps.firstIndex(where: { $0.reason == reason && ($0.offsets.overlaps(offsets)
                || $0.offsets.upperBound == offsets.lowerBound || offsets.upperBound == $0.offsets.lowerBound) }) {
            gaps[i].offsets = min(gaps[i].offsets.lowerBound, offsets.lowerBound)..<max(gaps[i].offsets.upperBound, offsets.upperBound)
        } else {
            gaps.append(Gap(offsets: offsets, reason: reason))
            gaps.sort { $0.offsets.lowerBound < $1.offsets.lowerBound }
        }
    }

    /// The gap recorded over `offsets`, if one covers them all.
    func gap(covering offsets: Range<UInt64>) -> Gap? {
        gaps.first { $0.offsets.lowerBound <= offsets.lowerBound && offsets.upperBound <= $0.offsets.upperBound }
    }

    /// What the manifest says about a directory holding `bases` (sorted) with file sizes `size(base)`.
    enum Finding: Equatable {
        /// A listed segment is not there; the offsets from its base up to the next segment's are lost
        /// (`nil` upper bound: it was the last one listed).
        case missing(base: UInt64, lostFrom: UInt64, lostUpTo: UInt64?)
        /// A listed segment is shorter than recorded (its length, or the active segment's durable extent).
        case shortened(base: UInt64, recorded: UInt64, actual: UInt64)
        /// A listed segment's first batch is not the one recorded (`actual` nil: it has none).
        case replaced(base: UInt64, recorded: UInt32, actual: UInt32?)
    }

    /// Compares the directory with the manifest. `fingerprint(base)` reads a segment's first batch
    /// checksum (``fingerprint(ofSegment:syscalls:)``); it is asked only for segments that have one recorded.
    func check(bases: [UInt64], size: (UInt64) -> Int?, fingerprint: (UInt64) -> UInt32? = { _ in nil }) -> [Finding] {
        let present = Set(bases)
        var findings: [Finding] = []
        for (i, entry) in segments.enumerated() {
            if !present.contains(entry.base) {
                let nextListed = segments[(i + 1)...].first { present.contains($0.base) }?.base
                let nextPresent = bases.first { $0 > entry.base }
                let upTo = [nextListed, nextPresent].compactMap { $0 }.min()
                findings.append(.missing(base: entry.base, lostFrom: entry.base, lostUpTo: upTo))
            } else if let recorded = entry.fingerprint, case let actual = fingerprint(entry.base),
                      actual.map({ $0 != recorded }) ?? (entry.length == nil) {
                // First: another store's file is not this one cut short, whatever its length (a repair
                // would keep its intact batches as this log's). And the active segment of a log not
                // closed cleanly, whose first batch was durable when its checksum was recorded: without
                // a valid first batch (`actual` nil) it was emptied, cut or overwritten, not torn by a
                // crash (which only tears what was never acknowledged).
                findings.append(.replaced(base: entry.base, recorded: recorded, actual: actual))
            } else if let length = entry.length, let actual = size(entry.base), UInt64(actual) < length {
                findings.append(.shortened(base: entry.base, recorded: length, actual: UInt64(actual)))
            } else if entry.length == nil, let extent = entry.extent, let actual = size(entry.base), UInt64(actual) < extent {
                // The active segment of a log not closed cleanly: its file had reached `extent` bytes
                // on stable storage before any record beyond them was acknowledged, and a crash does
                // not shorten a file below what a completed sync made durable. So it was cut.
                findings.append(.shortened(base: entry.base, recorded: extent, actual: UInt64(actual)))
            }
        }
        return findings
    }

    /// Whether the manifest, rather than the segments, is the stranger: it fingerprints at least
    /// two segments present and none of them matches (another store's manifest put in this one's place).
    func isForeign(findings: [Finding], bases: [UInt64]) -> Bool {
        let present = Set(bases)
        let fingerprinted = segments.filter { $0.fingerprint != nil && present.contains($0.base) }.count
        let replaced = findings.filter { if case .replaced = $0 { true } else { false } }.count
        return fingerprinted >= 2 && replaced == fingerprinted
    }

    /// The error open throws for a manifest that ``isForeign(findings:bases:)``.
    static func foreignError(directory: String) -> LogError {
        LogError(.corruptCheckpoint, "the log manifest does not describe this log: none of the segments it records has the first "
                 + "batch it recorded (another store's manifest?); run `spool recover` (a repair rewrites it from the segments present)",
                 path: directory + "/" + fileName)
    }
}

extension LogManifest.Finding {
    static func replacedMessage(recorded: UInt32, actual: UInt32?) -> String {
        guard let actual else {
            return "this segment's first batch is gone or damaged (the file was emptied, cut or overwritten): the log manifest "
                + "recorded its checksum 0x" + String(recorded, radix: 16) + " once it was on stable storage, so this is damage, "
                + "not a tail torn by a crash, and the acknowledged records in this segment are lost"
        }
        return "this segment is not the one the log recorded: its first batch's checksum is "
            + "0x" + String(actual, radix: 16) + ", the log manifest recorded 0x" + String(recorded, radix: 16)
            + " (a file of another store, or of another log, was put in its place); its records are not this log's"
    }

    /// The error ``Log/open(directory:configuration:)`` throws for this finding. `lostOffsets` is
    /// the caller's best knowledge of the offsets lost for a shortened segment (an upper bound of
    /// `UInt64.max`: from its lower bound on, end unknown).
    func error(directory: String, lostOffsets: Range<UInt64>? = nil) -> LogError {
        switch self {
        case .missing(let base, let from, let upTo):
            let path = directory + "/" + Segment.fileName(base, ".log")
            let offsets = upTo.map { "offsets \(from)..<\($0)" } ?? "offsets from \(from) on"
            return LogError(.missingSegment, "this segment is missing although the log manifest lists it and nothing removed it "
                            + "on purpose: \(offsets) are lost; restore the file from a backup, or run `spool recover --mode salvage` "
                            + "to accept the loss", path: path, offset: from)
        case .replaced(let base, let recorded, let actual):
            return LogError(.segmentReplaced, Self.replacedMessage(recorded: recorded, actual: actual)
                            + "; restore the right file from a backup, or move this one out of the directory (then "
                            + "`spool recover --mode salvage` accepts the missing segment and reports the offsets lost)",
                            path: directory + "/" + Segment.fileName(base, ".log"), offset: base)
        case .shortened(let base, let recorded, let actual):
            let path = directory + "/" + Segment.fileName(base, ".log")
            let offsets = lostOffsets.map {
                $0.isEmpty ? "" : $0.upperBound == .max ? " (offsets from \($0.lowerBound) on)" : " (offsets \($0.lowerBound)..<\($0.upperBound))"
            } ?? ""
            return LogError(.segmentShortened, "is \(actual) bytes long, but the log recorded \(recorded) bytes on stable storage: "
                            + "bytes \(actual)..<\(recorded)\(offsets) are gone; this is damage, not a torn tail. Restore the file "
                            + "from a backup, or run `spool recover --mode salvage` to accept the loss", path: path, offset: actual)
        }
    }
}
