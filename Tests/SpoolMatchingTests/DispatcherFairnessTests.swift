import Testing
@testable import SpoolMatching

@Suite("Dispatcher fairness keys")
struct DispatcherFairnessTests {
    func shares(_ queue: TaskQueue<UInt64>, polls: Int) -> [String: Int] {
        var counts: [String: Int] = [:]
        for _ in 0..<polls {
            guard let next = queue.tryPoll() else { break }
            counts[next.fairness?.key ?? "-", default: 0] += 1
        }
        return counts
    }

    @Test("keys are served in proportion to their weights within ±10%")
    func weightedShares() throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        var id: UInt64 = 0
        // One busy key adds far more than the others; it still gets only its share.
        for (key, weight, count) in [("a", UInt32(1), 3_000), ("b", 2, 3_000), ("c", 1, 3_000), ("busy", 4, 20_000)] {
            for _ in 0..<count {
                try queue.add(task(id, key: key, weight: weight))
                id += 1
            }
        }
        let counts = shares(queue, polls: 4_000)
        for (key, expected) in [("a", 500), ("b", 1_000), ("c", 500), ("busy", 2_000)] {
            let got = counts[key, default: 0]
            #expect(abs(got - expected) <= expected / 10, "key \(key): \(got), expected \(expected)")
        }
    }

    @Test("tasks without a key share the priority with keyed tasks as one key of weight 1")
    func unkeyedStream() throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        for i in 0..<2_000 as Range<UInt64> {
            try queue.add(task(i))
            try queue.add(task(10_000 + i, key: "tenant", weight: 1))
        }
        let counts = shares(queue, polls: 1_000)
        #expect(abs(counts["-", default: 0] - 500) <= 50)
        #expect(abs(counts["tenant", default: 0] - 500) <= 50)
    }

    @Test("FIFO within a key, and priorities still come first")
    func fifoWithinKeyAndPriority() throws {
        let queue = try makeDispatcher().queue("q", kind: .activity)
        for i in 0..<10 as Range<UInt64> { try queue.add(task(i, priority: 4, key: "x")) }
        try queue.add(task(99, priority: 2, key: "y"))
        #expect(queue.tryPoll()?.id == 99)
        var polled: [UInt64] = []
        while let next = queue.tryPoll() { polled.append(next.id) }
        #expect(polled == Array(0..<10))
    }
}
