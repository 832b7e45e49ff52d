#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives

/// The size of the heap block holding `object` (its instance plus allocator rounding).
@usableFromInline
func mallocSize(of object: AnyObject) -> Int {
    mallocUsableSize(Unmanaged.passUnretained(object).toOpaque())
}

/// Heap bytes of a string's storage (0 for small strings stored inline).
func heapBytes(of string: String) -> Int {
    string.utf8.count > 15 ? string.utf8.count + 32 : 0
}

