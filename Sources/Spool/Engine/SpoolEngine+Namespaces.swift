/// Namespaces and their custom search attributes (Temporal's namespace calls and
/// OperatorService's search-attribute calls).
extension SpoolEngine {
    /// Registers a namespace. Its retention applies to its closed runs (nil: the engine's
    /// ``SpoolEngineConfiguration/closedRunRetention``): they leave the engine that long after
    /// they closed, and `compactHistory` drops their records.
    /// - Throws: ``SpoolError/Code/namespaceAlreadyExists``; ``SpoolError/Code/invalidArgument``
    ///   for a bad name or a retention that is not positive; ``SpoolError/Code/io`` when the
    ///   namespaces file cannot be written (nothing changed); ``SpoolError/Code/storage`` on a
    ///   read-only engine.
    @discardableResult
    public func registerNamespace(_ name: String, description: String = "", ownerEmail: String = "",
                                  data: [String: String] = [:], retention: Duration? = nil) throws(SpoolError) -> NamespaceInfo {
        try checkOpen()
        try checkWritable()
        try Self.validateNamespaceName(name)
        try Self.validateRetention(retention, namespace: name)
        return try namespaceRegistry.update { all throws(SpoolError) in
            guard all[name] == nil else {
                throw SpoolError(.namespaceAlreadyExists, "namespace '\(name)' is already registered", namespace: name)
            }
            let info = NamespaceInfo(name: name, id: RunID.generate(), description: description, ownerEmail: ownerEmail,
                                     data: data, retention: retention)
            all[name] = info
            return info
        }
    }

    /// The namespace `name`.
    /// - Throws: ``SpoolError/Code/namespaceNotFound``.
    public func describeNamespace(_ name: String) throws(SpoolError) -> NamespaceInfo {
        guard let info = namespaceRegistry.info(name) else { throw Self.namespaceNotFound(name) }
        return info
    }

    /// Every namespace, by name (`default` included).
    public func listNamespaces() -> [NamespaceInfo] { namespaceRegistry.all() }

    /// Changes a namespace's description, owner, data or retention. A new retention applies at
    /// once to the namespace's closed runs, those closed before included.
    /// - Throws: ``SpoolError/Code/namespaceNotFound``; ``SpoolError/Code/invalidArgument`` for a
    ///   retention that is not positive; ``SpoolError/Code/io``; ``SpoolError/Code/storage`` on a
    ///   read-only engine.
    @discardableResult
    public func updateNamespace(_ name: String, _ update: NamespaceUpdate) throws(SpoolError) -> NamespaceInfo {
        try checkOpen()
        try checkWritable()
        if let retention = update.retention { try Self.validateRetention(retention, namespace: name) }
        let updated = try namespaceRegistry.update { all throws(SpoolError) in
            guard var info = all[name] else { throw Self.namespaceNotFound(name) }
            if let description = update.description { info.description = description }
            if let ownerEmail = update.ownerEmail { info.ownerEmail = ownerEmail }
            if let data = update.data { info.data.merge(data) { $1 } }
            if let retention = update.retention { info.retention = retention }
            all[name] = info
            return info
        }
        if update.retention != nil, let retention = closedRunRetention(for: name) {
            // Closed runs in memory get a timer for the new retention (one set for a longer
            // retention would fire too late; one for a shorter looks again when it fires).
            for handle in registry.allHandles() where handle.key.namespace == name {
                if let closed = handle.state.closeTime { timers.schedule(.retention, for: handle.key, at: closed.advanced(by: retention)) }
            }
        }
        return updated
    }

    /// Registers custom search attributes in a namespace (Temporal's `AddSearchAttributes`).
    /// Adding one that exists with the same type does nothing, as in Temporal.
    /// - Throws: ``SpoolError/Code/alreadyExists`` for a name registered with another type or
    ///   taken by a predefined attribute; ``SpoolError/Code/invalidArgument`` for a bad name;
    ///   ``SpoolError/Code/namespaceNotFound``; ``SpoolError/Code/io``.
    public func addSearchAttributes(namespace: String = defaultNamespace, _ attributes: [String: IndexedValueType]) throws(SpoolError) {
        try checkOpen()
        try checkWritable()
        for name in attributes.keys.sorted() { try Self.validateSearchAttributeName(name, namespace: namespace) }
        try namespaceRegistry.update { all throws(SpoolError) in
            guard var info = all[namespace] else { throw Self.namespaceNotFound(namespace) }
            for (name, type) in attributes.sorted(by: { $0.key < $1.key }) {
                if let existing = info.searchAttributes[name], existing != type {
                    throw SpoolError(.alreadyExists, "search attribute \(name) is already registered as \(existing), not \(type)",
                                     namespace: namespace)
                }
                info.searchAttributes[name] = type
            }
            all[namespace] = info
        }
    }

