#if canImport(Glibc)
import Glibc
#endif
@testable import SpoolLog

/// A log directory built from fuzz bytes: a few segment files (whose bytes are mostly valid
/// batches, mutated), their indexes, and checkpoint files, then `Log.open` and a read of every
/// record. Open must succeed or throw a `LogError`; reads must return or throw; nothing traps.
///
/// Layout of the input: chunks of `[kind: 1 byte][length: 2 bytes LE][bytes]`; kind picks the
/// file (segment 0 / 1000 `.log` or `.index`, `recovery-point`, `clean-shutdown`, `swap-manifest`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpenDirectory(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let directory = FuzzDirectory.path
    FuzzDirectory.clear(directory)
    let names = ["00000000000000000000.log", "00000000000000000000.index", "00000000000000001000.log",
                 "00000000000000001000.index", "recovery-point", "clean-shutdown", "swap-manifest",
                 "00000000000000000000.log.cleaned"]
    var contents: [String: [UInt8]] = [:]
    var i = 0
    while i + 3 <= size {
        let name = names[Int(data[i]) % names.count]
        let length = min(Int(data[i + 1]) | Int(data[i + 2]) << 8, size - i - 3)
        var bytes = Array(UnsafeBufferPointer(start: data + i + 3, count: length))
        if name.hasSuffix(".log") && data[i] & 0x80 != 0 {
            // Seed the segment with real batches so the fuzzer starts past the magic check.
            let base: UInt64 = name.hasPrefix("00000000000000001000") ? 1000 : 0
            bytes = RecordBatch.encode([bytes, Array(bytes.prefix(3))], baseOffset: base) + bytes
        }
        contents[name, default: []] += bytes
        i += 3 + length
    }
    for (name, bytes) in contents { FuzzDirectory.write(directory + "/" + name, bytes) }
    var configuration = LogConfiguration(durability: .none)
    configuration.segmentBytes = 64 << 10
    configuration.maxRecordBytes = 1024
    configuration.preallocationBytes = 0
    guard let log = try? Log.open(directory: directory, configuration: configuration) else { return 0 }
    var reader = log.reader(from: log.startOffset)
    while let record = try? reader.next() { _ = record }
    log.abandon()
    return 0
}

enum FuzzDirectory {
    static let path: String = {
        let path = "/tmp/spool-fuzz-open-\(getpid())"
        mkdir(path, 0o700)
        return path
    }()

    static func clear(_ directory: String) {
        guard let dir = opendir(directory) else { return }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        for name in names { unlink(directory + "/" + name) }
    }

    static func write(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}
