#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives

/// The baseline for `spool bench log`: the same record bytes, written by one thread with plain
/// `write(2)` and (optionally) one `fdatasync` per batch — whatever accumulated while the previous
/// write and sync ran. No Spool code: no headers, checksums, compression, index or pipelining.
final class RawBaselineWriter {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeup = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var buffer: [UInt8] = []
    private var waiters: [UnsafeContinuation<Void, Never>] = []
    private var stopping = false
    private var thread = pthread_t()
    private let fd: Int32
    private let sync: Bool
    private(set) var fdatasyncs = 0
    /// Time spent in `fdatasync`, in nanoseconds (sync mode).
    private(set) var fdatasyncNanoseconds: UInt64 = 0
    private(set) var writes = 0

    init(path: String, sync: Bool) throws(ValidationErrorMessage) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationErrorMessage("cannot create \(path): \(String(cString: strerror(errno)))") }
        self.sync = sync
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wakeup, nil)
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let writer = Unmanaged<RawBaselineWriter>.fromOpaque(raw!).takeRetainedValue()
            writer.run()
            return nil
        }, context)
    }

    deinit {
        pthread_cond_destroy(wakeup)
        pthread_mutex_destroy(mutex)
        wakeup.deallocate()
        mutex.deallocate()
    }

    /// Returns once `record` is written (and synced, in sync mode).
    func append(_ record: [UInt8]) async {
        await withUnsafeContinuation { continuation in
            pthread_mutex_lock(mutex)
            buffer.append(contentsOf: record)
            waiters.append(continuation)
            pthread_cond_signal(wakeup)
            pthread_mutex_unlock(mutex)
        }
    }

    private func run() {
        var batch: [UInt8] = []
        var released: [UnsafeContinuation<Void, Never>] = []
        while true {
            pthread_mutex_lock(mutex)
            while waiters.isEmpty && !stopping { pthread_cond_wait(wakeup, mutex) }
            if waiters.isEmpty && stopping {
                pthread_mutex_unlock(mutex)
                return
            }
            swap(&batch, &buffer)
            swap(&released, &waiters)
            pthread_mutex_unlock(mutex)
            batch.withUnsafeBytes { bytes in
                var done = 0
                while done < bytes.count {
                    let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
                    if n < 0 && errno == EINTR { continue }
                    precondition(n > 0, "baseline write failed: errno \(errno)")  // the bench's own scratch file
                    done += n
                }
            }
            writes += 1
            if sync {
                let started = monotonicNanoseconds()
                fdatasync(fd)
                fdatasyncNanoseconds += monotonicNanoseconds() - started
                fdatasyncs += 1
            }
            for waiter in released { waiter.resume() }
            batch.removeAll(keepingCapacity: true)
            released.removeAll(keepingCapacity: true)
        }
    }

    /// Stops the writer thread (after the last batch) and closes the file.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_signal(wakeup)
        pthread_mutex_unlock(mutex)
        pthread_join(thread, nil)
        close(fd)
    }
}

// All mutable state is guarded by `mutex`; `fdatasyncs` and `writes` are read only after `stop()` joined the thread.
extension RawBaselineWriter: @unchecked Sendable {}
