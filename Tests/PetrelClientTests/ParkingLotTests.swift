import Testing

@testable import PetrelClient

/// The one way a client task waits: every wait ends exactly once, whatever comes first.
@Suite("Parking lot")
struct ParkingLotTests {
    private struct State {
        var ready = false
        var lot = ParkingLot<Int>()
    }

    @Test("a ticket cancelled before it parks does not park")
    func cancelBeforePark() async {
        var lot = ParkingLot<Int>()
        let ticket = lot.reserve()
        #expect(lot.cancel(ticket).isEmpty, "nothing parked yet, nothing to wake")
        let parked = await withCheckedContinuation { (continuation: ParkingLot<Int>.Continuation) in
            if let ended = lot.park(ticket, continuation) { continuation.resume(returning: ended) }
        }
        guard case .cancelled = parked else {
            Issue.record("expected cancelled, got \(parked)")
            return
        }
        #expect(lot.parkedCount == 0)
    }

    @Test("a value handed to a ticket before it parks is there when it parks; after a cancel it is dropped")
    func resumeBeforePark() async {
        let machine = LockedStateMachine(State())
        let early = machine.withLock { $0.lot.reserve() }
        #expect(machine.withLock { $0.lot.resume(early, with: 5) }.isEmpty, "not parked yet: kept for the park")
        guard case .resumed(5) = await machine.wait(for: early, in: \.lot) else {
            Issue.record("the early value was lost")
            return
        }
        let parked = machine.withLock { $0.lot.reserve() }
        let waiter = Task { await machine.wait(for: parked, in: \.lot) }
        await waitUntil { machine.withLock { $0.lot.parkedCount } == 1 }
        machine.withLock { $0.lot.resume(parked, with: 6) }.resume()
        guard case .resumed(6) = await waiter.value else {
            Issue.record("expected 6")
            return
        }
        let cancelled = machine.withLock { $0.lot.reserve() }
        #expect(machine.withLock { $0.lot.cancel(cancelled) }.isEmpty)
        #expect(machine.withLock { $0.lot.resume(cancelled, with: 7) }.isEmpty, "a cancelled wait takes nothing")
    }

    @Test("resumeAll wakes the parked and leaves reserved tickets to check again")
    func resumeAllSkipsReserved() async {
        let machine = LockedStateMachine(State())
        let waiter = Task { await machine.park(\.lot) { $0.ready ? 7 : nil } }
        await waitUntil { machine.withLock { $0.lot.parkedCount } == 1 }
        let reserved = machine.withLock { $0.lot.reserve() }
        machine.withLock { $0.lot.resumeAll(with: 42) }.resume()
        guard case .resumed(42) = await waiter.value else {
            Issue.record("the parked task was not resumed")
            return
        }
        #expect(machine.withLock { $0.lot.expire(reserved) }.isEmpty, "a reserved ticket is not parked")
    }

    @Test("when the wait is over already, the task does not park")
    func readyFirst() async {
        let machine = LockedStateMachine(State(ready: true))
        let outcome = await machine.park(\.lot) { $0.ready ? 7 : nil }
        guard case .resumed(7) = outcome else {
            Issue.record("expected the ready value")
            return
        }
        #expect(machine.withLock { $0.lot.parkedCount } == 0)
    }

    @Test("a task cancelled before it parks ends its wait at once")
    func cancelledTaskNeverParks() async {
        let machine = LockedStateMachine(State())
        let outcome = await Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await machine.park(\.lot) { $0.ready ? 7 : nil }
        }.value
        guard case .cancelled = outcome else {
            Issue.record("expected cancelled, got \(outcome)")
            return
        }
    }

    @Test("a parked task that is cancelled is resumed, once")
    func cancelledWhileParked() async {
        let machine = LockedStateMachine(State())
        let waiter = Task { await machine.park(\.lot) { $0.ready ? 7 : nil } }
        await waitUntil { machine.withLock { $0.lot.parkedCount } == 1 }
        waiter.cancel()
        guard case .cancelled = await waiter.value else {
            Issue.record("expected cancelled")
            return
        }
        #expect(machine.withLock { $0.lot.parkedCount } == 0)
        #expect(machine.withLock { $0.lot.resumeAll(with: 1) }.isEmpty, "nothing left to resume twice")
    }

    @Test("a deadline ends the wait; a wait that ends first takes its timer along")
    func deadlines() async {
        let machine = LockedStateMachine(State())
        let timedOut = await machine.park(\.lot, until: .now + .milliseconds(20)) { $0.ready ? 7 : nil }
        guard case .timedOut = timedOut else {
            Issue.record("expected timed out, got \(timedOut)")
            return
        }

        // A long deadline, resumed at once: the wait returns without sitting out its timer.
        let waiter = Task { await machine.park(\.lot, until: .now + .seconds(3600)) { $0.ready ? 7 : nil } }
        await waitUntil { machine.withLock { $0.lot.parkedCount } == 1 }
        machine.withLock { $0.lot.resumeAll(with: 3) }.resume()
        guard case .resumed(3) = await waiter.value else {
            Issue.record("expected resumed")
            return
        }
    }
}

/// Polls `condition` (another task is on its way to parking); the test's own time limit bounds it.
func waitUntil(_ condition: () -> Bool) async {
    while !condition() { await Task.yield() }
}
