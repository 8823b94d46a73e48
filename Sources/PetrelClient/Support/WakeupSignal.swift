/// Wakes one waiting loop: `signal()` ends the current wait, or the next one if none is under way.
/// Signals do not queue beyond one. Built on `ParkingLot`, so a cancellation before the wait parks still
/// ends it, and a wait's timer ends with the wait.
final class WakeupSignal: Sendable {
    private struct State {
        var pending = false
        var waiters = ParkingLot<Void>()
    }

    private let machine = LockedStateMachine(State())

    init() {}

    func signal() {
        machine.withLock { state -> Wakeups<Void> in
            if state.waiters.parkedCount > 0 { return state.waiters.resumeAll() }
            state.pending = true
            return Wakeups()
        }.resume()
    }

    /// Returns at the next signal, after `timeout` at the latest (nil: no limit), or on cancellation.
    func wait(timeout: Duration?) async {
        _ = await machine.park(\.waiters, until: timeout.map { .now + $0 }) { state in
            guard state.pending else { return nil }
            state.pending = false
            return ()
        }
    }
}
