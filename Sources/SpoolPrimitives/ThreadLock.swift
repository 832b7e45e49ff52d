#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex: the one lock of every Spool layer, for the paths that are allowed one (the
/// log's hand-offs between its caller, writer and syncer threads; the matching core's registries
/// and overflows; the task store's and the engine's short critical sections).
///
/// It is pthread-based rather than `Synchronization.Mutex` because ThreadSanitizer on Linux does
/// not see the latter's futex-based locking and reports false races on everything it guards,
/// which would hide real ones in `swift test --sanitize=thread`. Critical sections must be short
/// and must not suspend.
public final class ThreadLock {
    @usableFromInline
    let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inlinable
    public func lock() { pthread_mutex_lock(mutex) }

    @inlinable
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` with the lock held.
    @inlinable
    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A condition variable used with a ``ThreadLock``; timed waits use the monotonic clock.
@usableFromInline package final class ThreadCondition {
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    package init() {
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
    package func wait(_ lock: ThreadLock) { pthread_cond_wait(condition, lock.mutex) }

    /// Waits for a signal or until `deadline` (``monotonicNanoseconds()``); call with `lock` held.
    package func wait(_ lock: ThreadLock, untilMonotonicNanoseconds deadline: UInt64) {
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        pthread_cond_timedwait(condition, lock.mutex, &time)
    }

    package func signal() { pthread_cond_signal(condition) }
    package func broadcast() { pthread_cond_broadcast(condition) }
}

// Both wrap pthread objects, which are thread-safe by contract; the pointers never change.
extension ThreadLock: @unchecked Sendable {}
extension ThreadCondition: @unchecked Sendable {}

/// A value behind a pthread mutex: the API of `Synchronization.Mutex` (`withLock`), shareable
/// like a class (copies share the value and its lock; swift-nio's `NIOLockedValueBox` is the
/// model).
///
/// The value and the mutex live in one allocation (a `ManagedBuffer`), reached through their
/// addresses: a class with its own lock object took three allocations, and a class's stored
/// property is checked for exclusive access at run time on every `withLock` (the lock already
/// makes it exclusive). `withLock` is `@inlinable`, so that a caller in another module gets it
/// specialized for its value type instead of a generic call.
public struct LockedValue<Value> {
    @usableFromInline
    final class Storage: ManagedBuffer<Value, pthread_mutex_t> {
        deinit {
            _ = withUnsafeMutablePointerToElements { pthread_mutex_destroy($0) }
        }
    }

    @usableFromInline let storage: Storage

    public init(_ value: Value) {
        storage = unsafeDowncast(Storage.create(minimumCapacity: 1) { _ in value }, to: Storage.self)
        _ = storage.withUnsafeMutablePointerToElements { pthread_mutex_init($0, nil) }
    }

    /// Runs `body` with exclusive access to the value.
    @inlinable
    public func withLock<Result, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        // The addresses stay valid while `storage` lives: kept alive to the end of the call.
        defer { withExtendedLifetime(storage) {} }
        let mutex = storage.withUnsafeMutablePointerToElements { $0 }
        let value = storage.withUnsafeMutablePointerToHeader { $0 }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}

// The value is only reached through `withLock`, under the lock; values go in and out as
// `sending`, as with `Synchronization.Mutex`, so no unsynchronised reference to them remains.
extension LockedValue: @unchecked Sendable {}

/// Backs off inside a wait that is bounded by another thread's few instructions (a producer
/// between reserving a ring slot and publishing it, a poller between counting itself and
/// pushing its node): spin a little, then give the core away so the other thread can finish.
@inlinable
public func backOff(_ spins: inout Int) {
    spins += 1
    if spins > 32 { sched_yield() }
}