    /// Unregisters custom search attributes (Temporal's `RemoveSearchAttributes`): queries can no
    /// longer name them; values runs already hold stay in their histories.
    /// - Throws: ``SpoolError/Code/notFound`` naming an attribute that is not registered (nothing
    ///   is removed); ``SpoolError/Code/namespaceNotFound``; ``SpoolError/Code/io``.
    public func removeSearchAttributes(namespace: String = defaultNamespace, _ names: [String]) throws(SpoolError) {
        try checkOpen()
        try checkWritable()
        try namespaceRegistry.update { all throws(SpoolError) in
            guard var info = all[namespace] else { throw Self.namespaceNotFound(namespace) }
            for name in names {
                guard info.searchAttributes.removeValue(forKey: name) != nil else {
                    throw SpoolError(.notFound, "search attribute \(name) is not registered", namespace: namespace)
                }
            }
            all[namespace] = info
        }
    }

    /// The custom search attributes of a namespace, by name (predefined ones are not listed:
    /// see ``VisibilityQuery``).
    /// - Throws: ``SpoolError/Code/namespaceNotFound``.
    public func searchAttributes(namespace: String = defaultNamespace) throws(SpoolError) -> [String: IndexedValueType] {
        try describeNamespace(namespace).searchAttributes
    }

    /// How long closed runs are kept now, per namespace (a namespace's own retention, else
    /// ``SpoolEngineConfiguration/closedRunRetention``).
    var retentionPolicy: RetentionPolicy { namespaceRegistry.retentionPolicy(fallback: configuration.closedRunRetention) }

    /// How long a closed run of `namespace` is kept; nil: forever.
    func closedRunRetention(for namespace: String) -> Duration? { retentionPolicy.retention(for: namespace) }

    // MARK: - Checks

    /// What is wrong with `attributes` as values of `namespace`'s search attributes, as Temporal's
    /// frontend checks them: every name registered (not a predefined one), every value of its
    /// registered type (Temporal's encoded nil or `[]` stand for "remove" and pass); nil when
    /// nothing is.
    func searchAttributeProblem(_ attributes: [String: Payload], namespace: String) -> String? {
        guard !attributes.isEmpty else { return nil }
        let registered = namespaceRegistry.info(namespace)?.searchAttributes ?? [:]
        for name in attributes.keys.sorted() {
            guard let value = attributes[name] else { continue }
            if PredefinedSearchAttribute(rawValue: name) != nil || PredefinedSearchAttribute.unsupported[name] != nil {
                return "search attribute \(name) is one of Temporal's predefined attributes and cannot be set"
            }
            guard let type = registered[name] else {
                return "search attribute \(name) is not defined in namespace '\(namespace)' (register it first)"
            }
            if value.isTemporalNilOrEmptyList { continue }
            if SearchAttributeValue(decoding: value, as: type) == nil {
                return "invalid value for search attribute \(name) of type \(type): "
                    + String(decoding: value.data.prefix(64), as: UTF8.self)
            }
        }
        return nil
    }

    /// Fails unless `namespace` is registered (or adopted from the history). `default` always is.
    func checkNamespace(_ namespace: String) throws(SpoolError) {
        if namespace == defaultNamespace { return }
        guard namespaceRegistry.info(namespace) != nil else { throw Self.namespaceNotFound(namespace) }
    }

    static func namespaceNotFound(_ name: String) -> SpoolError {
        SpoolError(.namespaceNotFound, "namespace '\(name)' is not registered", namespace: name)
    }

    private func checkWritable() throws(SpoolError) {
        if configuration.isReadOnly {
            throw SpoolError(.storage, "the engine is open read-only: namespaces cannot be changed")
        }
    }

    /// 1–255 characters: letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit.
    static func validateNamespaceName(_ name: String) throws(SpoolError) {
        let bytes = Array(name.utf8)
        func alphanumeric(_ b: UInt8) -> Bool {
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
        }
        guard (1...255).contains(bytes.count), alphanumeric(bytes.first!), alphanumeric(bytes.last!),
              bytes.allSatisfy({ alphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }) else {
            throw SpoolError(.invalidArgument, "namespace name '\(name)' must be 1 to 255 letters, digits, '-', '_' or '.', "
                             + "starting and ending with a letter or digit", namespace: name)
        }
    }

    static func validateRetention(_ retention: Duration?, namespace: String) throws(SpoolError) {
        if let retention, retention <= .zero {
            throw SpoolError(.invalidArgument, "the retention must be positive (or unset for the engine's default)", namespace: namespace)
        }
    }

    /// Letters, digits and `_`, starting with a letter, at most 64; not a predefined attribute
    /// and not Temporal's reserved `Temporal…` prefix.
    static func validateSearchAttributeName(_ name: String, namespace: String) throws(SpoolError) {
        let bytes = Array(name.utf8)
        func letter(_ b: UInt8) -> Bool { (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) }
        guard (1...64).contains(bytes.count), letter(bytes[0]),
              bytes.allSatisfy({ letter($0) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") }) else {
            throw SpoolError(.invalidArgument, "search attribute name '\(name)' must be 1 to 64 letters, digits or '_', "
                             + "starting with a letter", namespace: namespace)
        }
        if PredefinedSearchAttribute(rawValue: name) != nil || PredefinedSearchAttribute.unsupported[name] != nil {
            throw SpoolError(.alreadyExists, "search attribute \(name) is one of Temporal's predefined attributes", namespace: namespace)
        }
        if name.hasPrefix("Temporal") {
            throw SpoolError(.invalidArgument, "search attribute names starting with 'Temporal' are reserved", namespace: namespace)
        }
    }
}
