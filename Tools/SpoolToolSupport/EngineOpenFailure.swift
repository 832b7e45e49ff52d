import Spool
import SpoolLog

/// Why `SpoolEngine.open` failed, in the words of the directory.
package func explainOpenFailure(_ error: SpoolError, directory: DataDirectory) -> String {
    if let log = error.underlying as? LogError {
        switch log.code {
        case .directoryLocked:
            return "\(directory.history): the workflow history is open in another process; stop it first (or wait for it to exit), or, if it is `spool serve`, give the workflow and task-queue commands its --address instead of --data"
        case .notALogDirectory, .corruptBatch, .corruptCheckpoint:
            // The file at fault (a segment, the log manifest), when the error names one: an operator restores that file.
            return "\(log.path ?? directory.history): \(log.message); run `spool recover --data \(directory.history)`"
        case .wrongDirectoryKind, .foreignDirectory:
            return DataDirectory.explain(log, path: directory.path)
        case .directoryMissing, .notADirectory:
            // The data directory itself could not be created.
            return DataDirectory.explain(log, path: directory.path)
        default:
            return "\(directory.history): \(log)"
        }
    }
    if error.code == .corruptRecord {
        return "\(directory): \(error.message); the engine cannot replay this directory"
    }
    return "\(directory): \(error)"
}
