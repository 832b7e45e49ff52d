import Foundation
import Spool
import Synchronization

/// Add and dispatch rates of every task queue over the last minutes, kept by the console: the
/// engine counts adds and dispatches since it opened but keeps no history of them, so the
/// console samples ``SpoolEngine/describeTaskQueue(namespace:taskQueue:kind:fairnessKeys:)`` every
/// ``interval`` into a ring of ``capacity`` samples per queue (5 s × 60: the last 5 minutes).
final class RateHistory: Sendable {
    struct Key: Hashable, Sendable {
        var namespace: String
        var name: String
        var kind: TaskQueueKind
    }

    /// A sample: when, and the counters then.
    struct Sample: Equatable, Sendable {
        var seconds: Double
        var added: Int
        var dispatched: Int
    }

    /// Rates between consecutive samples.
    struct Point: Equatable, Sendable {
        var seconds: Double
        var addRate: Double
        var dispatchRate: Double
    }

    let interval: Duration
    let capacity: Int
    private let rings = Mutex<[Key: [Sample]]>([:])

    init(interval: Duration = .seconds(5), capacity: Int = 60) {
        self.interval = interval
        self.capacity = capacity
    }

    func record(_ key: Key, _ sample: Sample) {
        rings.withLock { rings in
            var ring = rings[key] ?? []
            // A reopened engine restarts its counters: the older samples no longer compare.
            if let last = ring.last, sample.added < last.added || sample.dispatched < last.dispatched { ring.removeAll() }
            ring.append(sample)
            if ring.count > capacity { ring.removeFirst(ring.count - capacity) }
            rings[key] = ring
        }
    }

    /// The rates over the sampled minutes, oldest first.
    func points(_ key: Key) -> [Point] {
        let ring = rings.withLock { $0[key] ?? [] }
        return Self.points(ring)
    }

    static func points(_ ring: [Sample]) -> [Point] {
        guard ring.count >= 2 else { return [] }
        return zip(ring, ring.dropFirst()).map { a, b in
            let dt = max(b.seconds - a.seconds, 1e-3)
            return Point(seconds: b.seconds, addRate: Double(b.added - a.added) / dt, dispatchRate: Double(b.dispatched - a.dispatched) / dt)
        }
    }

    /// Samples every queue of every namespace once.
    func sample(_ engine: SpoolEngine) {
        let now = Date().timeIntervalSince1970
        for namespace in engine.listNamespaces() {
            guard let queues = try? engine.taskQueueNames(namespace: namespace.name) else { continue }
            for queue in queues {
                guard let info = try? engine.describeTaskQueue(namespace: namespace.name, taskQueue: queue.name, kind: queue.kind) else { continue }
                record(Key(namespace: namespace.name, name: queue.name, kind: queue.kind),
                       Sample(seconds: now, added: info.added, dispatched: info.dispatched))
            }
        }
    }

    /// Samples every ``interval`` until the task is cancelled.
    func run(_ engine: SpoolEngine) async {
        while !Task.isCancelled {
            sample(engine)
            try? await Task.sleep(for: interval)
        }
    }

    /// A small chart of the add (solid) and dispatch (dashed) rates, as inline SVG.
    static func chart(_ points: [Point], width: Int = 240, height: Int = 48, window: Double) -> HTML {
        guard let last = points.last else {
            return "<svg class=\"chart empty\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"no samples yet\"><text x=\"4\" y=\"\(height / 2 + 4)\">sampling…</text></svg>"
        }
        let top = max(points.map { max($0.addRate, $0.dispatchRate) }.max() ?? 0, 1)
        let start = last.seconds - window
        func path(_ value: (Point) -> Double) -> String {
            points.map { point in
                let x = Double(width) * max(0, point.seconds - start) / window
                let y = Double(height - 12) * (1 - value(point) / top) + 10
                return "\(Int(x.rounded())),\(Int(y.rounded()))"
            }.joined(separator: " ")
        }
        let label = "adds \(Format.rate(last.addRate))/s, dispatches \(Format.rate(last.dispatchRate))/s now; peak \(Format.rate(top))/s"
        return """
            <svg class="chart" viewBox="0 0 \(width) \(height)" role="img" aria-label="\(label)"><title>\(label)</title>\
            <text class="axis" x="2" y="9">\(Format.rate(top))/s</text>\
            <polyline class="add" points="\(path(\.addRate))"/><polyline class="dispatch" points="\(path(\.dispatchRate))"/></svg>
            """
    }
}
