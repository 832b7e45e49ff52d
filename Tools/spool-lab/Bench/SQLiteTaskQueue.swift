#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives
import CSQLite
import Synchronization

/// The SQLite baseline of `spool bench queue`: one task queue's tasks stored the way Temporal's SQL
/// persistence stores them (its SQLite schema, `schema/sqlite/v3/temporal/schema.sql`, table `tasks`,
/// and the statements of `common/persistence/sql/sqlplugin/sqlite/task.go`):
///
/// - a table keyed by `(range_hash, task_queue_id, task_id)` holding the task's `data` blob;
/// - add = `INSERT` of one row, with the task id taken from a counter the queue's owner keeps
///   (Temporal hands out ids from a leased range block, one owner per queue);
/// - poll = `SELECT … WHERE range_hash = ? AND task_queue_id = ? AND task_id > ? ORDER BY task_id LIMIT ?`
///   (the task reader pulls a batch past its read level into memory, pollers take from it);
/// - complete = a range delete of a polled batch once it is done,
///   `DELETE … WHERE range_hash = ? AND task_queue_id = ? AND task_id >= ? AND task_id <= ?`: Temporal
///   deletes acknowledged ranges (`task_id < ackLevel`, with a LIMIT), never one row per ack; here
///   each poller deletes its own batch's range, the same primary-key range scan, so that batches
///   completed by different pollers in any order never delete each other's tasks.
///
/// The database is in WAL mode with `synchronous` FULL (a commit returns after the WAL is
/// fsynced: compared with Spool's `sync`) or NORMAL (the WAL is fsynced only at checkpoints:
/// compared with `interval`).
///
/// Concurrency, chosen for SQLite's best honest figure: SQLite admits one writer at a time, so all
/// writes (inserts and range deletes) go through **one writer connection** with leader/follower
/// group commit: a caller queues its write and waits; whoever finds no transaction running becomes
/// the leader, runs the queued writes (up to `writesPerTransaction` of them) in one transaction and
/// wakes their callers when it has committed. With `writesPerTransaction` = 1 that is exactly one
/// task per transaction; with 100 it is Temporal's own task writer, which batches pending adds into
/// one `InsertIntoTasks`. Several writer connections would only add SQLITE_BUSY retries on the same
/// lock. Reads go through **a second connection** under its own lock: WAL lets them proceed while a
/// write transaction is being fsynced.
final class SQLiteTaskQueue {
    let path: String
    let writesPerTransaction: Int
    private let rangeHash: Int64
    private let queueID: [UInt8]
    private let writer: SQLiteConnection
    private let reader: SQLiteConnection
    private let begin: SQLiteStatement
    private let commit: SQLiteStatement
    private let rollback: SQLiteStatement
    private let insert: SQLiteStatement
    private let deleteRange: SQLiteStatement
    private let selectBatch: SQLiteStatement

    // Writer state, guarded by `writeLock`.
    private let writeLock = ThreadLock()
    private var pending: [SQLiteWrite] = []
    private var pendingHead = 0
    private var committing = false
    private var nextTaskID: Int64 = 1
    /// Transactions committed, and the writes (inserts, range deletes) they held (for the report).
    private(set) var transactions = 0
    private(set) var writes = 0

    // Reader state, guarded by `readLock`.
    private let readLock = ThreadLock()
    /// Broadcast (under `readLock`) when the committed level moves or the queue closes.
    private let readLevelMoved = ThreadCondition()
    private var readLevel: Int64 = 0
    private var committedLevel: Int64 = 0
    private var closed = false

    static let schema = """
        CREATE TABLE IF NOT EXISTS tasks (
            range_hash INT UNSIGNED NOT NULL,
            task_queue_id VARBINARY(272) NOT NULL,
            task_id BIGINT NOT NULL,
            data MEDIUMBLOB NOT NULL,
            data_encoding VARCHAR(16) NOT NULL,
            PRIMARY KEY (range_hash, task_queue_id, task_id)
        )
        """

    /// Creates (or opens) `directory/tasks.sqlite` for the queue named `queue`.
    /// - Throws: `SQLiteError` naming the file, the statement and SQLite's message.
    init(directory: String, queue: String, synchronous: SQLiteSynchronous, writesPerTransaction: Int) throws(SQLiteError) {
        precondition(writesPerTransaction >= 1, "writesPerTransaction must be at least 1")
        path = directory + "/tasks.sqlite"
        self.writesPerTransaction = writesPerTransaction
        // Temporal's range_hash is a 32-bit hash of the task queue id; FNV-1a stands in for farmhash.
        var hash: UInt32 = 2_166_136_261
        for byte in queue.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        rangeHash = Int64(hash)
        queueID = Array(queue.utf8)

        writer = try SQLiteConnection(path: path)
        try writer.execute("PRAGMA journal_mode=WAL")
        try writer.execute("PRAGMA synchronous=\(synchronous.rawValue)")
        try writer.execute(Self.schema)
        reader = try SQLiteConnection(path: path)
        try reader.execute("PRAGMA synchronous=\(synchronous.rawValue)")

        begin = try writer.prepare("BEGIN IMMEDIATE")
        commit = try writer.prepare("COMMIT")
        rollback = try writer.prepare("ROLLBACK")
        insert = try writer.prepare(
            "INSERT INTO tasks(range_hash, task_queue_id, task_id, data, data_encoding) VALUES(?, ?, ?, ?, 'proto3')")
        deleteRange = try writer.prepare(
            "DELETE FROM tasks WHERE range_hash = ? AND task_queue_id = ? AND task_id >= ? AND task_id <= ?")
        selectBatch = try reader.prepare(
            "SELECT task_id, data, data_encoding FROM tasks WHERE range_hash = ? AND task_queue_id = ? AND task_id > ? ORDER BY task_id LIMIT ?")
    }

