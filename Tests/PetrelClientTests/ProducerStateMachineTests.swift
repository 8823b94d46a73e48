import NIOCore
import PetrelProtocol
import Testing

@testable import PetrelClient

/// `ProducerStateMachine` driven event by event, with time as a plain number (a fake clock).
@Suite("Producer state machine")
struct ProducerStateMachineTests {
    private static func configuration(buffer: Int = 1 << 20) -> KafkaProducerConfiguration {
        var configuration = KafkaProducerConfiguration(bootstrap: [])
        configuration.linger = .milliseconds(5)
        configuration.batchBytes = 1000
        configuration.bufferBytes = buffer
        configuration.idempotence = false
        return configuration
    }

    private static func record(_ value: String = "v") -> ProducerRecord {
        ProducerRecord(topic: "orders", partition: 0, key: nil, value: ByteBuffer(string: value))
    }

    private static func batches(_ action: ProducerStateMachine.SenderAction) -> [SealedBatch] {
        if case .send(let batches) = action { return batches }
        return []
    }

    @Test("a new batch wakes the sender, which waits out the linger and then sends it")
    func linger() throws {
        var machine = ProducerStateMachine(configuration: Self.configuration())
        _ = machine.append(Self.record(), partition: 0, timestamp: 1_000, waiter: .report(1), now: 1_000)
        #expect(machine.takeSenderWork() != nil, "the sender was woken")
        guard case .wait(until: 1_005) = try machine.nextSenderAction(now: 1_001) else {
            Issue.record("the sender should wait until the linger ends")
            return
        }
        let sent = Self.batches(try machine.nextSenderAction(now: 1_005))
        #expect(sent.count == 1 && sent[0].records.count == 1)
        guard case .wait(until: nil) = try machine.nextSenderAction(now: 1_006) else {
            Issue.record("one batch in flight per partition: nothing more to send")
            return
        }
    }

    @Test("a flush that comes after the last completion does not wait (the lost wake-up window)")
    func flushRacingLastCompletion() async throws {
        let machine = LockedStateMachine(ProducerStateMachine(configuration: Self.configuration()))
        machine.withLock { _ = $0.append(Self.record(), partition: 0, timestamp: 0, waiter: .report(1), now: 0) }
        let flush = try #require(machine.withLock { $0.requestFlush() }, "there is something to flush")
        flush.resume()
        let sent = Self.batches(try machine.withLock { try $0.nextSenderAction(now: 0) })
        #expect(sent.count == 1, "a flush sends at once, without waiting for the linger")
        // The batch completes between the flush's request and its park.
        machine.withLock { $0.finished(sent[0]) }.resume()
        let outcome = await machine.park(\.flushes) { $0.isEmpty ? () : nil }
        guard case .resumed = outcome else {
            Issue.record("the flush should see the producer empty")
            return
        }
        #expect(machine.withLock { $0.requestFlush() } == nil, "nothing left to flush")
    }

    @Test("a parked flush is woken by the completion that empties the producer")
    func parkedFlushWoken() async throws {
        let machine = LockedStateMachine(ProducerStateMachine(configuration: Self.configuration()))
        machine.withLock { _ = $0.append(Self.record(), partition: 0, timestamp: 0, waiter: .report(1), now: 0) }
        machine.withLock { $0.requestFlush() }?.resume()
        let sent = Self.batches(try machine.withLock { try $0.nextSenderAction(now: 0) })
        let flush = Task { await machine.park(\.flushes) { $0.isEmpty ? () : nil } }
        await waitUntil { machine.withLock { $0.flushes.parkedCount } == 1 }
        machine.withLock { $0.finished(sent[0]) }.resume()
        guard case .resumed = await flush.value else {
            Issue.record("the flush was not woken")
            return
        }
    }

