#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

// Shared by LogVerifierTests and LogRepairTests: a multi-segment log, snapshots of its files, damage.

/// Writes `count` records of 600 non-zero bytes in batches of `perBatch` into a 64 KiB-segment log
/// (about five segments for 400 records) and closes it, or abandons it as a killed process would.
func buildMaintenanceLog(_ directory: String, count: Int = 400, perBatch: Int = 4, crash: Bool = false) async throws -> [[UInt8]] {
    let log = try Log.open(directory: directory, configuration: smallSegmentConfiguration())
    var expected: [[UInt8]] = []
    var i = 0
    while i < count {
        let group = (i..<min(count, i + perBatch)).map { nonZeroPayload($0, size: 600) }
        _ = try await log.append(contentsOf: group)
        expected += group
        i += perBatch
    }
    if crash { log.abandon() } else { try log.close() }
    return expected
}

/// Every file of a directory and its bytes.
func snapshot(_ directory: String) -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    for name in directoryEntries(directory) { files[name] = readFile(directory + "/" + name) }
    return files
}

/// The segment base offsets of a log directory, in order.
func segmentBases(_ directory: String) -> [UInt64] {
    directoryEntries(directory).compactMap { Segment.baseOffset(ofLogFile: $0) }.sorted()
}

/// Opens the log with the configuration it was written with and returns every record from its start.
func openAndReadAll(_ directory: String) throws -> [LogRecord] {
    let log = try Log.open(directory: directory, configuration: smallSegmentConfiguration())
    defer { try? log.close() }
    return try readAll(log)
}

/// `expected` as records (record i at offset i) without the offsets in `lost`.
func records(_ expected: [[UInt8]], without lost: Set<UInt64>) -> [LogRecord] {
    expected.enumerated().compactMap { lost.contains(UInt64($0.offset)) ? nil : LogRecord(offset: UInt64($0.offset), payload: $0.element) }
}

func offsets(_ ranges: [Range<UInt64>]) -> Set<UInt64> {
    Set(ranges.flatMap { Array($0) })
}

/// Verifies `directory` through a read-only handle.
func verifyDirectory(_ directory: String) throws -> LogVerification {
    let log = try OfflineLog.open(directory: directory)
    defer { log.close() }
    return try log.verify()
}

/// Repairs `directory` through a writable handle, backing up into `backup` when given.
func repairDirectory(_ directory: String, _ mode: RepairMode, backup: String?) throws -> RepairReport {
    let log = try OfflineLog.open(directory: directory, writable: true)
    defer { log.close() }
    return try log.repair(mode, backupDirectory: backup)
}

/// The kinds of damage the maintenance tests generate, each on a log of several segments.
enum GeneratedDamage: String, CaseIterable, Sendable, CustomStringConvertible {
    /// The last batch of the last segment cut in the middle, after a crash.
    case tornTail
    /// One payload bit of a middle batch of the second segment.
    case bitFlipMidSegment
    /// The second segment's index deleted.
    case deletedIndex
    /// The recovery point deleted (after a crash, so there is no clean-shutdown marker either).
    case deletedCheckpoint
    /// The second (sealed) segment cut in the middle of its last batch.
    case truncatedSegment
    /// 300 zero bytes over a batch boundary in the middle of the second segment.
    case zeroFilledRange

    var description: String { rawValue }

    /// Whether the damage loses records (the others are repaired without loss).
    var losesRecords: Bool { ![.deletedIndex, .deletedCheckpoint].contains(self) }

    /// Damages the log in `directory`; returns the offsets of the records whose bytes it touched
    /// (every other record is intact).
    func apply(to directory: String) -> Set<UInt64> {
        let bases = segmentBases(directory)
        let second = segmentPath(directory, bases[1])
        let layout = batchLayout(second)
        switch self {
        case .tornTail:
            let last = segmentPath(directory, bases[bases.count - 1])
            let batch = batchLayout(last).last!
            truncateFile(last, to: batch.position + batch.header.totalLength / 2)
            return Set(batch.offsets)
        case .bitFlipMidSegment:
            let batch = layout[layout.count / 2]
            flipBit(second, byte: batch.position + RecordBatchHeader.size + 100, bit: 3)
            return Set(batch.offsets)
        case .deletedIndex:
            removeFile(segmentPath(directory, bases[1], ".index"))
            return []
        case .deletedCheckpoint:
            removeFile(directory + "/recovery-point")
            return []
        case .truncatedSegment:
            let batch = layout.last!
            truncateFile(second, to: batch.position + 100)
            return Set(batch.offsets)
        case .zeroFilledRange:
            let batch = layout[layout.count / 2]
            let start = batch.end - 150
            overwrite(second, at: start, with: [UInt8](repeating: 0, count: 300))
            return Set(layout.filter { $0.position < start + 300 && $0.end > start }.flatMap { Array($0.offsets) })
        }
    }

    /// The log is built as after a crash for damage a crash leaves, and closed cleanly otherwise.
    var crash: Bool { self == .tornTail || self == .deletedCheckpoint }
}

/// `SPOOL_DEMO_DIR=/tmp/demo swift test --filter buildsTheDocumentationExample` writes the example log that
/// `Docs/operations.md` shows `spool inspect` and `spool recover` on; skipped otherwise.
@Suite struct OperationsDocumentationExample {
    static let directory: String? = getenv("SPOOL_DEMO_DIR").map { String(cString: $0) }

    @Test(.enabled(if: directory != nil)) func buildsTheDocumentationExample() async throws {
        let directory = try #require(Self.directory)
        // SPOOL_DEMO_BATCHES makes a larger log (with 128 MiB segments) for timing the tools by hand.
        let batches = getenv("SPOOL_DEMO_BATCHES").flatMap { Int(String(cString: $0)) }
        let configuration = batches == nil ? smallSegmentConfiguration() : LogConfiguration(durability: .none)
        let log = try Log.open(directory: directory, configuration: configuration)
        for i in 0..<(batches ?? 120) {
            _ = try await log.append(contentsOf: (0..<4).map { Array("{\"task\":\(i * 4 + $0),\"type\":\"send-invoice\",\"customer\":\"c-\(1000 + i)\"}".utf8) + [UInt8](repeating: 0x20, count: 400) })
        }
        try log.close()
    }
}
