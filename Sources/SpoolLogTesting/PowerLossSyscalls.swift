#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolPrimitives

/// A ``Syscalls`` layer for tests that simulates a power loss: it forwards every call to another
/// layer (the real ``SystemCalls`` by default) and remembers what a `fsync`/`fdatasync` made
/// durable, so that ``simulatePowerLoss(_:)`` can rewrite the files to what a machine that lost
/// power would find after a reboot.
///
/// ```swift
/// let power = PowerLossSyscalls()
/// var configuration = LogConfiguration(durability: .sync)
/// configuration.syscalls = power
/// let log = try Log.open(directory: path, configuration: configuration)
/// power.cutPower(atStep: power.stepCount + 40)   // the 40th mutating call from now never happens
/// … appends, until they fail …
/// log.abandon()
/// power.simulatePowerLoss()                      // the disk as after the reboot
/// let reopened = try Log.open(directory: path, configuration: configuration)
/// ```
///
/// The model (POSIX, the strictest reading, which ext4 and XFS can both show):
///
/// - **File contents.** A file's durable content is what it held when the last successful
///   `fsync`/`fdatasync` of it *started* (any descriptor of the file). Writes that completed
///   before the sync started are in it; a write that completes after the sync started is not,
///   even if it overlapped the sync. At a power loss every other byte reverts: written ranges
///   get their earlier durable bytes back and the file its durable size. A file never synced
///   is empty.
/// - **Directory entries.** Creating, renaming and unlinking a name is durable once an `fsync`
///   of its directory started after it. At a power loss an undurable create disappears, an
///   undurable rename is reverted (the source name comes back with the file, the destination
///   gets its previous file back, if any), and an undurably unlinked file comes back with its
///   durable content (this layer keeps a copy). A directory made by an undurable `mkdir`
///   disappears with everything in it.
/// - **What was there before** this layer saw a file is durable (the state after the previous
///   simulated power loss, or the test's own setup).
///
/// With ``Writeback/torn(seed:)``, a power loss also keeps a random subset of the unsynced
/// 4 KiB pages of each file (and either its synced or its current size): write-back that got
/// partly, and out of order, to the disk before the power went. Directory entries stay strict.
///
/// **Shared mappings.** Stores through a writable `mmap` do not go through this layer (the log's
/// offset indexes are written that way). They become durable with the next `fsync` of the file,
/// which reads the file, so that is modelled. For such a store to be *reverted* too, the file's
/// content must be known from before it, so files for which `writtenThroughMappings` returns
/// true (by default, paths ending in `.index`) are read when opened for writing; other files
/// are read just before their first `pwrite` or `ftruncate` (a log's sealed segments are opened
/// read-write but never written, and are never read).
///
/// **Power cut.** ``cutPower(atStep:)`` numbers mutating calls like ``FaultInjectingSyscalls``
/// (`pwrite`, `fdatasync`, `fsync`, `ftruncate`, `rename`, `unlink`, `mkdir`, `open` with
/// `O_CREAT`); from the chosen one on, every call but `close` fails with `EIO` and reaches
/// nothing. A sync in flight when the power is cut fails too and makes nothing durable.
///
/// Thread-safe. Mutating calls are forwarded with the layer's lock held, so that a sync's view
/// of the file is exactly the writes that completed before it; syncs themselves run unlocked
/// and overlap as they do for real. Meant for small files: a sync reads the whole file.
package final class PowerLossSyscalls: Syscalls {
    /// A file (an inode): its durable content, whichever names it has.
    private final class FileNode {
        /// The durable content; `nil` while the file on disk is still as this layer first found it.
        var durable: [UInt8]?
        /// The event number of the sync that made `durable` durable (the newest one wins).
        var durableEvent: UInt64 = 0

        init(durable: [UInt8]?) { self.durable = durable }
    }

    /// What a name in a directory refers to.
    private enum Entry {
        case absent
        case directory
        case file(FileNode)

        func isSame(as other: Entry) -> Bool {
            switch (self, other) {
            case (.absent, .absent), (.directory, .directory): true
            case (.file(let a), .file(let b)): a === b
            default: false
            }
        }
    }

    private struct Name {
        var durable: Entry
        var current: Entry
    }

    private struct Descriptor {
        var path: String
        var node: FileNode?
        var isDirectory: Bool
    }

    private struct State {
        /// Every name this layer has touched, by normalized path.
        var names: [String: Name] = [:]
        var descriptors: [Int32: Descriptor] = [:]
        /// For each directory, the event number of the newest `fsync` of it that made its entries durable.
        var directoryDurableEvent: [String: UInt64] = [:]
        /// For each file path, the event number at which the newest completed sync of it started.
        var lastCompletedSyncStart: [String: UInt64] = [:]
        /// For each file path, the event number of the last `pwrite` or `ftruncate` of it.
        var lastWriteEvent: [String: UInt64] = [:]
        var events: UInt64 = 0
        var steps = 0
        var cutStep: Int?
        var cut = false
        /// When the power went (monotonic nanoseconds).
        var cutAt: UInt64?
        var longestSync: UInt64 = 0
    }

    private let base: any Syscalls
    private let writtenThroughMappings: @Sendable (String) -> Bool
    private let lock = ThreadLock()
    private var state = State()

    /// A layer that forwards to `base`. `writtenThroughMappings` names the files the caller may
    /// write through a shared `mmap` (read when opened for writing, see the type's documentation).
    package init(wrapping base: any Syscalls = SystemCalls(),
                 writtenThroughMappings: @escaping @Sendable (String) -> Bool = { $0.hasSuffix(".index") }) {
        self.base = base
        self.writtenThroughMappings = writtenThroughMappings
    }

    // MARK: Power

    /// Mutating calls made so far; the next one is step `stepCount + 1`.
    package var stepCount: Int { lock.withLock { state.steps } }

    /// A logical clock: it advances on every mutating call and at the start and end of every sync.
    /// A test reads it when an append returns and compares it with ``lastCompletedSyncStart(path:)``.
    package var eventCount: UInt64 { lock.withLock { state.events } }

    /// The ``eventCount`` at which the newest successful sync of `path` started (0 when none did):
    /// everything written to that file before that event is durable.
    package func lastCompletedSyncStart(path: String) -> UInt64 {
        let key = Self.normalize(path)
        return lock.withLock { state.lastCompletedSyncStart[key] ?? 0 }
    }

    /// The ``eventCount`` of the last `pwrite` or `ftruncate` of `path` (0 when none since the last
    /// power loss). Read right after an append returns, it bounds the event of the append's write:
    /// the write is durable once ``lastCompletedSyncStart(path:)`` is larger.
    package func lastWriteEvent(path: String) -> UInt64 {
        let key = Self.normalize(path)
        return lock.withLock { state.lastWriteEvent[key] ?? 0 }
    }

    /// Whether the power is off (``cutPower()`` or the step of ``cutPower(atStep:)`` was reached).
    package var isPowerCut: Bool { lock.withLock { state.cut } }

    /// When the power went, on the monotonic clock (`CLOCK_MONOTONIC` nanoseconds); `nil` while it is on.
    package var powerCutNanoseconds: UInt64? { lock.withLock { state.cutAt } }

    /// The longest `fsync`/`fdatasync` so far (forwarded call only), in nanoseconds.
    package var longestSyncNanoseconds: UInt64 { lock.withLock { state.longestSync } }

    /// Cuts the power now: every later call but `close` fails with `EIO`.
    package func cutPower() {
        lock.withLock { cut() }
    }

    /// Call with the lock held.
    private func cut() {
        if !state.cut { state.cutAt = Self.monotonicNanoseconds() }
        state.cut = true
    }

    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Cuts the power at mutating call number `step` (counted from 1 since this layer was
    /// created): that call and every later one fail with `EIO` and reach nothing.
    package func cutPower(atStep step: Int) {
        precondition(step >= 1, "steps are counted from 1")
        lock.withLock {
            state.cutStep = step
            if state.steps >= step { cut() }
        }
    }

    /// Rewrites the files this layer saw to what survives a power loss now (see the type's
    /// documentation), then turns the power back on: the result is the new durable state, every
    /// record of what happened before is forgotten, and the step count goes on.
    ///
    /// Call it once nothing uses the files any more (after ``Log/abandon()``); calls still made
    /// meanwhile fail with `EIO`.
    @discardableResult
    package func simulatePowerLoss(_ writeback: Writeback = .syncedOnly) -> Report {
        lock.lock()
        defer { lock.unlock() }
        cut()
        var random = SplitMix64(seed: { if case .torn(let seed) = writeback { seed } else { 0 } }())
        var report = Report()

        // Which names still exist after the power loss: a name whose directory's creation was
        // not durable goes with it.
        func survives(_ path: String) -> Bool {
            let parent = Self.parent(of: path)
            guard parent != path, let name = state.names[parent] else { return true }
            guard case .directory = name.durable else { return false }
            return survives(parent)
        }

        // What to write at each changed name, computed before anything on disk changes.
        enum Target { case absent, directory, file([UInt8]) }
        var changes: [(path: String, target: Target, hadDurable: Bool)] = []
        for (path, name) in state.names {
            let alive = survives(path)
            switch name.durable {
            case .absent:
                if case .absent = name.current { continue }
                changes.append((path, .absent, false))
            case .directory:
                if !alive { changes.append((path, .absent, true)); continue }
                if case .directory = name.current { continue }
                changes.append((path, .directory, true))
            case .file(let node):
                if !alive { changes.append((path, .absent, true)); continue }
                let unchanged = name.current.isSame(as: name.durable) && node.durable == nil
                if unchanged { continue }
                var content = node.durable ?? Self.readFile(path: currentPath(of: node) ?? path) ?? []
                if case .torn = writeback, name.current.isSame(as: name.durable), let now = Self.readFile(path: path), now != content {
                    content = Self.tear(durable: content, current: now, random: &random, report: &report)
                }
                changes.append((path, .file(content), true))
            }
        }

        // Removals deepest first, then creations shallowest first.
        changes.sort { $0.path.count > $1.path.count }
        for change in changes {
            if case .directory = change.target { continue }
            Self.removeTree(change.path)
        }
        for change in changes.reversed() {
            switch change.target {
            case .absent:
                report.namesRemoved.append(change.path)
            case .directory:
                Glibc.mkdir(change.path, 0o700)
                report.namesRestored.append(change.path)
            case .file(let content):
                Self.writeFile(path: change.path, content)
                if let name = state.names[change.path], name.current.isSame(as: name.durable) {
                    report.filesReverted.append(change.path)
                } else {
                    report.namesRestored.append(change.path)
                }
            }
        }
        report.filesReverted.sort()
        report.namesRemoved.sort()
        report.namesRestored.sort()

        // Power back on: what is on disk now is the durable state.
        state.names = [:]
        for fd in state.descriptors.keys { state.descriptors[fd]?.node = nil }
        state.directoryDurableEvent = [:]
        state.lastCompletedSyncStart = [:]
        state.lastWriteEvent = [:]
        state.cutStep = nil
        state.cut = false
        state.cutAt = nil
        return report
    }

    /// A current name of `node`, if it has one. Call with the lock held.
    private func currentPath(of node: FileNode) -> String? {
        for (path, name) in state.names {
            if case .file(let other) = name.current, other === node { return path }
        }
        return nil
    }

    /// Keeps each differing 4 KiB page of `current` or of `durable` at random, and one of the two sizes.
    private static func tear(durable: [UInt8], current: [UInt8], random: inout SplitMix64, report: inout Report) -> [UInt8] {
        let page = 4096
        let size = durable.count == current.count ? current.count : (random.next() & 1 == 0 ? durable.count : current.count)
        var result = [UInt8](repeating: 0, count: size)
        var start = 0
        while start < size {
            let end = min(start + page, size)
            let old = (start..<end).map { $0 < durable.count ? durable[$0] : 0 }
            let new = (start..<end).map { $0 < current.count ? current[$0] : 0 }
            var keep = false
            if old != new {
                keep = random.next() & 1 == 0
                if keep { report.unsyncedPagesKept += 1 } else { report.unsyncedPagesDropped += 1 }
            }
            result.replaceSubrange(start..<end, with: keep ? new : old)
            start = end
        }
        return result
    }

    // MARK: Bookkeeping (lock held)

    /// Counts a mutating call and cuts the power at the chosen step; throws when the power is off.
    private func admit(_ call: String, path: String?, mutating: Bool) throws(SystemError) {
        if mutating {
            state.steps += 1
            state.events += 1
            if let cutStep = state.cutStep, state.steps >= cutStep { cut() }
        }
        if state.cut { throw SystemError(call: call, errno: EIO, path: path) }
    }

    /// Starts tracking `path` with what is on disk now, taken as durable.
    private func touch(_ path: String) {
        guard state.names[path] == nil else { return }
        var info = stat()
        let entry: Entry
        if lstat(path, &info) != 0 {
            entry = .absent
        } else if info.st_mode & S_IFMT == S_IFDIR {
            entry = .directory
        } else {
            entry = .file(FileNode(durable: nil))
        }
        state.names[path] = Name(durable: entry, current: entry)
    }

    /// Reads a file's content before its first change, so that it can be restored.
    private func materialize(_ node: FileNode, fd: Int32?) {
        guard node.durable == nil else { return }
        if let fd, let bytes = Self.readFile(descriptor: fd) {
            node.durable = bytes
        } else if let path = currentPath(of: node) {
            node.durable = Self.readFile(path: path) ?? []
        } else {
            node.durable = []
        }
    }

    private func fileNode(_ fd: Int32) -> FileNode? { state.descriptors[fd]?.node }

    // MARK: Syscalls

    package func open(_ path: String, flags: Int32, mode: mode_t) throws(SystemError) -> Int32 {
        let key = Self.normalize(path)
        let creating = flags & O_CREAT != 0
        lock.lock()
        defer { lock.unlock() }
        try admit("open", path: path, mutating: creating)
        touch(key)
        if case .file(let node) = state.names[key]!.current,
           flags & O_TRUNC != 0 || (flags & O_ACCMODE != O_RDONLY && writtenThroughMappings(key)) {
            // Its content before this open is what a power loss may bring back.
            materialize(node, fd: nil)
        }
        let fd = try base.open(path, flags: flags, mode: mode)
        var name = state.names[key]!
        if case .absent = name.current {
            // Created by this call (a name created behind this layer's back is taken as durable).
            var info = stat()
            if Glibc.fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR {
                name.current = .directory
            } else {
                name.current = .file(FileNode(durable: creating ? [] : nil))
            }
            state.names[key] = name
        }
        switch name.current {
        case .file(let node):
            state.descriptors[fd] = Descriptor(path: key, node: node, isDirectory: false)
        case .directory:
            state.descriptors[fd] = Descriptor(path: key, node: nil, isDirectory: true)
        case .absent:
            break
        }
        return fd
    }

    package func close(_ fd: Int32) {
        lock.withLock { _ = state.descriptors.removeValue(forKey: fd) }
        base.close(fd)
    }

    package func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at position: Int64) throws(SystemError) -> Int {
        lock.lock()
        defer { lock.unlock() }
        try admit("pwrite", path: state.descriptors[fd]?.path, mutating: true)
        if let node = fileNode(fd) { materialize(node, fd: fd) }
        if let path = state.descriptors[fd]?.path { state.lastWriteEvent[path] = state.events }
        return try base.pwrite(fd, buffer, at: position)
    }

    package func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws(SystemError) -> Int {
        try lock.withLock { () throws(SystemError) in try admit("pread", path: state.descriptors[fd]?.path, mutating: false) }
        return try base.pread(fd, into: buffer, at: position)
    }

    package func fdatasync(_ fd: Int32) throws(SystemError) {
        try sync(fd, call: "fdatasync") { () throws(SystemError) in try base.fdatasync(fd) }
    }

    package func fsync(_ fd: Int32) throws(SystemError) {
        try sync(fd, call: "fsync") { () throws(SystemError) in try base.fsync(fd) }
    }

    /// Takes what the sync will make durable when it starts, runs it unlocked, and commits that
    /// if it succeeded and the power is still on.
    private func sync(_ fd: Int32, call: String, _ body: () throws(SystemError) -> Void) throws(SystemError) {
        enum Snapshot { case file(FileNode, [UInt8]), directory([(String, Entry)]), untracked }
        let (snapshot, started, path): (Snapshot, UInt64, String?) = try lock.withLock { () throws(SystemError) in
            let descriptor = state.descriptors[fd]
            try admit(call, path: descriptor?.path, mutating: true)
            var snapshot = Snapshot.untracked
            if let descriptor {
                if descriptor.isDirectory {
                    let entries = state.names.filter { Self.parent(of: $0.key) == descriptor.path && $0.key != descriptor.path }
                    snapshot = .directory(entries.map { ($0.key, $0.value.current) })
                } else if let node = descriptor.node, let bytes = Self.readFile(descriptor: fd) {
                    snapshot = .file(node, bytes)
                }
            }
            return (snapshot, state.events, descriptor?.path)
        }
        let begun = Self.monotonicNanoseconds()
        try body()
        let duration = Self.monotonicNanoseconds() - begun
        try lock.withLock { () throws(SystemError) in
            state.longestSync = max(state.longestSync, duration)
            if state.cut { throw SystemError(call: call, errno: EIO, path: path) }
            state.events += 1
            switch snapshot {
            case .file(let node, let bytes):
                if started > node.durableEvent {
                    node.durable = bytes
                    node.durableEvent = started
                }
                if let path { state.lastCompletedSyncStart[path] = max(state.lastCompletedSyncStart[path] ?? 0, started) }
            case .directory(let entries):
                guard let path, started > state.directoryDurableEvent[path] ?? 0 else { break }
                state.directoryDurableEvent[path] = started
                for (name, entry) in entries { state.names[name]?.durable = entry }
            case .untracked:
                break
            }
        }
    }

    package func ftruncate(_ fd: Int32, to size: Int64) throws(SystemError) {
        lock.lock()
        defer { lock.unlock() }
        try admit("ftruncate", path: state.descriptors[fd]?.path, mutating: true)
        if let node = fileNode(fd) { materialize(node, fd: fd) }
        if let path = state.descriptors[fd]?.path { state.lastWriteEvent[path] = state.events }
        try base.ftruncate(fd, to: size)
    }

    package func fileSize(_ fd: Int32) throws(SystemError) -> Int64 {
        try lock.withLock { () throws(SystemError) in try admit("fstat", path: state.descriptors[fd]?.path, mutating: false) }
        return try base.fileSize(fd)
    }

    package func rename(_ from: String, to: String) throws(SystemError) {
        let source = Self.normalize(from), destination = Self.normalize(to)
        lock.lock()
        defer { lock.unlock() }
        try admit("rename", path: from, mutating: true)
        touch(source)
        touch(destination)
        if case .file(let replaced) = state.names[destination]!.current { materialize(replaced, fd: nil) }
        if case .file(let moved) = state.names[source]!.current { materialize(moved, fd: nil) }
        try base.rename(from, to: to)
        state.names[destination]!.current = state.names[source]!.current
        state.names[source]!.current = .absent
    }

    package func unlink(_ path: String) throws(SystemError) {
        let key = Self.normalize(path)
        lock.lock()
        defer { lock.unlock() }
        try admit("unlink", path: path, mutating: true)
        touch(key)
        if case .file(let node) = state.names[key]!.current { materialize(node, fd: nil) }
        try base.unlink(path)
        state.names[key]!.current = .absent
    }

    package func mkdir(_ path: String, mode: mode_t) throws(SystemError) {
        let key = Self.normalize(path)
        lock.lock()
        defer { lock.unlock() }
        try admit("mkdir", path: path, mutating: true)
        touch(key)
        try base.mkdir(path, mode: mode)
        state.names[key]!.current = .directory
    }

    package func tryLock(_ fd: Int32) throws(SystemError) -> Bool {
        try lock.withLock { () throws(SystemError) in try admit("flock", path: state.descriptors[fd]?.path, mutating: false) }
        return try base.tryLock(fd)
    }

    package func listDirectory(_ path: String) throws(SystemError) -> [String] {
        try lock.withLock { () throws(SystemError) in try admit("opendir", path: path, mutating: false) }
        return try base.listDirectory(path)
    }
}

// `state` is only read or written with `lock` held; `base` and the predicate are Sendable and
// never change. The compiler cannot see the first because the lock is a pthread mutex.
extension PowerLossSyscalls: @unchecked Sendable {}
