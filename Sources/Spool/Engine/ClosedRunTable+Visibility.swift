import SpoolLog

/// The visibility section of a closed-run table: the visibility index's postings of the table's
/// runs, sorted, so that an open loads them with a copy per posting instead of decoding every run
/// (issue 20, point 4). Written by every merge (``ClosedRunTable/merge(_:old:fresh:)``): postings
/// of kept runs are the old table's, renumbered (a merge keeps the runs' order, so they stay
/// sorted); those of fresh runs are derived from their states and merged in.
///
/// Layout (integers little endian; a row is a run's index in the table):
/// ```
/// "SPVI" | string count u32 | per string: byte count u32, UTF-8
/// namespace count u32 | per namespace: name u32 (a string), posting count u32, per posting:
///   kind u8 | attribute u32 | value u32 | entry count u32 | values: count × i64 | rows: count × u32
/// ```
/// Kinds: 0 every run (attribute and value 0xFFFFFFFF; values are start times), 1 a predefined
/// keyword (attribute: the string of its name, such as `WorkflowType`; value: the keyword's
/// string; values are start times), 2 a custom keyword (attribute: its name's string), 3 a
/// predefined ordered attribute (CloseTime, ExecutionTime; values are nanoseconds), 4 a custom
/// number (values as ``VisibilityIndex/orderedBits(_:)``), 5 a custom datetime (nanoseconds).
/// Entries are sorted by (value, row), each pair once, rows below the table's run count.
/// WorkflowId has no postings here: a run's workflow id is found through the table's own
/// workflow-hash index.
struct VisibilitySection {
    static let magic: [UInt8] = Array("SPVI".utf8)

    /// What a posting lists.
    enum PostingKey: Hashable {
        case all
        case keyword(VisibilityIndex.KeywordKey)
        case range(VisibilityIndex.RangeKey)
    }

    struct Namespace {
        var name: String
        var postings: [(key: PostingKey, postings: VisibilityIndex.Postings)]
    }

    var namespaces: [Namespace]

    /// The postings of `entries` (a run's, in `namespace`): every entry but WorkflowId's.
    static func postingKeys(_ entries: VisibilityIndex.Entries) -> [(PostingKey, Int64)] {
        var keys: [(PostingKey, Int64)] = [(.all, entries.startTime), (.keyword(.predefined(.executionStatus, entries.status.description)), entries.startTime)]
        for key in entries.keywords {
            if case .predefined(.workflowID, _) = key { continue }
            keys.append((.keyword(key), entries.startTime))
        }
        for ref in entries.ranges { keys.append((.range(ref.key), ref.value)) }
        return keys
    }

    // MARK: Building for a merge

