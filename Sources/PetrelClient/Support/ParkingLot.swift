/// How a wait in a `ParkingLot` ended.
enum ParkOutcome<Value: Sendable>: Sendable {
    /// Woken by the state machine, with what it handed over.
    case resumed(Value)
    /// The waiting task was cancelled (before or after it parked).
    case cancelled
    /// The wait's deadline passed first.
    case timedOut
}

/// Tasks waiting for something a state machine will hand them. It lives inside the state machine's
/// state, behind that state machine's one lock, so "is it ready? if not, park" is a single step under
/// the lock and no wake-up can fall between the check and the park. Every ticket ends exactly once:
/// resumed, cancelled (also when the cancellation comes before the park) or timed out.
///
/// Not a thread-safe type itself: `LockedStateMachine.park` is how tasks use it.
struct ParkingLot<Value: Sendable>: Sendable {
    typealias Continuation = CheckedContinuation<ParkOutcome<Value>, Never>

    struct Ticket: Hashable, Sendable {
        fileprivate let id: UInt64
    }

    private enum Slot {
        /// Taken by a task on its way to parking.
        case reserved
        case parked(Continuation)
        /// Cancelled before it parked: the park, when it comes, ends at once.
        case cancelled
        /// Resumed before it parked (`resume(_:with:)`): the park, when it comes, ends with the value.
        case ready(Value)
    }

    private var slots: [UInt64: Slot] = [:]
    private var nextID: UInt64 = 0

    init() {}

    /// How many tasks are parked now.
    var parkedCount: Int {
        slots.values.reduce(0) { count, slot in
            if case .parked = slot { return count + 1 }
            return count
        }
    }

    /// The first step of a wait, before anything is checked.
    mutating func reserve() -> Ticket {
        nextID += 1
        slots[nextID] = .reserved
        return Ticket(id: nextID)
    }

    /// Parks the continuation (nil), or ends the wait at once with how it ended on the way: cancelled,
    /// or resumed before it parked.
    mutating func park(_ ticket: Ticket, _ continuation: Continuation) -> ParkOutcome<Value>? {
        switch slots[ticket.id] {
        case .reserved:
            slots[ticket.id] = .parked(continuation)
            return nil
        case .ready(let value):
            slots[ticket.id] = nil
            return .resumed(value)
        case .cancelled, .parked, nil:
            slots[ticket.id] = nil
            return .cancelled
        }
    }

    /// The wait ended without parking (what it waited for was there already).
    mutating func release(_ ticket: Ticket) {
        slots[ticket.id] = nil
    }

    /// The task was cancelled: a parked one is handed back to be resumed, a reserved one will not park.
    mutating func cancel(_ ticket: Ticket) -> Wakeups<Value> {
        switch slots[ticket.id] {
        case .parked(let continuation):
            slots[ticket.id] = nil
            return Wakeups(continuation, .cancelled)
        case .reserved, .ready:
            slots[ticket.id] = .cancelled
            return Wakeups()
        case .cancelled, nil:
            return Wakeups()
        }
    }

    /// Hands `value` to one ticket's task: at once if it is parked, or when it parks if it has not yet.
    /// Nothing if the wait is over (cancelled).
    mutating func resume(_ ticket: Ticket, with value: Value) -> Wakeups<Value> {
        switch slots[ticket.id] {
        case .parked(let continuation):
            slots[ticket.id] = nil
            return Wakeups(continuation, .resumed(value))
        case .reserved:
            slots[ticket.id] = .ready(value)
            return Wakeups()
        case .ready, .cancelled, nil:
            return Wakeups()
        }
    }

    /// The ticket's deadline passed: a parked task is handed back to be resumed.
    mutating func expire(_ ticket: Ticket) -> Wakeups<Value> {
        guard case .parked(let continuation) = slots[ticket.id] else { return Wakeups() }
        slots[ticket.id] = nil
        return Wakeups(continuation, .timedOut)
    }

    /// Every parked task, to be resumed with `value`. Tasks still on their way to parking are not
    /// affected: they check the state machine again under the lock before they park.
    mutating func resumeAll(with value: Value) -> Wakeups<Value> {
        var wakeups = Wakeups<Value>()
        for (id, slot) in slots {
            guard case .parked(let continuation) = slot else { continue }
            slots[id] = nil
            wakeups.append(continuation, .resumed(value))
        }
        return wakeups
    }
}

extension ParkingLot where Value == Void {
    mutating func resumeAll() -> Wakeups<Void> { resumeAll(with: ()) }
}

/// Continuations taken out of a state machine, to be resumed once its lock is released (never under
/// it: a resumed task may run at once and want the lock).
struct Wakeups<Value: Sendable>: Sendable {
    private var entries: [(ParkingLot<Value>.Continuation, ParkOutcome<Value>)] = []

    init() {}

    init(_ continuation: ParkingLot<Value>.Continuation, _ outcome: ParkOutcome<Value>) {
        entries = [(continuation, outcome)]
    }

    var isEmpty: Bool { entries.isEmpty }

    mutating func append(_ continuation: ParkingLot<Value>.Continuation, _ outcome: ParkOutcome<Value>) {
        entries.append((continuation, outcome))
    }

    mutating func append(_ other: Wakeups<Value>) {
        entries.append(contentsOf: other.entries)
    }

    func resume() {
        for (continuation, outcome) in entries { continuation.resume(returning: outcome) }
    }
}