    /// Adds a task and returns its id once its transaction has committed (durable under the
    /// database's `synchronous` setting).
    func add(_ payload: [UInt8]) throws -> Int64 {
        let write = SQLiteWrite(kind: .insert(payload))
        try perform(write)
        return write.taskID
    }

    /// The next tasks past the read level, oldest first, at most `limit`; waits while none has
    /// been committed. Empty once ``close()`` was called and nothing is left.
    func pollBatch(limit: Int) throws -> [SQLiteStoredTask] {
        readLock.lock()
        defer { readLock.unlock() }
        while readLevel >= committedLevel && !closed { readLevelMoved.wait(readLock) }
        guard readLevel < committedLevel else { return [] }
        var tasks: [SQLiteStoredTask] = []
        tasks.reserveCapacity(limit)
        try selectBatch.bind(1, rangeHash)
        try selectBatch.bind(3, readLevel)
        try selectBatch.bind(4, Int64(limit))
        defer { selectBatch.reset() }
        try queueID.withUnsafeBytes { (bytes) in
            try selectBatch.bind(2, blob: bytes)
            while try selectBatch.step() {
                tasks.append(SQLiteStoredTask(id: selectBatch.int64(0), data: selectBatch.blob(1)))
            }
        }
        if let last = tasks.last { readLevel = last.id }
        return tasks
    }

    /// Completes (deletes) the polled tasks with ids `first…last`: one range delete, durable
    /// when it returns.
    func complete(first: Int64, last: Int64) throws {
        try perform(SQLiteWrite(kind: .deleteRange(first: first, last: last)))
    }

    /// Rows left in the table (0 after a run that completed everything it added).
    func remainingTasks() throws(SQLiteError) -> Int {
        writeLock.lock()
        defer { writeLock.unlock() }
        let count = try writer.prepare("SELECT count(*) FROM tasks")
        defer { count.reset() }
        return try count.step() ? Int(count.int64(0)) : 0
    }

    /// Wakes pollers waiting for tasks; they return empty batches from now on once none is left.
    func close() {
        readLock.lock()
        closed = true
        readLevelMoved.broadcast()
        readLock.unlock()
    }

    /// Queues `write` and waits until a transaction holding it has committed (group commit).
    ///
    /// Each waiter sleeps on its own condition variable, so that a commit wakes only the callers
    /// it completed and the next leader: one broadcast to 128 producers per commit costs more CPU
    /// than SQLite itself on two cores.
    private func perform(_ write: SQLiteWrite) throws {
        writeLock.lock()
        pending.append(write)
        while !write.done {
            if committing {
                write.wakeUp.wait(writeLock)
                continue
            }
            // Leader: take the oldest queued writes, run them in one transaction without the lock.
            committing = true
            let end = min(pending.count, pendingHead + writesPerTransaction)
            let batch = Array(pending[pendingHead..<end])
            pendingHead = end
            if pendingHead > 4096 && pendingHead * 2 > pending.count {
                pending.removeFirst(pendingHead)
                pendingHead = 0
            }
            for item in batch where item.isInsert {
                item.taskID = nextTaskID
                nextTaskID += 1
            }
            writeLock.unlock()
            let failure = runTransaction(batch)
            writeLock.lock()
            committing = false
            transactions += 1
            writes += batch.count
            for item in batch {
                item.error = failure
                item.done = true
                if item !== write { item.wakeUp.signal() }
            }
            // The oldest write still queued leads the next transaction.
            if pendingHead < pending.count { pending[pendingHead].wakeUp.signal() }
            if failure == nil, let newest = batch.last(where: \.isInsert)?.taskID {
                readLock.lock()
                committedLevel = max(committedLevel, newest)
                readLevelMoved.broadcast()
                readLock.unlock()
            }
        }
        writeLock.unlock()
        if let error = write.error { throw error }
    }