    /// The section of the table `order` describes: the postings of `old`'s section renumbered
    /// (or, when `old` has none, of its kept runs decoded), merged with those of the fresh runs.
    /// - Throws: ``SpoolError/Code/corruptRecord`` when a run that must be decoded does not decode.
    static func merged(order: [ClosedRunTable.Source], old: ClosedRunTable?, fresh: [ClosedRunTable.Entry]) throws(SpoolError) -> VisibilitySection {
        let oldSection = try old?.visibilitySection()
        var newRowOfOld = [Int32](repeating: -1, count: oldSection == nil ? 0 : old!.count)
        var building: [String: [PostingKey: (values: [Int64], rows: [UInt32])]] = [:]
        func add(_ namespace: String, _ entries: VisibilityIndex.Entries, _ row: Int) {
            for (key, value) in postingKeys(entries) {
                building[namespace, default: [:]][key, default: ([], [])].values.append(value)
                building[namespace]![key]!.rows.append(UInt32(row))
            }
        }
        for (row, source) in order.enumerated() {
            switch source {
            case .kept(let index):
                if oldSection != nil {
                    newRowOfOld[index] = Int32(row)
                } else {
                    let state = try old!.run(at: index).state
                    add(state.key.namespace, VisibilityIndex.entries(of: state), row)
                }
            case .fresh(let index):
                let entry = fresh[index]
                if let visibility = entry.visibility {
                    add(visibility.namespace, visibility.entries, row)
                } else {
                    var r = BinaryReader<SpoolError>(entry.data, context: "a closed run for the visibility section")
                    let state = try EngineCheckpoint.Run.decode(from: &r, layout: .current).state
                    add(state.key.namespace, VisibilityIndex.entries(of: state), row)
                }
            }
        }
        var result: [String: [PostingKey: VisibilityIndex.Postings]] = [:]
        for (namespace, postings) in building {
            for (key, pairs) in postings {
                result[namespace, default: [:]][key] = VisibilityIndex.Postings.sorted(values: pairs.values, ordinals: pairs.rows)
            }
        }
        building = [:]
        if let oldSection {
            for namespace in oldSection.namespaces {
                for (key, postings) in namespace.postings {
                    var kept = VisibilityIndex.Postings()
                    kept.reserve(postings.count)
                    for i in 0..<postings.count {
                        let row = newRowOfOld[Int(postings.ordinals[i])]
                        if row >= 0 { kept.appendUnsorted(postings.values[i], UInt32(row)) }
                    }
                    guard kept.count > 0 else { continue }
                    if let fresh = result[namespace.name]?[key] {
                        result[namespace.name]![key] = VisibilityIndex.Postings.merging(kept, fresh)
                    } else {
                        result[namespace.name, default: [:]][key] = kept
                    }
                }
            }
        }
        // In a fixed order, so that the same runs give the same bytes.
        return VisibilitySection(namespaces: result.keys.sorted().map { name in
            Namespace(name: name, postings: result[name]!.sorted { $0.key.sortKey < $1.key.sortKey }.map { ($0.key, $0.value) })
        })
    }

    // MARK: Encoding

    func encoded() -> [UInt8] {
        var strings: [String] = []
        var ids: [String: UInt32] = [:]
        func id(_ s: String) -> UInt32 {
            if let id = ids[s] { return id }
            ids[s] = UInt32(strings.count)
            strings.append(s)
            return UInt32(strings.count - 1)
        }
        var body = BinaryWriter(capacity: 64 + namespaces.reduce(0) { $0 + $1.postings.reduce(0) { $0 + 17 + $1.postings.count * 12 } })
        body.fixed32(UInt32(namespaces.count))
        for namespace in namespaces {
            body.fixed32(id(namespace.name))
            body.fixed32(UInt32(namespace.postings.count))
            for (key, postings) in namespace.postings {
                let none = UInt32.max
                switch key {
                case .all: body.byte(0); body.fixed32(none); body.fixed32(none)
                case .keyword(.predefined(let p, let value)): body.byte(1); body.fixed32(id(p.rawValue)); body.fixed32(id(value))
                case .keyword(.custom(let name, let value)): body.byte(2); body.fixed32(id(name)); body.fixed32(id(value))
                case .range(.predefined(let p)): body.byte(3); body.fixed32(id(p.rawValue)); body.fixed32(none)
                case .range(.customNumber(let name)): body.byte(4); body.fixed32(id(name)); body.fixed32(none)
                case .range(.customTime(let name)): body.byte(5); body.fixed32(id(name)); body.fixed32(none)
                }
                body.fixed32(UInt32(postings.count))
                for value in postings.values { body.fixed64(UInt64(bitPattern: value)) }
                for row in postings.ordinals { body.fixed32(row) }
            }
        }
        var w = BinaryWriter(capacity: body.byteCount + strings.reduce(16) { $0 + 4 + $1.utf8.count })
        w.raw(Self.magic)
        w.fixed32(UInt32(strings.count))
        for s in strings { w.fixed32PrefixedString(s) }
        w.raw(body)
        return w.bytes
    }

