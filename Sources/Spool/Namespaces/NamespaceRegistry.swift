#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolPrimitives

/// The engine's namespaces: `default`, which always exists, and those registered, kept in the
/// data directory's `namespaces` file (replaced whole and atomically on each change; a CRC32C
/// guards it). Namespaces that runs in the history name but the file does not (stores written
/// before namespaces were registered) are adopted at open, in memory, with default settings.
final class NamespaceRegistry: Sendable {
    static let fileName = "namespaces"
    /// "SPNS", then the format version.
    static let magic: [UInt8] = Array("SPNS".utf8)
    static let formatVersion: UInt8 = 1

    private let namespaces = LockedValue<[String: NamespaceInfo]>([:])
    /// The namespaces' own retentions, kept beside them for the engine's lookups on every close.
    private let retentions = LockedValue<[String: Duration]>([:])
    private let directory: String
    private let syscalls: any Syscalls

    init(directory: String, syscalls: any Syscalls) {
        self.directory = directory
        self.syscalls = syscalls
    }

    var path: String { directory + "/" + Self.fileName }

    /// Reads the file (none: only `default`).
    /// - Throws: ``SpoolError/Code/corruptRecord`` when the file fails its checksum or does not
    ///   decode (nothing is guessed: a namespace's retention and search attributes are not data
    ///   to lose quietly); ``SpoolError/Code/io`` when it cannot be read.
    func load() throws(SpoolError) {
        var loaded = [defaultNamespace: Self.builtInDefault]
        if let bytes = try readFile() {
            for info in try Self.decode(bytes, path: path) { loaded[info.name] = info }
        }
        namespaces.withLock { $0 = loaded }
        publishRetentions(loaded)
    }

    /// How long closed runs are kept, per namespace, with `fallback` (the engine's
    /// `closedRunRetention`) for namespaces without a retention of their own.
    func retentionPolicy(fallback: Duration?) -> RetentionPolicy {
        RetentionPolicy(fallback: fallback, byNamespace: retentions.withLock { $0 })
    }

    private func publishRetentions(_ all: [String: NamespaceInfo]) {
        let own = all.values.reduce(into: [String: Duration]()) { result, info in
            if let retention = info.retention { result[info.name] = retention }
        }
        retentions.withLock { $0 = own }
    }

    /// Adds, in memory, namespaces that hold runs but were never registered.
    func adopt(_ names: Set<String>) {
        namespaces.withLock { all in
            for name in names where all[name] == nil {
                all[name] = NamespaceInfo(name: name, id: RunID.generate())
            }
        }
    }

    func info(_ name: String) -> NamespaceInfo? { namespaces.withLock { $0[name] } }

