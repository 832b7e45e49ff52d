/// A value behind one copy-on-write reference: a copy of the box retains one object instead of
/// each string, array and dictionary of the value, and the first write to a shared box copies it.
///
/// The engine copies a run's state for every transition and hands copies to publish, visibility and
/// effects (callgrind counted ~35 copies of ``ExecutionState`` a workflow). The value is the header
/// of a `ManagedBuffer`, reached through its address: a class's stored property is checked for
/// exclusive access at run time on every read and write, ~13k instructions a workflow.
///
/// `@unchecked Sendable`: the value is `Sendable`, and it is written only through
/// ``value``'s mutable address, which makes the box unique first.
struct CopyOnWriteBox<Value: Sendable & Equatable>: @unchecked Sendable, Equatable {
    private final class Storage: ManagedBuffer<Value, Void> {
        static func make(_ value: Value) -> Storage {
            unsafeDowncast(Storage.create(minimumCapacity: 0) { _ in value }, to: Storage.self)
        }
    }

    private var storage: Storage

    init(_ value: Value) { storage = Storage.make(value) }

    /// Valid while `storage` holds the box.
    private var pointer: UnsafeMutablePointer<Value> { storage.withUnsafeMutablePointerToHeader { $0 } }

    /// The value: read in place; written in place once the box is not shared.
    var value: Value {
        unsafeAddress { UnsafePointer(pointer) }
        unsafeMutableAddress {
            if !isKnownUniquelyReferenced(&storage) { storage = Storage.make(pointer.pointee) }
            return pointer
        }
    }

    static func == (a: CopyOnWriteBox, b: CopyOnWriteBox) -> Bool { a.storage === b.storage || a.value == b.value }
}

/// Reflects the value, so that `dump` and `Mirror` show its fields rather than the box.
extension CopyOnWriteBox: CustomReflectable {
    var customMirror: Mirror { Mirror(reflecting: value) }
}