    /// Reads a section of a table of `rowCount` runs, checking its bounds, kinds, names and the
    /// postings' order and rows.
    /// - Throws: ``SpoolError/Code/corruptRecord`` saying what is wrong.
    static func decode(_ bytes: UnsafeRawBufferPointer, rowCount: Int, table: String) throws(SpoolError) -> VisibilitySection {
        var at = 0
        func fail(_ what: String) -> SpoolError { SpoolError(.corruptRecord, "closed-run table \(table), visibility section: \(what)") }
        func u32() throws(SpoolError) -> UInt32 {
            guard at + 4 <= bytes.count else { throw fail("ends early") }
            defer { at += 4 }
            return bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian
        }
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else { throw fail("bad magic") }
        at = 4
        var strings: [String] = []
        let stringCount = Int(try u32())
        guard stringCount <= bytes.count else { throw fail("string count \(stringCount)") }
        strings.reserveCapacity(stringCount)
        for _ in 0..<stringCount {
            let length = Int(try u32())
            guard at + length <= bytes.count else { throw fail("a string runs past the end") }
            strings.append(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + length)]), as: UTF8.self))
            at += length
        }
        func string() throws(SpoolError) -> String {
            let id = Int(try u32())
            guard id < strings.count else { throw fail("string \(id) of \(strings.count)") }
            return strings[id]
        }
        func predefined() throws(SpoolError) -> PredefinedSearchAttribute {
            let name = try string()
            guard let p = PredefinedSearchAttribute(rawValue: name) else { throw fail("unknown attribute \(name)") }
            return p
        }
        var namespaces: [Namespace] = []
        let namespaceCount = Int(try u32())
        for _ in 0..<namespaceCount {
            let name = try string()
            let postingCount = Int(try u32())
            var postings: [(key: PostingKey, postings: VisibilityIndex.Postings)] = []
            for _ in 0..<postingCount {
                guard at < bytes.count else { throw fail("ends early") }
                let kind = bytes[at]
                at += 1
                let key: PostingKey
                switch kind {
                case 0: _ = try u32(); _ = try u32(); key = .all
                case 1: let p = try predefined(); key = .keyword(.predefined(p, try string()))
                case 2: let n = try string(); key = .keyword(.custom(n, try string()))
                case 3: let p = try predefined(); _ = try u32(); key = .range(.predefined(p))
                case 4: let n = try string(); _ = try u32(); key = .range(.customNumber(n))
                case 5: let n = try string(); _ = try u32(); key = .range(.customTime(n))
                default: throw fail("unknown posting kind \(kind)")
                }
                let count = Int(try u32())
                guard count <= rowCount, at + count * 12 <= bytes.count else { throw fail("a posting of \(count) entries does not fit") }
                // Room for the runs an open indexes on top (open runs, runs closed since the
                // table) without doubling every large posting at the first append.
                let capacity = count + count / 16 + 8
                let values = [Int64](unsafeUninitializedCapacity: capacity) { buffer, initialized in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + count * 8)]))
                    initialized = count
                }
                at += count * 8
                let rows = [UInt32](unsafeUninitializedCapacity: capacity) { buffer, initialized in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + count * 4)]))
                    initialized = count
                }
                at += count * 4
                let postings1 = try Self.checked(values, rows, rowCount: rowCount, fail)
                postings.append((key, postings1))
            }
            namespaces.append(Namespace(name: name, postings: postings))
        }
        guard at == bytes.count else { throw fail("\(bytes.count - at) bytes after the postings") }
        return VisibilitySection(namespaces: namespaces)
    }
}

