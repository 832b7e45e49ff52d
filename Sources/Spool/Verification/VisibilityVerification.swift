/// One disagreement found by ``SpoolEngine/verifyVisibility(directory:configuration:)``: a run
/// whose entries in the visibility index an open builds are not the ones its history gives.
public struct VisibilityFinding: Sendable, Equatable, CustomStringConvertible {
    /// The run's namespace.
    public var namespace: String
    /// The run.
    public var execution: WorkflowExecution
    /// What differs, in a sentence.
    public var message: String

    public var description: String { "run \(namespace)/\(execution.workflowID)/\(execution.runID): \(message)" }
}

/// What ``SpoolEngine/verifyVisibility(directory:configuration:)`` compared and found.
public struct VisibilityVerification: Sendable, Equatable {
    /// Runs the index of the opened engine holds (its closed-run table's included).
    public var indexedRuns = 0
    /// Runs whose history the log holds and that are visible (within their retention).
    public var runsFromHistory = 0
    /// Every run where the two differ.
    public var findings: [VisibilityFinding] = []

    /// Whether the index agrees with the histories.
    public var isClean: Bool { findings.isEmpty }
}

extension SpoolEngine {
    /// Checks that the visibility index a stopped engine's next open builds (from its checkpoint,
    /// closed-run table and the log after it) agrees with its histories: the index is rebuilt from
    /// every run's state replayed from the whole log, and the two are compared run by run (its
    /// WorkflowType, WorkflowId, TaskQueue, ExecutionStatus, StartTime, CloseTime, ExecutionTime
    /// and custom search attribute entries). Runs whose retention has ended are left out of both.
    ///
    /// Read-only: the engine is opened with `log.access = .readOnly` and closed again.
    /// - Parameter configuration: the engine's configuration (its retention); its log access is
    ///   made read-only.
    /// - Throws: ``SpoolError/Code/storage`` when the log cannot be read; what the open throws.
    /// Cost: one read of the log, each run's state rebuilt once, and an open that indexes every
    /// closed run (memory: every run's state).
    public static func verifyVisibility(directory: String, configuration: SpoolEngineConfiguration = SpoolEngineConfiguration())
        async throws(SpoolError) -> VisibilityVerification {
        let verifier = try replayForVerification(directory: directory)
        var configuration = configuration
        configuration.log.access = .readOnly
        configuration.firesTimersAutomatically = false
        let engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        let result = engine.compareVisibility(with: verifier.runs.compactMap { $0.value.broken ? nil : $0.value.state })
        try? await engine.close()
        return result
    }

    /// Compares the index with the one `states` (every run's state, rebuilt from its history)
    /// give, for the runs this engine shows (a run past its retention is in neither).
    func compareVisibility(with states: [ExecutionState]) -> VisibilityVerification {
        indexClosedRunTableIfNeeded()
        let indexed = visibility.snapshot
        var result = VisibilityVerification(indexedRuns: indexed.count)
        var seen = Set<ExecutionKey>()
        func finding(_ key: ExecutionKey, _ message: String) {
            result.findings.append(VisibilityFinding(namespace: key.namespace, execution: key.execution, message: message))
        }
        for state in states.sorted(by: { ($0.key.namespace, $0.key.workflowID, $0.key.runID) < ($1.key.namespace, $1.key.workflowID, $1.key.runID) }) {
            let key = state.key
            guard registry.visibleState(key) != nil else { continue }
            result.runsFromHistory += 1
            seen.insert(key)
            let expected = VisibilityIndex.entries(of: state).canonical
            guard let actual = indexed[key] else {
                finding(key, "its history shows it, the index does not hold it")
                continue
            }
            if actual != expected { finding(key, Self.differences(actual, expected)) }
        }
        for key in indexed.keys.sorted(by: { ($0.namespace, $0.workflowID, $0.runID) < ($1.namespace, $1.workflowID, $1.runID) })
            where !seen.contains(key) {
            finding(key, "the index holds it, the log holds no visible history of it")
        }
        return result
    }

    private static func differences(_ index: VisibilityIndex.Entries, _ history: VisibilityIndex.Entries) -> String {
        var parts: [String] = []
        if index.startTime != history.startTime { parts.append("StartTime \(index.startTime) in the index, \(history.startTime) in its history") }
        if index.status != history.status { parts.append("ExecutionStatus \(index.status) in the index, \(history.status) in its history") }
        if index.keywords != history.keywords {
            parts.append("keyword entries [\(index.keywords.map(describe).joined(separator: ", "))] in the index, [\(history.keywords.map(describe).joined(separator: ", "))] in its history")
        }
        if index.ranges != history.ranges {
            parts.append("ordered entries [\(index.ranges.map(describe).joined(separator: ", "))] in the index, [\(history.ranges.map(describe).joined(separator: ", "))] in its history")
        }
        return parts.joined(separator: "; ")
    }

    private static func describe(_ key: VisibilityIndex.KeywordKey) -> String {
        switch key {
        case .predefined(let p, let value): "\(p.rawValue)='\(value)'"
        case .custom(let name, let value): "\(name)='\(value)'"
        }
    }

    private static func describe(_ ref: VisibilityIndex.RangeRef) -> String {
        switch ref.key {
        case .predefined(let p): "\(p.rawValue)=\(ref.value)"
        case .customNumber(let name): "\(name)=\(Double(bitPattern: UInt64(bitPattern: ref.value < 0 ? Int64.min - ref.value - 1 : ref.value)))"
        case .customTime(let name): "\(name)=\(ref.value)"
        }
    }
}
