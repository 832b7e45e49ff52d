#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a new detached pthread. For calls that block (waiting for a child process, a
/// call under test that may never return): on a task they would hold one of the cooperative
/// pool's threads, two on a 2-core machine, and starve every other test meanwhile.
public func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box)
    precondition(result == 0, "pthread_create failed: \(result)")
    pthread_detach(thread)
}

/// Runs the blocking `body` on its own thread (see ``startDetachedThread(_:)``) and returns
/// its result without holding a cooperative-pool thread while it runs.
public func onOwnThread<Value: Sendable>(_ body: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withUnsafeThrowingContinuation { continuation in
        startDetachedThread {
            continuation.resume(with: Result { try body() })
        }
    }
}