extension VisibilitySection {
    /// The postings of `values` and `rows` as stored (little endian), checked: every row below
    /// `rowCount` (an ordinal past the table would be read out of bounds) and the pairs strictly
    /// increasing (binary searches rely on it).
    static func checked(_ values: [Int64], _ rows: [UInt32], rowCount: Int, _ fail: (String) -> SpoolError) throws(SpoolError) -> VisibilityIndex.Postings {
        var values = values, rows = rows
        if 1.littleEndian != 1 {
            for i in values.indices { values[i] = Int64(littleEndian: values[i]) }
            for i in rows.indices { rows[i] = UInt32(littleEndian: rows[i]) }
        }
        let bad: Int? = values.withUnsafeBufferPointer { v in
            rows.withUnsafeBufferPointer { r in
                let limit = UInt32(clamping: rowCount)
                for i in 0..<r.count {
                    if r[i] >= limit { return i }
                    if i > 0 && (v[i] < v[i - 1] || (v[i] == v[i - 1] && r[i] <= r[i - 1])) { return i }
                }
                return nil
            }
        }
        if let i = bad {
            throw Int(rows[i]) >= rowCount ? fail("row \(rows[i]) of \(rowCount)") : fail("a posting is out of order at entry \(i)")
        }
        return VisibilityIndex.Postings(values: values, ordinals: rows)
    }
}

extension VisibilitySection.PostingKey {
    /// The order postings are written in.
    var sortKey: String {
        switch self {
        case .all: "0"
        case .keyword(.predefined(let p, let value)): "1\u{0}\(p.rawValue)\u{0}\(value)"
        case .keyword(.custom(let name, let value)): "2\u{0}\(name)\u{0}\(value)"
        case .range(.predefined(let p)): "3\u{0}\(p.rawValue)"
        case .range(.customNumber(let name)): "4\u{0}\(name)"
        case .range(.customTime(let name)): "5\u{0}\(name)"
        }
    }
}

extension ClosedRunTable {
    /// The table's visibility section, decoded; nil for a table written without one (before
    /// the section existed: its runs are indexed by decoding them).
    /// - Throws: ``SpoolError/Code/corruptRecord``.
    func visibilitySection() throws(SpoolError) -> VisibilitySection? {
        guard let range = visibilityRange else { return nil }
        return try VisibilitySection.decode(UnsafeRawBufferPointer(rebasing: storage[range]), rowCount: count, table: name)
    }

    /// The key of the run at `index` (the first fields of its state), without decoding the rest.
    func key(at index: Int) throws(SpoolError) -> ExecutionKey {
        let position = Int(field(index, 24)) + 4
        let length = dataLength(at: index)
        // The key is the state's first three strings: a prefix of the run's bytes is enough.
        var r = BinaryReader<SpoolError>(Array(storage[position..<(position + min(length, 512))]), context: "closed-run table \(name), run \(index)")
        do {
            return ExecutionKey(namespace: try r.string(), workflowID: try r.string(), runID: try r.string())
        } catch {
            var r = BinaryReader<SpoolError>(data(at: index), context: "closed-run table \(name), run \(index)")
            return ExecutionKey(namespace: try r.string(), workflowID: try r.string(), runID: try r.string())
        }
    }
}

extension VisibilityIndex.Postings {
    init(values: [Int64], ordinals: [UInt32]) {
        self.init()
        self.replace(values: values, ordinals: ordinals)
    }

    /// `values` and `ordinals` (pairs) sorted by (value, ordinal).
    static func sorted(values: [Int64], ordinals: [UInt32]) -> Self {
        var postings = Self(values: values, ordinals: ordinals)
        postings.markUnsorted()
        postings.sort()
        return postings
    }

    /// The entries of two sorted postings with no pair in common, sorted.
    static func merging(_ a: Self, _ b: Self) -> Self {
        var values: [Int64] = [], ordinals: [UInt32] = []
        values.reserveCapacity(a.count + b.count)
        ordinals.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && (a.values[i], a.ordinals[i]) < (b.values[j], b.ordinals[j])) {
                values.append(a.values[i]); ordinals.append(a.ordinals[i]); i += 1
            } else {
                values.append(b.values[j]); ordinals.append(b.ordinals[j]); j += 1
            }
        }
        return Self(values: values, ordinals: ordinals)
    }
}
