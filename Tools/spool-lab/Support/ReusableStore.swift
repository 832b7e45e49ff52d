import Spool
import SpoolLog


/// The engine data directory a store bench measures: `--data` (built there when it holds no
/// history yet, else reused), or a temporary one built now and removed by ``removeScratch()``.
struct ReusableStore {
    let directory: String
    /// The temporary directory to remove, when `--data` was not given.
    private let scratch: String?
    /// Whether the store was built now, and how long that took.
    let built: Bool
    let buildSeconds: Double

    init(data: String?, build: (String) async throws -> Void) async throws {
        if let data {
            try makeDirectory(data)
            directory = data
            scratch = nil
        } else {
            let base = try makeTemporaryDirectory()
            directory = base + "/engine"
            scratch = base
        }
        if DataDirectory.isDirectory(DataDirectory(directory).history) {
            built = false
            buildSeconds = 0
        } else {
            let started = ContinuousClock.now
            do { try await build(directory) } catch { if let scratch { removeTree(scratch) }; throw error }
            buildSeconds = (ContinuousClock.now - started).seconds
            built = true
        }
    }

    func removeScratch() {
        if let scratch { removeTree(scratch) }
    }
}