    func all() -> [NamespaceInfo] {
        namespaces.withLock { Array($0.values) }.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    /// Applies `change` to a copy of the namespaces, writes the file, then publishes the copy:
    /// a change whose write fails changes nothing. Changes are serialised by the lock (they are
    /// rare administrative calls; the write holds it for one atomic file replace).
    func update<T>(_ change: (inout [String: NamespaceInfo]) throws(SpoolError) -> T) throws(SpoolError) -> T {
        try namespaces.withLock { (all: inout [String: NamespaceInfo]) throws(SpoolError) -> T in
            var copy = all
            let result = try change(&copy)
            try writeFile(Self.encode(copy.values.filter { $0 != Self.builtInDefault }))
            all = copy
            publishRetentions(copy)
            return result
        }
    }

    /// `default` as it exists before anyone changes it.
    static let builtInDefault = NamespaceInfo(name: defaultNamespace, id: "00000000-0000-4000-8000-000000000000")

    // MARK: - The file

    /// Magic, version, count, then per namespace: name, id, description, owner email, data
    /// (count, sorted key/value strings), retention (optional duration), search attributes
    /// (count, sorted name and type byte), state byte; then the CRC32C (little endian) of all
    /// that.
    static func encode(_ infos: [NamespaceInfo]) -> [UInt8] {
        var w = BinaryWriter(capacity: 256)
        for byte in magic { w.byte(byte) }
        w.byte(formatVersion)
        let sorted = infos.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        w.count(sorted.count)
        for info in sorted {
            w.string(info.name); w.string(info.id); w.string(info.description); w.string(info.ownerEmail)
            w.count(info.data.count)
            for key in info.data.keys.sorted() {
                w.string(key)
                w.string(info.data[key] ?? "")
            }
            w.duration(info.retention)
            w.count(info.searchAttributes.count)
            for name in info.searchAttributes.keys.sorted() {
                w.string(name)
                w.byte(info.searchAttributes[name]?.rawValue ?? 0)
            }
            w.byte(info.state.rawValue)
        }
        var bytes = w.bytes
        withUnsafeBytes(of: CRC32C.checksum(bytes).littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    static func decode(_ bytes: [UInt8], path: String) throws(SpoolError) -> [NamespaceInfo] {
        guard bytes.count >= magic.count + 5, Array(bytes.prefix(magic.count)) == magic else {
            throw SpoolError(.corruptRecord, "\(path) is not a namespaces file (its first bytes are not SPNS)")
        }
        let body = Array(bytes.dropLast(4))
        let stored = bytes.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard CRC32C.checksum(body) == stored else {
            throw SpoolError(.corruptRecord, "\(path) fails its checksum: the registered namespaces cannot be read "
                             + "(restore the file from a backup; moving it aside leaves only the default namespace)")
        }
        var r = BinaryReader<SpoolError>(Array(body.dropFirst(magic.count)), context: path)
        do throws(SpoolError) {
            let version = try r.byte()
            guard version == formatVersion else { throw r.corrupt("format version \(version) is not 1 (a newer Spool wrote it)") }
            var infos: [NamespaceInfo] = []
            for _ in 0..<(try r.count()) {
                var info = NamespaceInfo(name: try r.string(), id: try r.string(), description: try r.string(), ownerEmail: try r.string())
                for _ in 0..<(try r.count()) {
                    let key = try r.string()
                    info.data[key] = try r.string()
                }
                info.retention = try r.optionalDuration()
                for _ in 0..<(try r.count()) {
                    let name = try r.string()
                    info.searchAttributes[name] = try r.enumeration(IndexedValueType.self)
                }
                info.state = try r.enumeration(NamespaceState.self)
                infos.append(info)
            }
            guard r.isAtEnd else { throw r.corrupt("bytes after the last namespace") }
            return infos
        } catch {
            throw SpoolError(.corruptRecord, "\(path) does not decode: \(error.message)")
        }
    }

    private func readFile() throws(SpoolError) -> [UInt8]? {
        try CheckpointStore(directory: directory, syscalls: syscalls).read(Self.fileName, what: "the namespaces file")
    }

    private func writeFile(_ bytes: [UInt8]) throws(SpoolError) {
        let store = CheckpointStore(directory: directory, syscalls: syscalls)
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(SpoolError) in try store.writeFile(buffer, name: Self.fileName) }
        }
        try result.get()
    }
}

/// How long closed runs are kept: a namespace's own retention, else the engine's default.
struct RetentionPolicy: Sendable {
    /// The engine's ``SpoolEngineConfiguration/closedRunRetention`` (nil: forever).
    var fallback: Duration?
    /// Namespaces with a retention of their own.
    var byNamespace: [String: Duration] = [:]

    func retention(for namespace: String) -> Duration? { byNamespace[namespace] ?? fallback }

    /// The longest any run is kept; nil when some are kept forever (a decision without the
    /// run's namespace can only drop what this would drop).
    var longest: Duration? { fallback.map { byNamespace.values.reduce($0, max) } }

    /// The shortest retention in use (for the retention clock's slack, which must suit it).
    var shortest: Duration? {
        let all = byNamespace.values + (fallback.map { [$0] } ?? [])
        return all.min()
    }
}
