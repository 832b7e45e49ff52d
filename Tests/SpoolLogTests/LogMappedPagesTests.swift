#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// `Log.reader(from:releasingPagesBehind:)`: a plain scan leaves the sealed segments' pages
/// counted in the process's resident size; a releasing one does not, and every record still
/// reads back as written.
@Suite struct LogMappedPagesTests {
    @Test func releasedPagesLeaveTheResidentSizeAndReadBackUnchanged() async throws {
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration(.none))
        var written: [[UInt8]] = []
        while log.segmentBaseOffsets.count < 5 {
            let record = payload(written.count, size: 1000)
            #expect(try await log.append(record) == UInt64(written.count))
            written.append(record)
        }
        let sealed = log.segmentLock.withLock { log.segments.dropLast().compactMap(\.mapping) }
        try #require(sealed.count >= 4)

        func readAll(releasing: Bool = false) throws -> [[UInt8]] {
            var reader = log.reader(from: 0, releasingPagesBehind: releasing)
            var records: [[UInt8]] = []
            while let record = try reader.next() { records.append(record.payload) }
            return records
        }
        #expect(try readAll() == written)
        for mapping in sealed {
            #expect(residentBytes(of: mapping) > 0, "a scan maps the sealed segment's pages")
        }

        #expect(try readAll(releasing: true) == written)
        for mapping in sealed {
            #expect(residentBytes(of: mapping) == 0, "released pages no longer count for the process")
        }
        #expect(try readAll() == written)
        for (offset, record) in written.enumerated() {
            #expect(try log.read(at: UInt64(offset)) == record)
        }
        try log.close()
    }
}

/// The `Rss:` of the mapping that starts at `mapping`'s address, from /proc/self/smaps, in bytes.
private func residentBytes(of mapping: MappedFile) -> Int {
    guard let base = mapping.bytes.baseAddress else { return 0 }
    let start = String(UInt(bitPattern: base), radix: 16)
    let text = procText("/proc/self/smaps")
    var inMapping = false
    for line in text.split(separator: "\n") {
        if let dash = line.firstIndex(of: "-"), line[..<dash].allSatisfy(\.isHexDigit) {
            inMapping = line[..<dash].drop { $0 == "0" } == start.drop { $0 == "0" }
        } else if inMapping, line.hasPrefix("Rss:") {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
    }
    Issue.record("no mapping at 0x\(start) in /proc/self/smaps")
    return -1
}

/// A /proc file, read to its end (its size is reported as 0).
private func procText(_ path: String) -> String {
    let fd = open(path, O_RDONLY)
    precondition(fd >= 0, "cannot open \(path)")
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}
