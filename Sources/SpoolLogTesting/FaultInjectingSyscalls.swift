#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolPrimitives

/// A ``Syscalls`` layer for tests: it forwards every call to another layer (the real
/// ``SystemCalls`` by default), records it, and fails the calls a test chose.
///
/// ```swift
/// let faults = FaultInjectingSyscalls()
/// faults.fail(.fdatasync, errno: EIO, path: .suffix(".log"), occurrence: .only(3))  // the third fdatasync of a segment
/// faults.shortenWrites(to: 10, occurrence: .only(1))                                // the next pwrite writes 10 bytes
/// faults.crash(atStep: faults.stepCount + 5)                                        // "the process stops" at the 5th mutation from now
/// var configuration = LogConfiguration()
/// configuration.syscalls = faults
/// ```
///
/// - **Faults** (``inject(_:on:path:occurrence:)``) match calls by ``Operation``, by path
///   (``PathFilter``; calls on a file descriptor are matched by the path it was opened with)
///   and by how many matching calls came before (``Occurrence``). A fault either fails the call
///   with an `errno` (nothing is forwarded) or makes a `pwrite` short (only the first bytes are
///   written and their count returned, as the kernel may do).
/// - **Crash points** (``crash(atStep:)``): every mutating call (`pwrite`, `fdatasync`, `fsync`,
///   `ftruncate`, `rename`, `unlink`, `mkdir`, `open` with `O_CREAT`) is numbered from 1 as a
///   *step*. From the chosen step on, every call except `close` fails with `EIO` and nothing
///   reaches the disk, which is what the directory looks like when the process stops right
///   before that step (the page cache keeps everything written earlier, as after a `kill -9`).
///   The test then calls ``Log/abandon()`` and reopens the directory with real system calls.
/// - **Hooks** (``beforeCall(_:path:occurrence:_:)``) run test code on the calling thread before
///   a chosen call, to hold it until the test has arranged what should happen meanwhile.
/// - **The trace** (``trace``) lists every call in order with its path, step number and the
///   error the caller saw, so a test can count `fdatasync`s or find at which step a compaction
///   installs its `swap-manifest`.
///
/// Thread-safe: the log calls it from its writer, syncer and caller threads at once. The lock is
/// never held while a call is forwarded.
package final class FaultInjectingSyscalls: Syscalls {
    /// The kinds of call, one per requirement of ``Syscalls``.
    package enum Operation: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case open, close, pwrite, pread, fdatasync, fsync, ftruncate, fileSize, rename, unlink, mkdir, tryLock, listDirectory

        package var description: String { rawValue }
    }

    /// Which paths a fault applies to. Calls on a file descriptor use the path it was opened with;
    /// a descriptor this layer did not open has no path and matches only ``any``.
    package struct PathFilter: Sendable {
        fileprivate let matches: @Sendable (String?) -> Bool

        /// Every call, with or without a path.
        package static let any = PathFilter { _ in true }

        /// Paths ending with `suffix`, such as `".log"`, `".index"` or `"/swap-manifest.tmp"`.
        package static func suffix(_ suffix: String) -> PathFilter {
            PathFilter { $0?.hasSuffix(suffix) ?? false }
        }

        /// Paths containing `text`.
        package static func containing(_ text: String) -> PathFilter {
            PathFilter { path in path.map { $0.contains(text) } ?? false }
        }

        /// Paths for which `predicate` returns true.
        package static func matching(_ predicate: @escaping @Sendable (String) -> Bool) -> PathFilter {
            PathFilter { $0.map(predicate) ?? false }
        }

        private init(_ matches: @escaping @Sendable (String?) -> Bool) { self.matches = matches }
    }

    /// Which of the calls matching a fault's operation and path it applies to, counted from 1.
    package enum Occurrence: Sendable, Equatable {
        /// Every matching call.
        case always
        /// Only the `n`th matching call.
        case only(Int)
        /// The `n`th matching call and every later one.
        case from(Int)

        fileprivate func includes(_ n: Int) -> Bool {
            switch self {
            case .always: true
            case .only(let k): n == k
            case .from(let k): n >= k
            }
        }
    }

    /// What a fault does to a call it applies to.
    package enum Effect: Sendable, Equatable {
        /// The call is not forwarded and throws `SystemError(errno: errno)`.
        case fail(errno: Int32)
        /// A `pwrite` writes only its first `bytes` bytes (fewer when the buffer is smaller) and
        /// returns that count. `bytes == 0` writes nothing and returns 0.
        case shortWrite(bytes: Int)
        /// The call is forwarded and does its work, then throws `SystemError(errno: errno)`: an
        /// `fdatasync` that made the data durable but reported an error, or a process that stopped
        /// right after the call, before it could act on its result (the caller sees a failure
        /// for something that is on disk).
        case failAfterForwarding(errno: Int32)
    }

    /// One call, as recorded in the ``trace``.
    package struct Call: Sendable, Equatable, CustomStringConvertible {
        /// What was called.
        package var operation: Operation
        /// The path passed, or the one the file descriptor was opened with; `nil` when unknown.
        package var path: String?
        /// The target of a `rename`.
        package var destination: String?
        /// The call's number among mutating calls (from 1), or `nil` for a call that changes nothing on disk.
        package var step: Int?
        /// The fault applied to the call, if any (a crash shows as `.fail(errno: EIO)`).
        package var injected: Effect?
        /// The `errno` the caller got, injected or real; `nil` when the call succeeded.
        package var errno: Int32?

        /// Whether the call could change what is on disk.
        package var isMutating: Bool { step != nil }

        package var description: String {
            var text = step.map { "#\($0) " } ?? ""
            text += operation.rawValue
            if let path { text += "(\(path)" + (destination.map { " -> \($0)" } ?? "") + ")" }
            if let injected { text += " [injected \(injected)]" }
            if let errno { text += " errno \(errno)" }
            return text
        }
    }

    private struct Fault {
        var operation: Operation
        var path: PathFilter
        var occurrence: Occurrence
        var effect: Effect
        var matchingCalls = 0
    }

    private struct Hook {
        var operation: Operation
        var path: PathFilter
        var occurrence: Occurrence
        var action: @Sendable () -> Void
        var matchingCalls = 0
    }

    private struct State {
        var faults: [Fault] = []
        var hooks: [Hook] = []
        var pathsByDescriptor: [Int32: String] = [:]
        var trace: [Call] = []
        var steps = 0
        var crashStep: Int?
        var crashed = false
    }

    private let base: any Syscalls
    // Guards `state`. A pthread lock rather than `Synchronization.Mutex`, so that tests using this
    // layer stay clean under ThreadSanitizer (see ``ThreadLock``).
    private let lock = ThreadLock()
    private var state = State()

    /// A layer that forwards to `base` until told otherwise.
    package init(wrapping base: any Syscalls = SystemCalls()) {
        self.base = base
    }

    // MARK: Configuring faults

    /// Applies `effect` to the calls of `operation` whose path passes `path`, as chosen by `occurrence`.
    /// When several faults apply to one call, the one added first wins; every fault counts the call.
    ///
    /// - Precondition: ``Effect/shortWrite(bytes:)`` only with ``Operation/pwrite``, and a
    ///   non-negative count; occurrence numbers are at least 1.
    package func inject(_ effect: Effect, on operation: Operation, path: PathFilter = .any, occurrence: Occurrence = .always) {
        if case .shortWrite(let bytes) = effect {
            precondition(operation == .pwrite && bytes >= 0, "a short write applies to pwrite only, with a count >= 0")
        }
        switch occurrence {
        case .always: break
        case .only(let n), .from(let n): precondition(n >= 1, "occurrences are counted from 1")
        }
        lock.withLock { state.faults.append(Fault(operation: operation, path: path, occurrence: occurrence, effect: effect)) }
    }

    /// Makes the chosen calls of `operation` throw `SystemError` with `errno` without forwarding them.
    package func fail(_ operation: Operation, errno: Int32 = EIO, path: PathFilter = .any, occurrence: Occurrence = .always) {
        inject(.fail(errno: errno), on: operation, path: path, occurrence: occurrence)
    }

    /// Lets the chosen calls of `operation` do their work, then makes them throw `SystemError` with
    /// `errno`: the caller fails on something that reached the disk (see ``Effect/failAfterForwarding(errno:)``).
    package func failAfterForwarding(_ operation: Operation, errno: Int32 = EIO, path: PathFilter = .any,
                                     occurrence: Occurrence = .always) {
        inject(.failAfterForwarding(errno: errno), on: operation, path: path, occurrence: occurrence)
    }

    /// Makes the chosen `pwrite` calls write only their first `bytes` bytes.
    package func shortenWrites(to bytes: Int, path: PathFilter = .any, occurrence: Occurrence = .always) {
        inject(.shortWrite(bytes: bytes), on: .pwrite, path: path, occurrence: occurrence)
    }

    /// Runs `action` on the calling thread before each chosen call of `operation` goes on (to be
    /// forwarded, or failed by a fault), without holding any lock of this layer: a test uses it to
    /// hold a call until it has arranged what should happen meanwhile. Not run once crashed.
    package func beforeCall(_ operation: Operation, path: PathFilter = .any, occurrence: Occurrence = .always,
                            _ action: @escaping @Sendable () -> Void) {
        lock.withLock { state.hooks.append(Hook(operation: operation, path: path, occurrence: occurrence, action: action)) }
    }

    /// From mutating step `step` (counted from 1 since this layer was created) on, every call but
    /// `close` throws `EIO`. A step already passed takes effect at the next call.
    package func crash(atStep step: Int) {
        precondition(step >= 1, "steps are counted from 1")
        lock.withLock {
            state.crashStep = step
            if state.steps >= step { state.crashed = true }
        }
    }

    /// Removes every fault, hook and the crash point (and lifts a crash that happened); the trace is kept.
    package func removeAllFaults() {
        lock.withLock {
            state.faults = []
            state.hooks = []
            state.crashStep = nil
            state.crashed = false
        }
    }

    // MARK: Inspecting

    /// Every call so far, in the order they were made.
    package var trace: [Call] { lock.withLock { state.trace } }

    /// Mutating calls made so far; the next one is step `stepCount + 1`.
    package var stepCount: Int { lock.withLock { state.steps } }

    /// Whether the crash point was reached.
    package var hasCrashed: Bool { lock.withLock { state.crashed } }

    /// The recorded calls of `operation` whose path passes `path`.
    package func calls(_ operation: Operation, path: PathFilter = .any) -> [Call] {
        trace.filter { $0.operation == operation && path.matches($0.path) }
    }

    /// Forgets the recorded calls (the step count goes on).
    package func clearTrace() {
        lock.withLock { state.trace = [] }
    }

    // MARK: Interception

    /// Numbers and records the call and picks the fault for it. Returns the trace position to
    /// complete, the effect to apply and the hooks to run first.
    private func begin(_ operation: Operation, path: String?, destination: String? = nil,
                       mutating: Bool) -> (index: Int, effect: Effect?, hooks: [@Sendable () -> Void]) {
        lock.withLock {
            var step: Int?
            if mutating {
                state.steps += 1
                step = state.steps
                if let crashStep = state.crashStep, state.steps >= crashStep { state.crashed = true }
            }
            var chosen: Effect?
            var hooks: [@Sendable () -> Void] = []
            if state.crashed && operation != .close {
                chosen = .fail(errno: EIO)
            } else {
                for i in state.hooks.indices where state.hooks[i].operation == operation && state.hooks[i].path.matches(path) {
                    state.hooks[i].matchingCalls += 1
                    if state.hooks[i].occurrence.includes(state.hooks[i].matchingCalls) { hooks.append(state.hooks[i].action) }
                }
                for i in state.faults.indices where state.faults[i].operation == operation && state.faults[i].path.matches(path) {
                    state.faults[i].matchingCalls += 1
                    if chosen == nil && state.faults[i].occurrence.includes(state.faults[i].matchingCalls) {
                        chosen = state.faults[i].effect
                    }
                }
            }
            var errno: Int32?
            if case .fail(let code) = chosen { errno = code }
            state.trace.append(Call(operation: operation, path: path, destination: destination, step: step,
                                    injected: chosen, errno: errno))
            return (state.trace.count - 1, chosen, hooks)
        }
    }

    /// Records the `errno` of a forwarded call that failed.
    private func complete(_ index: Int, _ error: SystemError) {
        lock.withLock {
            // `clearTrace()` may have run meanwhile.
            if index < state.trace.count { state.trace[index].errno = error.errno }
        }
    }

    private func path(of fd: Int32) -> String? {
        lock.withLock { state.pathsByDescriptor[fd] }
    }

    /// Runs `body` (the forwarded call) unless a fault fails it; records a real failure.
    private func intercept<T>(_ operation: Operation, path: String?, destination: String? = nil, mutating: Bool,
                              _ body: (Effect?) throws(SystemError) -> T) throws(SystemError) -> T {
        let (index, effect, hooks) = begin(operation, path: path, destination: destination, mutating: mutating)
        for hook in hooks { hook() }
        if case .fail(let code) = effect {
            throw SystemError(call: operation.rawValue, errno: code, path: path)
        }
        do throws(SystemError) {
            let result = try body(effect)
            if case .failAfterForwarding(let code) = effect {
                throw SystemError(call: operation.rawValue, errno: code, path: path)
            }
            return result
        } catch {
            complete(index, error)
            throw error
        }
    }

    // MARK: Syscalls

    package func open(_ path: String, flags: Int32, mode: mode_t) throws(SystemError) -> Int32 {
        let fd = try intercept(.open, path: path, mutating: flags & O_CREAT != 0) { _ throws(SystemError) in
            try base.open(path, flags: flags, mode: mode)
        }
        lock.withLock { state.pathsByDescriptor[fd] = path }
        return fd
    }

    package func close(_ fd: Int32) {
        // Forget the descriptor before the kernel can hand its number out again.
        let path = lock.withLock { state.pathsByDescriptor.removeValue(forKey: fd) }
        for hook in begin(.close, path: path, mutating: false).hooks { hook() }
        base.close(fd)
    }

    package func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at position: Int64) throws(SystemError) -> Int {
        try intercept(.pwrite, path: path(of: fd), mutating: true) { effect throws(SystemError) in
            if case .shortWrite(let bytes) = effect {
                let count = min(bytes, buffer.count)
                if count == 0 { return 0 }
                return try base.pwrite(fd, UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: position)
            }
            return try base.pwrite(fd, buffer, at: position)
        }
    }

    package func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at position: Int64) throws(SystemError) -> Int {
        try intercept(.pread, path: path(of: fd), mutating: false) { _ throws(SystemError) in
            try base.pread(fd, into: buffer, at: position)
        }
    }

    package func fdatasync(_ fd: Int32) throws(SystemError) {
        try intercept(.fdatasync, path: path(of: fd), mutating: true) { _ throws(SystemError) in try base.fdatasync(fd) }
    }

    package func fsync(_ fd: Int32) throws(SystemError) {
        try intercept(.fsync, path: path(of: fd), mutating: true) { _ throws(SystemError) in try base.fsync(fd) }
    }

    package func ftruncate(_ fd: Int32, to size: Int64) throws(SystemError) {
        try intercept(.ftruncate, path: path(of: fd), mutating: true) { _ throws(SystemError) in try base.ftruncate(fd, to: size) }
    }

    package func fileSize(_ fd: Int32) throws(SystemError) -> Int64 {
        try intercept(.fileSize, path: path(of: fd), mutating: false) { _ throws(SystemError) in try base.fileSize(fd) }
    }

    package func rename(_ from: String, to: String) throws(SystemError) {
        try intercept(.rename, path: from, destination: to, mutating: true) { _ throws(SystemError) in try base.rename(from, to: to) }
    }

    package func unlink(_ path: String) throws(SystemError) {
        try intercept(.unlink, path: path, mutating: true) { _ throws(SystemError) in try base.unlink(path) }
    }

    package func mkdir(_ path: String, mode: mode_t) throws(SystemError) {
        try intercept(.mkdir, path: path, mutating: true) { _ throws(SystemError) in try base.mkdir(path, mode: mode) }
    }

    package func tryLock(_ fd: Int32) throws(SystemError) -> Bool {
        try intercept(.tryLock, path: path(of: fd), mutating: false) { _ throws(SystemError) in try base.tryLock(fd) }
    }

    package func listDirectory(_ path: String) throws(SystemError) -> [String] {
        try intercept(.listDirectory, path: path, mutating: false) { _ throws(SystemError) in try base.listDirectory(path) }
    }
}

// `state` is only read or written with `lock` held, and `base` is itself Sendable and never
// changes; the compiler cannot see the first because the lock is a pthread mutex.
extension FaultInjectingSyscalls: @unchecked Sendable {}
