import Synchronization
import SpoolPrimitives

/// The deadlines of a dispatcher's suspended polls: one sleeping task wakes at the earliest of
/// them, instead of one timer task per waiting poll.
///
/// Almost every poll that suspends ends with a task long before its deadline. A timer task per
/// poll cost, each time, a task, a dispatch timer (a heap insert and a wake-up of libdispatch's
/// manager thread), a cancellation and one more run of the cancelled task: about a tenth of the
/// CPU of `spool bench queue`, whose eight pollers wait on nearly every poll.
///
/// Registering is lock-free: a poll pushes its ``PollDeadline`` on a stack (one
/// compare-and-swap) and compares its deadline with the one the sleeper sleeps until (one
/// load). Only a deadline earlier than that (no sleeper yet, or a shorter timeout than every
/// pending one) takes the lock, to start a sleeper for it and cancel the one it replaces;
/// pollers of a queue usually share one timeout, so that is rare. A poll that ends for any
/// reason marks its entry ended and leaves it; the sleeper skips ended entries when they come
/// due, and drops every ended entry at once when they outnumber the polls in progress four to
/// one (amortized O(1) per poll), so that long polls which mostly end early cannot pile up.
///
/// The sleeper sleeps on the dispatcher's clock, so a ``ManualMatchingClock`` times polls out
/// when it is advanced. The entry's action is the poll's cancellation, which does nothing to a
/// poll that already ended: exactly one of a match and a cancellation wins the waiter.
///
/// Handshake: a poll pushes, then reads `sleepingUntil`; the sleeper, before it sleeps, stores
/// `sleepingUntil`, then reads the stack (all four sequentially consistent). Either the poll
/// sees the sleeper's deadline and starts an earlier sleeper if its own is earlier, or the
/// sleeper sees the poll's entry and takes it before sleeping.
@usableFromInline
final class PollDeadlines: @unchecked Sendable {
    private enum Step {
        case expire([PollDeadline])
        case drainAgain
        case sleep(until: UInt64)
        case stop
    }

    private let clock: MatchingClock
    /// The stack of entries not yet in the heap: a retained `PollDeadline` (its bits), 0 when empty.
    private let incoming = Atomic<UInt>(0)
    /// The deadline the sleeper sleeps until: 0 while it is awake (it takes the stack before it
    /// sleeps again), `UInt64.max` when there is none. Stored only under `lock`.
    private let sleepingUntil = Atomic<UInt64>(.max)
    /// Polls that registered a deadline and have not ended.
    private let live = Atomic<Int>(0)
    /// Entries pushed since the stack was last taken (about: reset when it is taken).
    private let stacked = Atomic<Int>(0)
    private let lock = ThreadLock()
    // Guarded by `lock`.
    private var heap = DeadlineHeap<UInt64, PollDeadline>()
    private var generation: UInt64 = 0
    private var sleeper: Task<Void, Never>?

    init(clock: MatchingClock) { self.clock = clock }

    /// Arranges for `entry`'s action to run at its deadline unless ``ended(_:)`` is called first.
    @usableFromInline
    func add(_ entry: PollDeadline) {
        live.add(1, ordering: .relaxed)
        let bits = UInt(bitPattern: Unmanaged.passRetained(entry).toOpaque())
        var head = incoming.load(ordering: .relaxed)
        while true {
            entry.nextBits = head
            let (exchanged, current) = incoming.compareExchange(expected: head, desired: bits, ordering: .sequentiallyConsistent)
            if exchanged { break }
            head = current
        }
        if entry.deadline < sleepingUntil.load(ordering: .sequentiallyConsistent) {
            wake(for: entry.deadline)
            return
        }
        // Polls that share one long timeout and end early would otherwise pile up on the stack
        // until the earliest deadline: every 1,024 entries, if most have ended, wake the sleeper
        // to take them and drop the ended ones.
        let stacked = self.stacked.wrappingAdd(1, ordering: .relaxed).newValue
        if stacked & 1023 == 0 && stacked > 4 * live.load(ordering: .relaxed) { wake(for: 0) }
    }

