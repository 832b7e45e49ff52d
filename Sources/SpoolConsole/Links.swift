import Spool

/// The console's URLs, built in one place so that every link is percent-encoded the same way.
enum Links {
    static func workflows(_ namespace: String, query: String = "", pageSize: Int? = nil, page: Int? = nil, token: [UInt8]? = nil) -> String {
        var parameters: [(String, String)] = []
        if !query.isEmpty { parameters.append(("query", query)) }
        if let pageSize { parameters.append(("size", String(pageSize))) }
        if let page, page > 1 { parameters.append(("page", String(page))) }
        if let token { parameters.append(("token", hex(token))) }
        return "/namespaces/\(percentEncode(namespace))/workflows" + queryString(parameters)
    }

    static func workflow(_ namespace: String, _ execution: WorkflowExecution) -> String {
        "/namespaces/\(percentEncode(namespace))/workflows/\(percentEncode(execution.workflowID))"
            + (execution.runID.isEmpty ? "" : "/\(percentEncode(execution.runID))")
    }

    static func taskQueues(_ namespace: String) -> String { "/namespaces/\(percentEncode(namespace))/task-queues" }

    static func taskQueue(_ namespace: String, _ name: String, _ kind: TaskQueueKind) -> String {
        "/namespaces/\(percentEncode(namespace))/task-queues/\(kindName(kind))/\(percentEncode(name))"
    }

    static let namespaces = "/namespaces"

    static func kindName(_ kind: TaskQueueKind) -> String { kind == .workflow ? "workflow" : "activity" }

    static func queryString(_ parameters: [(String, String)]) -> String {
        parameters.isEmpty ? "" : "?" + parameters.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }

    /// Hex digits as bytes; nil when `text` is not an even number of hex digits.
    static func unhex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ d: UInt8) -> UInt8? {
            switch d {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }
}
