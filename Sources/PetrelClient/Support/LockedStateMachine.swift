import Synchronization

/// A state machine behind its one lock, and the one way a PetrelClient task waits on one: `park`.
final class LockedStateMachine<State>: Sendable {
    private let mutex: Mutex<State>

    init(_ state: sending State) {
        mutex = Mutex(state)
    }

    func withLock<Result, Failure: Error>(
        _ body: (inout sending State) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        try mutex.withLock(body)
    }

    /// Waits in the parking lot at `lot` until the state machine resumes the task, `deadline` passes,
    /// or the task is cancelled, unless `ready` (run under the lock first) returns a value: then that
    /// is the outcome and the task does not park. The check and the park are one step under the lock,
    /// a cancellation that comes before the park still ends it, and the deadline's timer ends with the
    /// wait.
    func park<Value: Sendable>(
        _ lot: any WritableKeyPath<State, ParkingLot<Value>> & Sendable,
        until deadline: ContinuousClock.Instant? = nil,
        unless ready: (inout State) -> Value?
    ) async -> ParkOutcome<Value> {
        let ticket = mutex.withLock { $0[keyPath: lot].reserve() }
        return await wait(for: ticket, in: lot, until: deadline, unless: ready)
    }

    /// Waits on a ticket reserved earlier (so that what will resume it could be told which ticket),
    /// until it is resumed, `deadline` passes, or the task is cancelled; `ready` as for `park`.
    func wait<Value: Sendable>(
        for ticket: ParkingLot<Value>.Ticket,
        in lot: any WritableKeyPath<State, ParkingLot<Value>> & Sendable,
        until deadline: ContinuousClock.Instant? = nil,
        unless ready: (inout State) -> Value? = { _ in nil }
    ) async -> ParkOutcome<Value> {
        guard let deadline else { return await park(lot, ticket, ready) }
        return await withTaskGroup(of: Void.self) { timers in
            timers.addTask {
                guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
                self.mutex.withLock { $0[keyPath: lot].expire(ticket) }.resume()
            }
            let outcome = await park(lot, ticket, ready)
            timers.cancelAll()
            return outcome
        }
    }

    private func park<Value: Sendable>(
        _ lot: any WritableKeyPath<State, ParkingLot<Value>> & Sendable,
        _ ticket: ParkingLot<Value>.Ticket,
        _ ready: (inout State) -> Value?
    ) async -> ParkOutcome<Value> {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: ParkingLot<Value>.Continuation) in
                let now: ParkOutcome<Value>? = mutex.withLock { state in
                    if let value = ready(&state) {
                        state[keyPath: lot].release(ticket)
                        return .resumed(value)
                    }
                    return state[keyPath: lot].park(ticket, continuation)
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            mutex.withLock { $0[keyPath: lot].cancel(ticket) }.resume()
        }
    }
}
