import Synchronization

/// A reference that is created on first use, lock-free: the first caller to install one wins
/// the compare-and-swap; a loser releases its copy and uses the winner's. Never replaced.
///
/// This is what keeps an idle queue small: partitions, priority lanes, waiter queues and the
/// control block (rate limit, pause gate, poller registry) cost one word each until used.
@usableFromInline
struct LazyObject<Object: AnyObject>: ~Copyable {
    @usableFromInline let bits = Atomic<UInt>(0)

    @inlinable init() {}

    deinit {
        let raw = bits.load(ordering: .acquiring)
        if raw != 0 { Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: raw)!).release() }
    }

    /// The object, or nil before the first ``loadOrCreate(_:)``.
    @inlinable @inline(__always)
    func load() -> Object? {
        let raw = bits.load(ordering: .acquiring)
        guard raw != 0 else { return nil }
        return Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: raw)!).takeUnretainedValue()
    }

    /// Runs `body` on the object without retaining it (the object lives as long as the owner of
    /// this reference, which the caller holds): nil before the first ``loadOrCreate(_:)``.
    /// Hot paths use this: a retain/release pair on an object shared by every producer and
    /// poller is two contended atomic operations on its reference count.
    @inlinable @inline(__always)
    func with<R>(_ body: (Object) -> R) -> R? {
        let raw = bits.load(ordering: .acquiring)
        guard raw != 0 else { return nil }
        return Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: raw)!)._withUnsafeGuaranteedRef(body)
    }

    /// Runs `body` on the object, creating it first if needed, without retaining it.
    @inlinable @inline(__always)
    func withCreated<R>(_ make: () -> Object, _ body: (Object) -> R) -> R {
        var raw = bits.load(ordering: .acquiring)
        if raw == 0 {
            _ = install(make())
            raw = bits.load(ordering: .acquiring)
        }
        return Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: raw)!)._withUnsafeGuaranteedRef(body)
    }

    @inlinable @inline(__always)
    func loadOrCreate(_ make: () -> Object) -> Object {
        if let object = load() { return object }
        return install(make())
    }

    @usableFromInline
    func install(_ object: Object) -> Object {
        let raw = UInt(bitPattern: Unmanaged.passRetained(object).toOpaque())
        let (exchanged, current) = bits.compareExchange(expected: 0, desired: raw, ordering: .acquiringAndReleasing)
        if exchanged { return object }
        Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: raw)!).release()
        return Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: current)!).takeUnretainedValue()
    }
}

// The reference is installed once by compare-and-swap and never replaced; the object is Sendable.
extension LazyObject: @unchecked Sendable where Object: Sendable {}
