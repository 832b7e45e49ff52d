#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolMatching

/// Throws a usage error (exit status 64) naming `option` unless `value` is an acceptable id or
/// name: 1…1000 UTF-8 bytes without control characters (see `IdentifierText`).
package func checkIdentifier(_ value: String, option: String) throws {
    if let problem = IdentifierText.problem(in: value) {
        throw ValidationError("bad \(option) '\(IdentifierText.shown(value))': \(problem); ids and names are "
                              + "1…\(IdentifierText.maximumUTF8Length) UTF-8 bytes without control characters")
    }
}

/// The first command-line argument that is not valid UTF-8, as a message, or nil.
///
/// Swift decodes arguments lossily (each invalid byte becomes U+FFFD), so two names that
/// differ only in invalid bytes would reach the command as the same name: the raw bytes are
/// checked before parsing.
package func invalidUTF8Argument() -> String? {
    for index in 1..<Int(CommandLine.argc) {
        guard let pointer = CommandLine.unsafeArgv[index] else { continue }
        let bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: strlen(pointer)))
        if String(validating: bytes, as: UTF8.self) == nil {
            let shown = String(decoding: bytes, as: UTF8.self)
            return "argument \(index) ('\(IdentifierText.shown(shown))') is not valid UTF-8; names, ids and options must be UTF-8 text"
        }
    }
    return nil
}
