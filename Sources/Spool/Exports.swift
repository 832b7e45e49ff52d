// The lower layers' types that appear in Spool's public API, re-exported so that an app that
// embeds the engine imports one module, `Spool` (swift-nio's `Sources/NIO/Exports.swift` is the
// model). Each is named, rather than the whole module, so that the rest of SpoolLog and
// SpoolMatching stays out of an app's namespace.

// `SpoolEngineConfiguration.log` and its durability modes; `SpoolError.underlying`.
@_exported import struct SpoolLog.LogConfiguration
@_exported import enum SpoolLog.Durability
@_exported import struct SpoolLog.LogError

// `EngineClock.manual(_:)`: a clock that tests advance by hand, and its instants.
@_exported import class SpoolMatching.ManualMatchingClock
@_exported import struct SpoolMatching.MatchingInstant

// `Priority`, task queue settings and `describeTaskQueue`: which queue of a name.
@_exported import enum SpoolMatching.TaskQueueKind
