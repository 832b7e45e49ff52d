/// An error an activity throws to report a specific ``Failure`` (a type for retry policies to
/// match, non-retryable, a next retry delay).
public struct ActivityFailure: Error, Sendable {
    /// The failure to report.
    public var failure: Failure
    /// An error that reports `failure`.
    public init(_ failure: Failure) { self.failure = failure }
}
