import SpoolPrimitives
import Synchronization
import Testing
@testable import Spool

@Suite(.timeLimit(.minutes(1))) struct TaskRunnersTests {
    /// The task running the current job (its identity, for comparing).
    private static func currentTask() -> Int { withUnsafeCurrentTask { $0!.hashValue } }

    /// Runs `job` on `runners` and returns once it ran, with the task it ran in.
    private static func runOne(_ runners: TaskRunners) async -> Int {
        await withCheckedContinuation { (done: CheckedContinuation<Int, Never>) in
            runners.submit { done.resume(returning: currentTask()) }
        }
    }

    /// Jobs that come one after another while the runners are open all run in one task: the
    /// point of a runner is that the next job reuses the task (and its allocator's memory).
    @Test func jobsOneAfterAnotherShareOneRunner() async {
        let runners = TaskRunners()
        runners.open()
        defer { runners.close() }
        var tasks = Set<Int>()
        for _ in 0..<20 {
            tasks.insert(await Self.runOne(runners))
            // The runner parks only after its job returned: wait for that before the next.
            while !runners.hasIdleRunner { await Task.yield() }
        }
        #expect(tasks.count == 1)
    }

    /// A job submitted while every runner is busy gets a runner of its own: here the first job
    /// waits for the second, which could never run if it queued behind it.
    @Test func aJobNeverWaitsBehindABusyRunner() async {
        let runners = TaskRunners()
        runners.open()
        defer { runners.close() }
        let gate = AsyncSemaphore(permits: 0)
        let first = await withCheckedContinuation { (done: CheckedContinuation<Int, Never>) in
            runners.submit {
                await gate.acquire()
                done.resume(returning: Self.currentTask())
            }
            runners.submit { gate.release() }
        }
        #expect(first != Self.currentTask())
    }

    /// After the last close the waiting runners end, and jobs still run, each in a task of its own.
    @Test func closedRunnersStillRunEveryJob() async {
        let runners = TaskRunners()
        runners.open()
        _ = await Self.runOne(runners)
        while !runners.hasIdleRunner { await Task.yield() }
        runners.close()
        #expect(!runners.hasIdleRunner)
        let ran = Atomic<Int>(0)
        for _ in 0..<5 {
            _ = await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                runners.submit {
                    ran.add(1, ordering: .relaxed)
                    done.resume()
                }
            }
        }
        #expect(ran.load(ordering: .relaxed) == 5)
        #expect(!runners.hasIdleRunner)
    }
}
