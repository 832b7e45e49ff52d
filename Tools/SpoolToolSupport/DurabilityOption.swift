import ArgumentParser
import SpoolLog

/// `--durability sync|interval|none`.
package enum DurabilityOption: String, ExpressibleByArgument, CaseIterable {
    case sync
    case interval
    case none

    /// The log durability the option names (`interval`: 10 ms).
    package var durability: Durability {
        switch self {
        case .sync: .sync
        case .interval: .interval(milliseconds: 10)
        case .none: .none
        }
    }
}
