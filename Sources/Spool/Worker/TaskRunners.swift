import SpoolPrimitives

/// Tasks that run a worker's workflow and activity tasks one after another while the worker
/// runs, instead of a new `Task` for each.
///
/// A new task allocates its task object and, as its calls go deeper, the slabs of its allocator
/// (every async function's frame lives there) from `malloc`, most of them over 1 KB — outside
/// glibc's per-thread cache — and frees them all when it ends: two of those a workflow were 5% of
/// `bench workflows`' CPU. A runner keeps its slabs for its next job. Runners are made as jobs come
/// (never more than are busy at once, which the worker's slots bound) and end at ``close()``.
/// A runner is not a child of anything, as the task it replaces was not: stopping the worker's
/// poll loops never cancels a job. It is made with `Task {}` where a job first needed it (a poll
/// loop, or an eager start's caller) and keeps that context's priority and task-local values for
/// its later jobs; Spool itself sets no task-local values.
final class TaskRunners: Sendable {
    typealias Job = @Sendable () async -> Void

    /// A job handed to a waiting runner. A struct, not the closure itself: a closure passed through
    /// a generic (the continuation's `Job?`) is wrapped in a reabstraction thunk — an allocation,
    /// and two more async calls each time it runs.
    private struct Handoff: Sendable {
        let job: Job
    }

    private struct State {
        /// Runners waiting for a job, the last to finish one on top (its memory is the warmest).
        var idle: [UnsafeContinuation<Handoff?, Never>] = []
        /// ``open()`` calls not yet closed: runners wait for jobs only while it is above 0.
        var opened = 0
    }

    private let state = LockedValue(State())

    /// From now on, finished runners wait for the next job (until the matching ``close()``).
    func open() { state.withLock { $0.opened += 1 } }

    /// Ends the waiting runners (once every ``open()`` is closed); a runner busy with a job ends
    /// after it. Jobs submitted while closed run in tasks of their own.
    func close() {
        let idle = state.withLock { state -> [UnsafeContinuation<Handoff?, Never>] in
            state.opened -= 1
            guard state.opened == 0 else { return [] }
            defer { state.idle = [] }
            return state.idle
        }
        for runner in idle { runner.resume(returning: nil) }
    }

    /// Whether a runner waits for a job.
    var hasIdleRunner: Bool { state.withLock { !$0.idle.isEmpty } }

    /// Runs `job` on a waiting runner, or on a new one if none waits.
    func submit(_ job: @escaping Job) {
        if let runner = state.withLock({ $0.idle.popLast() }) {
            runner.resume(returning: Handoff(job: job))
        } else {
            Task { await self.run(first: job) }
        }
    }

    private func run(first: Job) async {
        var job = first
        while true {
            await job()
            let next = await withUnsafeContinuation { (runner: UnsafeContinuation<Handoff?, Never>) in
                let waits = state.withLock { state -> Bool in
                    guard state.opened > 0 else { return false }
                    state.idle.append(runner)
                    return true
                }
                if !waits { runner.resume(returning: nil) }
            }
            guard let next else { return }
            job = next.job
        }
    }
}
