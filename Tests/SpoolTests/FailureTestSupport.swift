import Spool

// Shortcuts for tests that look at one field of a failure's kind.
extension Failure {
    /// The timeout type of a timeout failure.
    var timeoutType: TimeoutType? {
        if case .timeout(let info)? = info { return info.timeoutType }
        return nil
    }

    /// The last heartbeat details of a timeout failure.
    var lastHeartbeatDetails: Payloads? {
        if case .timeout(let info)? = info { return info.lastHeartbeatDetails }
        return nil
    }

    /// The type of an application failure.
    var type: String { applicationType }
}
