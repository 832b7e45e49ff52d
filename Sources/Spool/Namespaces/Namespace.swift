/// The state of a namespace (Temporal's `NamespaceState`, same numbers).
public enum NamespaceState: UInt8, Hashable, Sendable, CaseIterable {
    /// In use.
    case registered = 1
    /// Temporal's deprecated namespaces take no new workflows; Spool never deprecates one yet.
    case deprecated = 2
    /// Being deleted (Temporal); Spool never deletes one yet.
    case deleted = 3
}

/// A namespace: a name runs, task queues and search attributes live under, with its own
/// retention of closed runs (Temporal's `NamespaceInfo` and `NamespaceConfig`, the fields Spool
/// keeps).
public struct NamespaceInfo: Hashable, Sendable {
    /// The namespace's name, as calls give it.
    public var name: String
    /// A random UUID given at registration (Temporal's namespace id).
    public var id: String
    /// Free text.
    public var description: String
    /// Who to ask about it.
    public var ownerEmail: String
    /// Free key-value data.
    public var data: [String: String]
    /// How long closed runs are kept; nil: the engine's
    /// ``SpoolEngineConfiguration/closedRunRetention``.
    public var retention: Duration?
    /// The custom search attributes registered in this namespace, by name.
    public var searchAttributes: [String: IndexedValueType]
    /// Registered (the only state Spool uses yet).
    public var state: NamespaceState

    /// A namespace with these settings.
    public init(name: String, id: String, description: String = "", ownerEmail: String = "", data: [String: String] = [:],
                retention: Duration? = nil, searchAttributes: [String: IndexedValueType] = [:], state: NamespaceState = .registered) {
        self.name = name
        self.id = id
        self.description = description
        self.ownerEmail = ownerEmail
        self.data = data
        self.retention = retention
        self.searchAttributes = searchAttributes
        self.state = state
    }
}

/// What ``SpoolEngine/updateNamespace(_:_:)`` changes: each field that is not nil.
public struct NamespaceUpdate: Sendable {
    /// The new description.
    public var description: String?
    /// The new owner email.
    public var ownerEmail: String?
    /// Keys to set in the namespace's data (merged into it, as Temporal merges).
    public var data: [String: String]?
    /// The new retention of closed runs (`.some(nil)`: the engine's default).
    public var retention: Duration??

    /// An update of the given fields.
    public init(description: String? = nil, ownerEmail: String? = nil, data: [String: String]? = nil, retention: Duration?? = nil) {
        self.description = description
        self.ownerEmail = ownerEmail
        self.data = data
        self.retention = retention
    }
}
