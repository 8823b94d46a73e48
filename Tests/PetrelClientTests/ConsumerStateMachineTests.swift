import NIOCore
import PetrelProtocol
import Testing

@testable import PetrelClient

/// `ConsumerStateMachine` driven event by event: epochs, positions, the record buffer and its waits.
@Suite("Consumer state machine")
struct ConsumerStateMachineTests {
    private let orders0 = TopicPartition("orders", 0)
    private let orders1 = TopicPartition("orders", 1)

    private func records(_ partition: TopicPartition, _ offsets: Range<Int64>) -> [ConsumerRecord] {
        offsets.map {
            ConsumerRecord(
                topic: partition.topic,
                partition: partition.partition,
                offset: $0,
                timestamp: 0,
                key: nil,
                value: ByteBuffer(string: "\($0)"),
                headers: []
            )
        }
    }

    private func take(_ machine: inout ConsumerStateMachine) -> ConsumerRecord? {
        let (taken, wakeups) = machine.takeRecord()
        wakeups.resume()
        return try? taken?.get()
    }

    @Test("records move the position; a push from an ended epoch is dropped and moves nothing")
    func epochs() {
        var machine = ConsumerStateMachine(capacity: 100)
        machine.install([orders0: 0, orders1: 5]).resume()
        let (_, epoch) = machine.fetchable
        guard case .accepted = machine.push(records(orders0, 0..<3), of: orders0, from: 0, next: 3, epoch: epoch) else {
            Issue.record("expected the push to be accepted")
            return
        }
        #expect(machine.positions[orders0] == 3)
        // A rebalance keeps orders1 only: orders0's buffered records go, and so does a fetch in flight.
        machine.install([orders1: 5]).resume()
        guard case .dropped = machine.push(records(orders1, 5..<6), of: orders1, from: 5, next: 6, epoch: epoch) else {
            Issue.record("a push under the old epoch must be dropped")
            return
        }
        #expect(machine.positions == [orders1: 5])
        #expect(take(&machine) == nil, "nothing of orders0 is left to read")
    }

    @Test("a position moved meanwhile (a seek) is not overwritten by an older fetch's end")
    func seekWins() {
        var machine = ConsumerStateMachine(capacity: 100)
        machine.install([orders0: 0]).resume()
        var epoch = machine.fetchable.epoch
        guard case .accepted = machine.push(records(orders0, 0..<2), of: orders0, from: 0, next: 2, epoch: epoch) else {
            return
        }
        #expect(take(&machine)?.offset == 0)
        #expect(machine.consumed[orders0] == 1)
        machine.seek(orders0, to: 100).resume()
        #expect(machine.consumed[orders0] == nil && take(&machine) == nil, "the seek drops buffered records")
        epoch = machine.fetchable.epoch
        machine.reset(orders0, from: 0, to: 7, epoch: epoch)
        #expect(machine.positions[orders0] == 100)
    }

    @Test("the position is the next record the reader gets: the first buffered, or past gaps where the fetch goes on")
    func position() {
        var machine = ConsumerStateMachine(capacity: 100)
        #expect(machine.position(of: orders0) == nil, "not assigned")
        machine.install([orders0: 0, orders1: 4]).resume()
        #expect(machine.position(of: orders0) == 0 && machine.position(of: orders1) == 4)
        let epoch = machine.fetchable.epoch
        // A compacted log: offsets 0 and 1 were cleaned away, and so were 5 to 7 after the batch that
        // ends at 8 (its last record is gone too).
        guard case .accepted = machine.push(records(orders0, 2..<5), of: orders0, from: 0, next: 8, epoch: epoch)
        else {
            Issue.record("expected the push to be accepted")
            return
        }
        #expect(machine.positions[orders0] == 8, "the fetch goes on after the batch")
        #expect(machine.position(of: orders0) == 2, "the reader has not had offset 2 yet")
        #expect(machine.position(of: orders1) == 4, "other partitions' records do not count")
        #expect(take(&machine)?.offset == 2)
        #expect(machine.position(of: orders0) == 3)
        #expect(take(&machine)?.offset == 3 && take(&machine)?.offset == 4)
        #expect(machine.position(of: orders0) == 8, "everything below 8 was handed out or is not in the log")
        // A fetch that found only an empty batch (or control records) moves the position too.
        guard case .accepted = machine.push([], of: orders0, from: 8, next: 10, epoch: epoch) else {
            Issue.record("expected the empty push to be accepted")
            return
        }
        #expect(machine.position(of: orders0) == 10)
        machine.seek(orders0, to: 1).resume()
        #expect(machine.position(of: orders0) == 1)
    }

    @Test("a full buffer makes the fetcher wait; a read frees room and wakes it")
    func backpressure() async throws {
        let machine = LockedStateMachine(ConsumerStateMachine(capacity: 2))
        machine.withLock { $0.install([orders0: 0]) }.resume()
        let epoch = machine.withLock { $0.fetchable.epoch }
        #expect(await machine.push(records(orders0, 0..<2), of: orders0, from: 0, next: 2, epoch: epoch))
        let fetcher = Task { await machine.push(records(orders0, 2..<3), of: orders0, from: 2, next: 3, epoch: epoch) }
        await waitUntil { machine.withLock { $0.writers.parkedCount } == 1 }
        #expect(try await machine.nextRecord(timeout: nil)?.offset == 0)
        #expect(await fetcher.value)
        #expect(machine.withLock { $0.positions[orders0] } == 3)
    }

    @Test("a waiting reader is woken by records, times out without losing one, and gets the end after the rest")
    func reader() async throws {
        let machine = LockedStateMachine(ConsumerStateMachine(capacity: 10))
        machine.withLock { $0.install([orders0: 0]) }.resume()
        #expect(try await machine.nextRecord(timeout: .milliseconds(20)) == nil, "timed out: nothing there")
        let reader = Task { try await machine.nextRecord(timeout: nil) }
        await waitUntil { machine.withLock { $0.readers.parkedCount } == 1 }
        let epoch = machine.withLock { $0.fetchable.epoch }
        #expect(await machine.push(records(orders0, 0..<2), of: orders0, from: 0, next: 2, epoch: epoch))
        #expect(try await reader.value?.offset == 0)
        machine.withLock { $0.finish(error: nil) }.resume()
        #expect(try await machine.nextRecord(timeout: nil)?.offset == 1, "buffered records come before the end")
        #expect(try await machine.nextRecord(timeout: nil) == nil)
    }

    @Test("a reader cancelled before it parks throws CancellationError and takes no record")
    func cancelledReader() async {
        let machine = LockedStateMachine(ConsumerStateMachine(capacity: 10))
        let outcome = await Task { () -> Bool in
            withUnsafeCurrentTask { $0?.cancel() }
            do {
                _ = try await machine.nextRecord(timeout: nil)
                return false
            } catch {
                return error is CancellationError
            }
        }.value
        #expect(outcome)
    }

    @Test("stop wakes run() and the fetcher, even before they wait")
    func stop() async {
        let machine = LockedStateMachine(ConsumerStateMachine(capacity: 10))
        machine.withLock { $0.stop() }.resume()
        guard case .resumed = await machine.park(\.stopping, unless: { $0.stopRequested }) else {
            Issue.record("run() should see the stop")
            return
        }
        guard case .resumed = await machine.park(\.fetcher, unless: { $0.takeFetcherWork() }) else {
            Issue.record("the fetcher should see the stop")
            return
        }
    }
}
