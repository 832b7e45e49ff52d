import CSpoolShims
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a thread of its own and returns its result: for blocking work (a rate-limited
/// compaction sleeps between batches) that must not hold one of the few threads of Swift's
/// cooperative pool.
package func onOwnThread<T: Sendable>(named name: String, _ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        let thread = startThread(named: name) { continuation.resume(returning: body()) }
        pthread_detach(thread)
    }
}

/// Starts a pthread named `name` running `body`; returns its handle for `pthread_join`.
///
/// - Precondition: the thread could be created (a failure means the process is out of threads
///   or memory, which Spool treats as a programmer or environment error, not bad input).
package func startThread(named name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }
    let context = Unmanaged.passRetained(Box(name, body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
        nameCurrentThread(box.name)
        box.body()
        return nil
    }, context)
    precondition(result == 0, "pthread_create failed: \(result)")
    return thread
}

/// Names the calling thread as `top -H`, `ps -L` and `/proc/PID/task/*/comm` show it; at most
/// 15 bytes are kept. Best effort: a name the kernel refuses leaves the process's name.
package func nameCurrentThread(_ name: String) {
    _ = cspool_set_current_thread_name(name)
}

/// `flock(2)` on `fd` with `operation` (`LOCK_EX`, `LOCK_SH`, `LOCK_NB`, `LOCK_UN`): 0 or -1 with
/// `errno` set. flock (unlike fcntl locks) is held per open file description, so a second open of
/// the same file in the same process is refused too.
package func fileLock(_ fd: Int32, _ operation: Int32) -> Int32 {
    cspool_flock(fd, operation)
}

/// The size of the heap block at `pointer` (its contents plus the allocator's rounding).
@inlinable
package func mallocUsableSize(_ pointer: UnsafeMutableRawPointer?) -> Int {
    Int(cspool_malloc_usable_size(pointer))
}