    @Test("shutdown sends queued records without lingering, then finishes once all are done")
    func shutdownWithQueuedRecords() throws {
        var machine = ProducerStateMachine(configuration: Self.configuration())
        for index in 0..<3 {
            _ = machine.append(
                Self.record("\(index)"),
                partition: Int32(index % 2),
                timestamp: 0,
                waiter: .report(1),
                now: 0
            )
        }
        _ = machine.close()
        let sent = Self.batches(try machine.nextSenderAction(now: 0))
        #expect(sent.map(\.records.count).sorted() == [1, 2], "both partitions' batches go at once")
        guard case .wait = try machine.nextSenderAction(now: 0) else {
            Issue.record("in flight: wait")
            return
        }
        for batch in sent { _ = machine.finished(batch) }
        guard case .finish = try machine.nextSenderAction(now: 0) else {
            Issue.record("all done: finish")
            return
        }
    }

    @Test("a retried batch waits out its backoff and goes before anything newer")
    func retryBackoff() throws {
        var machine = ProducerStateMachine(configuration: Self.configuration())
        _ = machine.append(Self.record("first"), partition: 0, timestamp: 0, waiter: .report(1), now: 0)
        let first = Self.batches(try machine.nextSenderAction(now: 10))
        _ = machine.append(Self.record("second"), partition: 0, timestamp: 10, waiter: .report(2), now: 10)
        _ = machine.requeue(first[0], now: 20, backoff: 100)
        guard case .wait(until: 120) = try machine.nextSenderAction(now: 50) else {
            Issue.record("the partition waits for the retry's backoff")
            return
        }
        let retried = Self.batches(try machine.nextSenderAction(now: 120))
        #expect(
            retried.count == 1 && retried[0].attempts == 1 && retried[0].bytes == first[0].bytes,
            "the very same bytes again"
        )
    }

    @Test("senders waiting for room go on once a completion frees it")
    func room() async throws {
        let machine = LockedStateMachine(ProducerStateMachine(configuration: Self.configuration(buffer: 10)))
        machine.withLock {
            _ = $0.append(Self.record("0123456789"), partition: 0, timestamp: 0, waiter: .report(1), now: 0)
        }
        #expect(machine.withLock { $0.hasRoom } == false)
        let sender = Task { await machine.park(\.room) { $0.hasRoom ? () : nil } }
        await waitUntil { machine.withLock { $0.room.parkedCount } == 1 }
        let sent = Self.batches(try machine.withLock { try $0.nextSenderAction(now: 100) })
        machine.withLock { $0.finished(sent[0]) }.resume()
        guard case .resumed = await sender.value else {
            Issue.record("the waiting sender was not woken")
            return
        }
    }

    @Test("failing everything hands back the queued records, wakes every waiter, and keeps in-flight accounting")
    func failAll() async throws {
        let machine = LockedStateMachine(ProducerStateMachine(configuration: Self.configuration()))
        machine.withLock { _ = $0.append(Self.record("a"), partition: 0, timestamp: 0, waiter: .report(1), now: 0) }
        let inFlight = Self.batches(try machine.withLock { try $0.nextSenderAction(now: 100) })
        machine.withLock { _ = $0.append(Self.record("b"), partition: 1, timestamp: 0, waiter: .report(2), now: 100) }
        let flush = Task { await machine.park(\.flushes) { $0.isEmpty ? () : nil } }
        await waitUntil { machine.withLock { $0.flushes.parkedCount } == 1 }
        let (records, wakeups) = machine.withLock { $0.failAll() }
        wakeups.resume()
        #expect(records.count == 1, "only the queued record; the in-flight batch finishes on its own")
        guard case .resumed = await flush.value else {
            Issue.record("the flush was not woken")
            return
        }
        #expect(machine.withLock { $0.isEmpty } == false)
        machine.withLock { $0.finished(inFlight[0]) }.resume()
        #expect(machine.withLock { $0.isEmpty })
        guard case .finish = try machine.withLock({ try $0.nextSenderAction(now: 200) }) else {
            Issue.record("closing and empty: the sender finishes")
            return
        }
    }
}
