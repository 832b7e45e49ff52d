#if canImport(Glibc)
import Glibc
#endif
import DequeModule
import SpoolPrimitives

/// A task executor with one OS thread of its own: `bench dispatch --threads` runs every producer
/// and poller on one, so that the run has more runnable threads than cores, as a server with a
/// thread per connection or a worker process with many OS threads does. On Swift's default
/// executor the bench's tasks share one thread per core, and a thread holding a lock is never
/// preempted by another thread that wants it; with a thread per task it is, and a lock then makes
/// every other thread that wants it wait for the preempted one to be scheduled again.
///
/// Jobs run in the order they were enqueued. A job enqueued from another thread wakes this one
/// (a condition variable); `shutdown()` lets the thread finish what it was given and joins it.
final class ThreadTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let lock = ThreadLock()
    private let wakeup = ThreadCondition()
    // Guarded by `lock`.
    private var jobs = Deque<UnownedJob>()
    private var stopping = false
    private var thread = pthread_t()

    init(name: String) {
        thread = startThread(named: name) { [self] in run() }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        lock.lock()
        let wasEmpty = jobs.isEmpty
        jobs.append(job)
        lock.unlock()
        if wasEmpty { wakeup.signal() }
    }

    /// Runs the jobs left, then ends the thread and waits for it.
    func shutdown() {
        lock.lock()
        stopping = true
        lock.unlock()
        wakeup.signal()
        pthread_join(thread, nil)
    }

    private func run() {
        let executor = asUnownedTaskExecutor()
        while true {
            lock.lock()
            while jobs.isEmpty && !stopping { wakeup.wait(lock) }
            guard let job = jobs.popFirst() else {
                lock.unlock()
                return
            }
            lock.unlock()
            job.runSynchronously(on: executor)
        }
    }
}
