#if canImport(Glibc)
import Glibc
#endif
import SpoolLog

extension PowerLossSyscalls {
    /// What a power loss keeps of the bytes written since the last sync.
    package enum Writeback: Sendable, Equatable {
        /// Nothing: every unsynced byte and size change is reverted.
        case syncedOnly
        /// A random subset of the unsynced 4 KiB pages of each file, chosen with `seed`, and either
        /// its synced or its current size.
        case torn(seed: UInt64)
    }

    /// What ``simulatePowerLoss(_:)`` changed on disk.
    package struct Report: Sendable, Equatable, CustomStringConvertible {
        /// Files rewritten to their durable content (unsynced bytes or size changes dropped).
        package var filesReverted: [String] = []
        /// Names removed: files or directories whose creation (or rename to that name) was not durable.
        package var namesRemoved: [String] = []
        /// Names that came back: unlinked or renamed-away files whose removal was not durable.
        package var namesRestored: [String] = []
        /// Unsynced pages kept by ``Writeback/torn(seed:)``.
        package var unsyncedPagesKept = 0
        /// Unsynced pages dropped.
        package var unsyncedPagesDropped = 0

        package var description: String {
            "reverted \(filesReverted.count) files, removed \(namesRemoved.count) names, restored \(namesRestored.count), "
                + "unsynced pages kept \(unsyncedPagesKept), dropped \(unsyncedPagesDropped)"
        }
    }
}
