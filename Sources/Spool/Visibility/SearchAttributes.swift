/// The type of a search attribute (Temporal's `temporal.api.enums.v1.IndexedValueType`, same
/// numbers): what values it holds and which query operators apply to it.
public enum IndexedValueType: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Words: `=` and `!=` match when every word of the value is among the attribute's words
    /// (case-insensitive), as a full-text index would.
    case text = 1
    /// One exact string: equality, order, `IN`, `STARTS_WITH`.
    case keyword = 2
    /// A 64-bit integer.
    case int = 3
    /// A 64-bit float.
    case double = 4
    /// `true` or `false`.
    case bool = 5
    /// A point in time (RFC 3339 in queries, or nanoseconds since the epoch).
    case datetime = 6
    /// A list of exact strings: `=` means "contains", `IN` means "contains any".
    case keywordList = 7

    /// Temporal's name for the type, such as `"Keyword"`.
    public var description: String {
        switch self {
        case .text: "Text"
        case .keyword: "Keyword"
        case .int: "Int"
        case .double: "Double"
        case .bool: "Bool"
        case .datetime: "Datetime"
        case .keywordList: "KeywordList"
        }
    }
}

/// One value of a search attribute, typed.
public enum SearchAttributeValue: Hashable, Sendable, CustomStringConvertible {
    /// A ``IndexedValueType/text`` value.
    case text(String)
    /// A ``IndexedValueType/keyword`` value.
    case keyword(String)
    /// An ``IndexedValueType/int`` value.
    case int(Int64)
    /// A ``IndexedValueType/double`` value.
    case double(Double)
    /// A ``IndexedValueType/bool`` value.
    case bool(Bool)
    /// A ``IndexedValueType/datetime`` value.
    case datetime(Timestamp)
    /// A ``IndexedValueType/keywordList`` value.
    case keywordList([String])

    /// The value's type.
    public var type: IndexedValueType {
        switch self {
        case .text: .text
        case .keyword: .keyword
        case .int: .int
        case .double: .double
        case .bool: .bool
        case .datetime: .datetime
        case .keywordList: .keywordList
        }
    }

    /// The value as a query would write it: strings quoted, datetimes in RFC 3339.
    public var description: String {
        switch self {
        case .text(let s), .keyword(let s): "'\(s)'"
        case .int(let n): String(n)
        case .double(let d): String(d)
        case .bool(let b): b ? "true" : "false"
        case .datetime(let t): "'\(RFC3339.format(t))'"
        case .keywordList(let list): "(" + list.map { "'\($0)'" }.joined(separator: ", ") + ")"
        }
    }
}

/// The search attributes Temporal defines for every workflow run, that queries may name without
/// registering them. Attributes Temporal has and Spool does not keep yet are refused by name
/// (``unsupported``) rather than read as missing, so that a query never quietly matches nothing.
enum PredefinedSearchAttribute: String, CaseIterable, Sendable {
    case workflowID = "WorkflowId"
    case runID = "RunId"
    case workflowType = "WorkflowType"
    case executionStatus = "ExecutionStatus"
    case startTime = "StartTime"
    case closeTime = "CloseTime"
    case executionTime = "ExecutionTime"
    case executionDuration = "ExecutionDuration"
    case taskQueue = "TaskQueue"
    case historyLength = "HistoryLength"
    case parentWorkflowID = "ParentWorkflowId"
    case parentRunID = "ParentRunId"
    case rootWorkflowID = "RootWorkflowId"
    case rootRunID = "RootRunId"

    var type: IndexedValueType {
        switch self {
        case .workflowID, .runID, .workflowType, .executionStatus, .taskQueue,
             .parentWorkflowID, .parentRunID, .rootWorkflowID, .rootRunID: .keyword
        case .startTime, .closeTime, .executionTime: .datetime
        case .executionDuration, .historyLength: .int
        }
    }

    /// Temporal's system attributes that Spool does not record yet, with the reason.
    static let unsupported: [String: String] = [
        "HistorySizeBytes": "Spool does not index history sizes yet",
        "StateTransitionCount": "Spool does not index state transition counts yet",
        "BuildIds": "Spool has no worker versioning",
        "BinaryChecksums": "Spool has no worker versioning",
        "TemporalChangeVersion": "Spool does not index SDK version markers",
        "TemporalScheduledStartTime": "Spool has no schedules",
        "TemporalScheduledById": "Spool has no schedules",
        "TemporalSchedulePaused": "Spool has no schedules",
        "BatcherUser": "Spool has no batch operations",
        "TemporalWorkerDeployment": "Spool has no worker deployments",
        "TemporalWorkerDeploymentVersion": "Spool has no worker deployments",
        "TemporalWorkflowVersioningBehavior": "Spool has no worker deployments",
        "TemporalPauseInfo": "Spool cannot pause workflows",
        "TemporalNamespaceDivision": "Spool has no namespace divisions",
    ]
}

extension WorkflowExecutionStatus {
    /// The status Temporal names `name` in queries (`ExecutionStatus = 'Running'`): the same
    /// names as ``description``.
    init?(queryName name: String) {
        guard let status = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = status
    }
}
