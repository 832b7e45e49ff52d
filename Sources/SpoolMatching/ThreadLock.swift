#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex for the paths that are allowed a lock: the queue-name registry, the
/// overflow of a full ring, the fairness scheduler, the pause gate and the poller registry.
/// Never taken on the add → poll → hand-off path of a queue whose rings have room.
///
/// It is pthread-based rather than `Synchronization.Mutex` because ThreadSanitizer on Linux
/// reports false races on the latter.
@usableFromInline
final class ThreadLock {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @usableFromInline
    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

// A pthread mutex is thread-safe by contract; the pointer never changes.
extension ThreadLock: @unchecked Sendable {}

/// Backs off inside a wait that is bounded by another thread's few instructions (a producer
/// between reserving a ring slot and publishing it, a poller between counting itself and
/// pushing its node): spin a little, then give the core away so the other thread can finish.
@inlinable
func backOff(_ spins: inout Int) {
    spins += 1
    if spins > 32 { sched_yield() }
}
