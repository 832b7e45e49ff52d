import SpoolMatching

/// How urgent a workflow's or an activity's tasks are, and which fairness group they belong
/// to (Temporal's `temporal.api.common.v1.Priority`).
///
/// Every field has a zero value meaning "unset": an unset field takes the value of the
/// workflow's own priority (for an activity), and otherwise the default (priority key 3, no
/// fairness key, weight 1). Tasks of a queue are dispatched lowest priority key first; among
/// tasks of one priority key, fairness keys share dispatch in proportion to their weights.
///
/// ```swift
/// var request = StartWorkflowExecutionRequest(workflowID: "order-1", workflowType: "order", taskQueue: "orders")
/// request.priority = Priority(priorityKey: 1, fairnessKey: "tenant-a", fairnessWeight: 3)
/// ```
public struct Priority: Hashable, Sendable, CustomStringConvertible {
    /// The longest fairness key accepted, in UTF-8 bytes (Temporal's limit).
    public static let maximumFairnessKeyUTF8Length = 64
    /// The smallest and the largest fairness weight accepted (Temporal's range).
    public static let fairnessWeightRange: ClosedRange<Float> = 0.001...1000
    /// The priority key of a task whose priority states none.
    public static let defaultPriorityKey = TaskPriority.default

    /// 1 (most urgent) … 5; 0 means unset (the default, 3).
    public var priorityKey: Int
    /// The fairness group, such as a tenant id; empty means none. At most 64 UTF-8 bytes.
    public var fairnessKey: String
    /// The fairness group's share relative to other groups, 0.001…1000; 0 means unset (1).
    public var fairnessWeight: Float

    /// A priority; every field unset by default.
    public init(priorityKey: Int = 0, fairnessKey: String = "", fairnessWeight: Float = 0) {
        self.priorityKey = priorityKey
        self.fairnessKey = fairnessKey
        self.fairnessWeight = fairnessWeight
    }

    /// Whether every field is unset.
    public var isUnset: Bool { priorityKey == 0 && fairnessKey.isEmpty && fairnessWeight == 0 }

    /// The priority key tasks are dispatched with: ``priorityKey``, or 3 when unset.
    public var effectivePriorityKey: Int { priorityKey == 0 ? Self.defaultPriorityKey : priorityKey }

    /// The weight tasks are dispatched with: ``fairnessWeight``, or 1 when unset.
    public var effectiveFairnessWeight: Float { fairnessWeight == 0 ? 1 : fairnessWeight }

    /// This priority with each unset field taken from `base` (Temporal's field-wise merge: an
    /// activity's own priority over its workflow's).
    public func merged(over base: Priority) -> Priority {
        Priority(priorityKey: priorityKey != 0 ? priorityKey : base.priorityKey,
                 fairnessKey: !fairnessKey.isEmpty ? fairnessKey : base.fairnessKey,
                 fairnessWeight: fairnessWeight != 0 ? fairnessWeight : base.fairnessWeight)
    }

    /// Such as `priority 1, fairness key tenant-a weight 3.0`, or `unset`.
    public var description: String {
        if isUnset { return "unset" }
        var parts: [String] = []
        if priorityKey != 0 { parts.append("priority \(priorityKey)") }
        if !fairnessKey.isEmpty { parts.append("fairness key \(fairnessKey)") }
        if fairnessWeight != 0 { parts.append("weight \(fairnessWeight)") }
        return parts.joined(separator: ", ")
    }

    /// Why the priority is not acceptable, naming the field (`field` is how the caller names the
    /// priority itself, such as `priority` or `commands[2].priority`); nil if it is.
    public func problem(field: String = "priority") -> String? {
        if !(0...TaskPriority.lowest).contains(priorityKey) {
            return "\(field).priorityKey must be 1 (most urgent) … \(TaskPriority.lowest), or 0 for the default (got \(priorityKey))"
        }
        let keyLength = fairnessKey.utf8.count
        if keyLength > Self.maximumFairnessKeyUTF8Length {
            return "\(field).fairnessKey is \(keyLength) UTF-8 bytes; at most \(Self.maximumFairnessKeyUTF8Length) are allowed"
        }
        if fairnessWeight != 0 && !(fairnessWeight.isFinite && Self.fairnessWeightRange.contains(fairnessWeight)) {
            return "\(field).fairnessWeight must be \(Self.fairnessWeightRange.lowerBound) … \(Self.fairnessWeightRange.upperBound), "
                + "or 0 for the default (got \(fairnessWeight))"
        }
        return nil
    }

    /// The fairness key a task of this priority carries in the matcher, nil without a key. Weights
    /// are kept in thousandths, so 0.001 is the smallest share.
    var matchingFairnessKey: FairnessKey? {
        guard !fairnessKey.isEmpty else { return nil }
        let thousandths = UInt64((Double(effectiveFairnessWeight) * 1000).rounded())
        return FairnessKey(fairnessKey, weightThousandths: max(1, thousandths))
    }
}