    private func runTransaction(_ batch: [SQLiteWrite]) -> (any Error)? {
        do {
            try begin.run()
            do {
                for item in batch {
                    switch item.kind {
                    case .insert(let payload):
                        try insert.bind(1, rangeHash)
                        try insert.bind(3, item.taskID)
                        // Blobs are bound without a copy, so the statement runs inside their scopes.
                        try queueID.withUnsafeBytes { (queue) in
                            try payload.withUnsafeBytes { (bytes) in
                                try insert.bind(2, blob: queue)
                                try insert.bind(4, blob: bytes)
                                try insert.run()
                            }
                        }
                    case .deleteRange(let first, let last):
                        try deleteRange.bind(1, rangeHash)
                        try queueID.withUnsafeBytes { (bytes) in
                            try deleteRange.bind(2, blob: bytes)
                            try deleteRange.bind(3, first)
                            try deleteRange.bind(4, last)
                            try deleteRange.run()
                        }
                    }
                }
                try commit.run()
            } catch {
                try? rollback.run()
                throw error
            }
            return nil
        } catch {
            return error
        }
    }
}

// Writer state is touched only under `writeLock`, reader state only under `readLock`, and each
// connection only by the thread holding its lock (the writer connection: the group-commit leader).
extension SQLiteTaskQueue: @unchecked Sendable {}

/// A task read back from SQLite.
struct SQLiteStoredTask {
    var id: Int64
    var data: [UInt8]
}

/// WAL `synchronous` settings the bench compares with Spool's durability modes.
enum SQLiteSynchronous: String {
    /// The WAL is fsynced at every commit: compared with Spool's `sync`.
    case full = "FULL"
    /// The WAL is fsynced at checkpoints only: compared with Spool's `interval`.
    case normal = "NORMAL"
}

/// One queued write of the group commit, completed by the leader that ran it.
private final class SQLiteWrite {
    enum Kind {
        case insert([UInt8])
        case deleteRange(first: Int64, last: Int64)
    }

    let kind: Kind
    // Set by the leader under `writeLock`; read by the caller under it.
    var taskID: Int64 = 0
    var done = false
    var error: (any Error)?
    /// Signalled (under `writeLock`) when this write is done or its caller is to lead.
    let wakeUp = ThreadCondition()

    init(kind: Kind) { self.kind = kind }

    var isInsert: Bool {
        if case .insert = kind { return true }
        return false
    }
}

/// What SQLite reported: the database file, the statement, the result code and SQLite's message.
struct SQLiteError: Error, CustomStringConvertible {
    var path: String
    var sql: String
    var code: Int32
    var message: String

    var description: String { "\(path): SQLite error \(code) (\(message)) in statement: \(sql)" }
}

/// One SQLite connection, opened without SQLite's own mutex (`SQLITE_OPEN_NOMUTEX`): its owner
/// serializes every use.
final class SQLiteConnection {
    let path: String
    let handle: OpaquePointer

    init(path: String) throws(SQLiteError) {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_close_v2(handle)
            throw SQLiteError(path: path, sql: "sqlite3_open_v2", code: code, message: message)
        }
        self.handle = handle
        sqlite3_busy_timeout(handle, 10_000)
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs `sql` (one or more statements), discarding any rows.
    func execute(_ sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &message)
        guard code == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_free(message)
            throw SQLiteError(path: path, sql: sql, code: code, message: text)
        }
    }

    func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else { throw error(code, sql: sql) }
        return SQLiteStatement(connection: self, sql: sql, statement: statement)
    }

    func error(_ code: Int32, sql: String) -> SQLiteError {
        SQLiteError(path: path, sql: sql, code: code, message: String(cString: sqlite3_errmsg(handle)))
    }
}

/// A prepared statement of a ``SQLiteConnection`` (kept alive by it).
final class SQLiteStatement {
    let connection: SQLiteConnection
    let sql: String
    private let statement: OpaquePointer

    init(connection: SQLiteConnection, sql: String, statement: OpaquePointer) {
        self.connection = connection
        self.sql = sql
        self.statement = statement
    }

    deinit { sqlite3_finalize(statement) }

    func bind(_ index: Int32, _ value: Int64) throws(SQLiteError) {
        let code = sqlite3_bind_int64(statement, index, value)
        guard code == SQLITE_OK else { throw connection.error(code, sql: sql) }
    }

    /// Binds `bytes` without a copy (SQLITE_STATIC): step the statement before they go away.
    func bind(_ index: Int32, blob bytes: UnsafeRawBufferPointer) throws(SQLiteError) {
        let code = sqlite3_bind_blob(statement, index, bytes.baseAddress, Int32(bytes.count), nil)
        guard code == SQLITE_OK else { throw connection.error(code, sql: sql) }
    }

    /// Steps once: true when a row is available, false when the statement is done.
    func step() throws(SQLiteError) -> Bool {
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            let error = connection.error(code, sql: sql)
            sqlite3_reset(statement)
            throw error
        }
    }

    /// Steps to the end and resets (a statement that returns no rows).
    func run() throws(SQLiteError) {
        defer { reset() }
        while try step() {}
    }

    func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let base = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: count))
    }
}
