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

    // MARK: - The consumer protocol's incremental assignment

    private func member(owning partitions: [TopicPartition: Int64]) -> ConsumerStateMachine {
        var machine = ConsumerStateMachine(capacity: 100)
        var membership = ConsumerProtocolMembership(
            settings: .init(
                groupID: "workers",
                topics: ["orders"],
                rebalanceTimeoutMs: 1_000,
                retryBackoffMs: 100
            ),
            clientMemberID: "m"
        )
        _ = membership.heartbeat(version: 1)
        let assignment = ConsumerGroupHeartbeatResponse.Assignment(topicPartitions: [
            .init(topicId: KafkaUUID(high: 1, low: 1), partitions: partitions.keys.map(\.partition))
        ])
        _ = membership.received(.init(memberEpoch: 4, heartbeatIntervalMs: 1_000, assignment: assignment), now: 0)
        membership.learn(["orders": KafkaUUID(high: 1, low: 1)])
        machine.membership = membership
        machine.assignForMembership(partitions, committed: [:]).wakeups.resume()
        return machine
    }

    @Test("revoking keeps the other partitions' buffered records; the commit covers the revoked ones too")
    func revokeIncrementally() {
        var machine = member(owning: [orders0: 0, orders1: 0])
        #expect(machine.commitIdentity.memberID == "m" && machine.commitIdentity.generation == 4)
        let epoch = machine.fetchable.epoch
        _ = machine.push(records(orders0, 0..<2), of: orders0, from: 0, next: 2, epoch: epoch)
        _ = machine.push(records(orders1, 0..<2), of: orders1, from: 0, next: 2, epoch: epoch)
        #expect(take(&machine)?.topicPartition == orders0)
        #expect(take(&machine)?.topicPartition == orders0)
        #expect(take(&machine)?.topicPartition == orders1)
        machine.revokeForMembership([orders0]).resume()
        #expect(machine.membership?.owned == [orders1])
        #expect(machine.positions == [orders1: 2])
        #expect(machine.uncommitted(including: [orders0]) == [orders0: 2, orders1: 1])
        #expect(machine.uncommitted() == [orders1: 1], "a plain commit leaves partitions given up alone")
        #expect(take(&machine)?.offset == 1, "orders1's buffered record is still there")
        #expect(take(&machine) == nil)
    }

    @Test("taking partitions adds to what is fetched without dropping what is buffered")
    func assignIncrementally() {
        var machine = member(owning: [orders0: 0])
        let epoch = machine.fetchable.epoch
        _ = machine.push(records(orders0, 0..<2), of: orders0, from: 0, next: 2, epoch: epoch)
        var membership = machine.membership!
        _ = membership.heartbeat(version: 1)
        let assignment = ConsumerGroupHeartbeatResponse.Assignment(topicPartitions: [
            .init(topicId: KafkaUUID(high: 1, low: 1), partitions: [0, 1])
        ])
        _ = membership.received(.init(memberEpoch: 5, heartbeatIntervalMs: 1_000, assignment: assignment), now: 1)
        machine.membership = membership
        let (taken, wakeups) = machine.assignForMembership([orders1: 7], committed: [orders1: 7])
        wakeups.resume()
        #expect(taken == [orders1])
        #expect(machine.positions == [orders0: 2, orders1: 7])
        #expect(machine.committed[orders1] == 7)
        #expect(machine.fetchable.epoch == epoch, "fetches in flight for orders0 still count")
        #expect(take(&machine)?.offset == 0)
    }

    @Test("a fenced member drops everything and forgets what it read: nothing of it is committed")
    func loseEverything() {
        var machine = member(owning: [orders0: 0, orders1: 0])
        let epoch = machine.fetchable.epoch
        _ = machine.push(records(orders0, 0..<2), of: orders0, from: 0, next: 2, epoch: epoch)
        #expect(take(&machine) != nil)
        let (lost, wakeups) = machine.loseForMembership()
        wakeups.resume()
        #expect(lost == [orders0, orders1])
        #expect(machine.positions.isEmpty && machine.membership?.owned.isEmpty == true)
        #expect(machine.uncommitted(including: lost).isEmpty)
        #expect(take(&machine) == nil)
    }
}
