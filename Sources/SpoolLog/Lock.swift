#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex.
///
/// The log's writer, syncer and caller threads hand work to one another under this lock;
/// it is off the per-record hot path (one acquisition per record to enqueue, one per
/// group commit to dequeue). It is pthread-based rather than `Synchronization.Mutex`
/// because ThreadSanitizer on Linux reports false races on the latter.
final class ThreadLock {
    fileprivate let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A value behind a pthread mutex: the API of `Synchronization.Mutex` (`withLock`), in a class so
/// that it can be stored and shared, for the layers above the log (the task store, the engine).
///
/// Not `Synchronization.Mutex`, because ThreadSanitizer on Linux does not see its futex-based
/// locking and reports false races on every value it guards, which would hide real ones in
/// `swift test --sanitize=thread`. Critical sections must be short and must not suspend.
package final class LockedValue<Value> {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    package init(_ value: Value) {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        self.value = value
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    package func withLock<Result, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

// The value is only reached through `withLock`, under the mutex; values go in and out as
// `sending`, as with `Synchronization.Mutex`, so no unsynchronised reference to them remains.
extension LockedValue: @unchecked Sendable {}

/// A condition variable used with a ``ThreadLock`` (monotonic clock for timed waits).
final class ThreadCondition {
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
    }

    /// Waits for a signal; call with `lock` held.
    func wait(_ lock: ThreadLock) { pthread_cond_wait(condition, lock.mutex) }

    /// Waits for a signal or until `deadline` (monotonic nanoseconds); call with `lock` held.
    func wait(_ lock: ThreadLock, untilMonotonicNanoseconds deadline: UInt64) {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        pthread_cond_timedwait(condition, lock.mutex, &time)
    }

    func signal() { pthread_cond_signal(condition) }
    func broadcast() { pthread_cond_broadcast(condition) }
}

// Both wrap pthread objects, which are thread-safe by contract; the pointers never change.
extension ThreadLock: @unchecked Sendable {}
extension ThreadCondition: @unchecked Sendable {}

/// Nanoseconds on the monotonic clock.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Milliseconds since the Unix epoch (stamped on batches; used for roll by age and retention).
@inline(__always)
func wallClockMilliseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
}

/// Starts a detached-by-join pthread named `name` running `body`; returns its handle for `pthread_join`.
func startThread(named name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }
    let context = Unmanaged.passRetained(Box(name, body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        nameCurrentThread(box.name)
        box.body()
        return nil
    }, context)
    precondition(result == 0, "pthread_create failed: \(result)")
    return thread
}

/// Names the calling thread (at most 15 bytes are kept), as `top -H`, `ps -L` and
/// `/proc/PID/task/*/comm` show it. Best effort: without `/proc` the thread keeps the
/// process's name. (Glibc's `pthread_setname_np` and the variadic `prctl` are not visible
/// from Swift; writing the thread's own `comm` file does the same.)
func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}