    /// The poll of `entry` ended (a task, its deadline, a cancellation): its action need not run.
    @usableFromInline
    func ended(_ entry: PollDeadline) {
        entry.isEnded.store(true, ordering: .relaxed)
        live.subtract(1, ordering: .relaxed)
    }

    /// Polls in progress with a deadline (for tests).
    var pending: Int { live.load(ordering: .relaxed) }

    /// Entries held, ended ones included (for tests): the heap's, and the stack's as counted.
    var retained: Int { lock.withLock { heap.count } + stacked.load(ordering: .relaxed) }

    /// Starts a sleeper for `deadline` if the current one (if any) sleeps past it and is not
    /// awake (an awake sleeper takes the stack before it sleeps again).
    private func wake(for deadline: UInt64) {
        let replaced: Task<Void, Never>? = lock.withLock {
            guard deadline < sleepingUntil.load(ordering: .sequentiallyConsistent) else { return nil }
            sleepingUntil.store(0, ordering: .sequentiallyConsistent)
            generation &+= 1
            let generation = self.generation
            let replaced = sleeper
            sleeper = Task.detached { [self] in await run(generation) }
            return replaced
        }
        replaced?.cancel()
    }

    private func run(_ generation: UInt64) async {
        while true {
            let now = clock.now().nanoseconds
            let step: Step = lock.withLock {
                guard generation == self.generation else { return .stop }
                takeIncoming()
                let due = heap.popDue(at: now).filter { !$0.isEnded.load(ordering: .relaxed) }
                if !due.isEmpty { return .expire(due) }
                if heap.count >= 1024 && heap.count > 4 * live.load(ordering: .relaxed) {
                    heap.removeAll { $0.isEnded.load(ordering: .relaxed) }
                }
                let next = heap.earliestDeadline ?? .max
                sleepingUntil.store(next, ordering: .sequentiallyConsistent)
                if incoming.load(ordering: .sequentiallyConsistent) != 0 {
                    sleepingUntil.store(0, ordering: .sequentiallyConsistent)
                    return .drainAgain
                }
                if next == .max {
                    sleeper = nil
                    return .stop
                }
                return .sleep(until: next)
            }
            switch step {
            case .stop:
                return
            case .drainAgain:
                continue
            case .expire(let due):
                for entry in due { entry.expire() }
            case .sleep(let deadline):
                do { try await clock.sleep(until: MatchingInstant(nanoseconds: deadline)) } catch { return }  // replaced
                let current: Bool = lock.withLock {
                    guard generation == self.generation else { return false }
                    sleepingUntil.store(0, ordering: .sequentiallyConsistent)
                    return true
                }
                if !current { return }
            }
        }
    }

    /// Moves the stack's entries into the heap (under `lock`).
    private func takeIncoming() {
        var bits = incoming.exchange(0, ordering: .sequentiallyConsistent)
        stacked.store(0, ordering: .relaxed)
        while bits != 0 {
            let entry = Unmanaged<PollDeadline>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeRetainedValue()
            bits = entry.nextBits
            heap.insert(entry, at: entry.deadline)
        }
    }
}

/// One suspended poll's deadline in ``PollDeadlines``: what to do when it passes.
@usableFromInline
final class PollDeadline: @unchecked Sendable {
    @usableFromInline let deadline: UInt64
    let expire: @Sendable () -> Void
    let isEnded = Atomic<Bool>(false)
    /// The next entry on the incoming stack: written before the push (release), read after the
    /// stack is taken (acquire).
    var nextBits: UInt = 0

    @usableFromInline
    init(deadline: MatchingInstant, expire: @escaping @Sendable () -> Void) {
        self.deadline = deadline.nanoseconds
        self.expire = expire
    }
}
