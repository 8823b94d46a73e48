import PetrelProtocol
import Testing

@testable import PetrelBroker

/// The transaction coordinator's decisions, driven with a fake clock: each step is checked, then
/// "carried out" the way `TransactionCoordinator` does (`stored` after a write).
@Suite("Transaction coordinator states")
struct TransactionStatesTests {
    private var states = TransactionStates(maxTimeoutMs: 60_000)
    private var nextProducerID: Int64 = 1000
    private let orders = TopicPartition("orders", 0)
    private let notifications = TopicPartition("notifications", 1)

    /// Carries out a step as the coordinator would, every write succeeding; returns the answer.
    @discardableResult
    private mutating func run(_ step: TransactionStates.Step) -> ErrorCode {
        switch step {
        case .respond(let code):
            return code
        case .store(let metadata, let code):
            states.stored(metadata)
            return code
        case .end(let end, let code):
            states.stored(end.prepared)
            states.stored(end.completed)
            return code
        }
    }

    private mutating func initialize(_ id: String = "worker", timeoutMs: Int32 = 10_000, now: Int64 = 0) -> ErrorCode {
        var next = nextProducerID
        let step = states.initProducerID(id, timeoutMs: timeoutMs, now: now) {
            defer { next += 1 }
            return next
        }
        nextProducerID = next
        return run(step)
    }

    private func current(_ id: String = "worker") -> TransactionMetadata { states.transactions[id]! }

    @Test("a new transactional id gets a producer id at epoch 0; each later InitProducerId bumps the epoch")
    mutating func initAndBump() {
        #expect(initialize() == .none)
        #expect(current().producerID == 1000 && current().producerEpoch == 0 && current().state == .empty)
        #expect(initialize(now: 5) == .none)
        #expect(current().producerID == 1000 && current().producerEpoch == 1 && current().lastProducerEpoch == 0)
        #expect(initialize("other") == .none)
        #expect(current("other").producerID == 1001)
    }

    @Test("a timeout above transaction.max.timeout.ms is INVALID_TRANSACTION_TIMEOUT")
    mutating func timeoutLimit() {
        #expect(initialize(timeoutMs: 60_001) == .invalidTransactionTimeout)
        #expect(initialize(timeoutMs: 0) == .invalidTransactionTimeout)
        #expect(states.transactions.isEmpty)
    }

    @Test("partitions and offsets open a transaction; commit ends it and carries its offsets in the prepared state")
    mutating func commit() {
        _ = initialize()
        let id = current().producerID
        #expect(
            run(states.addPartitions("worker", producerID: id, producerEpoch: 0, partitions: [orders], now: 10))
                == .none
        )
        #expect(current().state == .ongoing && current().startTimestamp == 10)
        // Adding what is already there writes nothing.
        #expect(
            states.addPartitions("worker", producerID: id, producerEpoch: 0, partitions: [orders], now: 11)
                == .respond(.none)
        )
        #expect(run(states.addOffsets("worker", producerID: id, producerEpoch: 0, group: "workers", now: 12)) == .none)
        let offsets = [notifications: CommittedOffset(offset: 42, commitTimestamp: 12)]
        #expect(
            run(
                states.commitOffsets(
                    "worker",
                    producerID: id,
                    producerEpoch: 0,
                    group: "workers",
                    offsets: offsets,
                    now: 12
                )
            )
                == .none
        )
        #expect(states.hasPendingOffsets(group: "workers", partition: notifications))
        let step = states.end("worker", producerID: id, producerEpoch: 0, commit: true, now: 20)
        guard case .end(let end, .none) = step else {
            Issue.record("expected an end, got \(step)")
            return
        }
        #expect(end.commit && end.prepared.state == .prepareCommit)
        #expect(end.prepared.partitions == [orders] && end.prepared.pendingOffsets["workers"] == offsets)
        #expect(end.prepared.producerEpoch == 0, "a commit keeps the epoch")
        #expect(end.completed.state == .completeCommit && end.completed.partitions.isEmpty)
        // While the end is under way, requests for the id wait.
        #expect(states.inFlight.contains("worker"))
        #expect(
            states.end("worker", producerID: id, producerEpoch: 0, commit: true, now: 21)
                == .respond(.concurrentTransactions)
        )
        run(step)
        #expect(!states.inFlight.contains("worker") && current().state == .completeCommit)
        #expect(!states.hasPendingOffsets(group: "workers", partition: notifications))
        // A retried commit is answered as done; an abort of a committed transaction is not.
        #expect(states.end("worker", producerID: id, producerEpoch: 0, commit: true, now: 22) == .respond(.none))
        #expect(
            states.end("worker", producerID: id, producerEpoch: 0, commit: false, now: 22)
                == .respond(.invalidTransactionState)
        )
    }

    @Test("EndTxn with nothing open is INVALID_TXN_STATE; unknown ids and producer ids are INVALID_PRODUCER_ID_MAPPING")
    mutating func invalidEnds() {
        _ = initialize()
        let id = current().producerID
        #expect(
            states.end("worker", producerID: id, producerEpoch: 0, commit: true, now: 1)
                == .respond(.invalidTransactionState)
        )
        #expect(
            states.end("nobody", producerID: id, producerEpoch: 0, commit: true, now: 1)
                == .respond(.invalidProducerIDMapping)
        )
        #expect(
            states.addPartitions("worker", producerID: id + 7, producerEpoch: 0, partitions: [orders], now: 1)
                == .respond(.invalidProducerIDMapping)
        )
        // Offsets for a group the transaction never added are refused.
        run(states.addPartitions("worker", producerID: id, producerEpoch: 0, partitions: [orders], now: 1))
        #expect(
            states.commitOffsets("worker", producerID: id, producerEpoch: 0, group: "g", offsets: [:], now: 1)
                == .respond(.invalidTransactionState)
        )
    }

    @Test("a second producer with the same transactional id fences the first and aborts its open transaction")
    mutating func fencing() {
        _ = initialize()
        let id = current().producerID
        run(
            states.addPartitions(
                "worker",
                producerID: id,
                producerEpoch: 0,
                partitions: [orders, notifications],
                now: 1
            )
        )
        // The new producer's InitProducerId aborts at a bumped epoch and asks it to retry.
        let step = states.initProducerID("worker", timeoutMs: 10_000, now: 2) {
            Issue.record("no new id")
            return -1
        }
        guard case .end(let end, .concurrentTransactions) = step else {
            Issue.record("expected an abort, got \(step)")
            return
        }
        #expect(!end.commit && end.prepared.producerEpoch == 1 && end.prepared.partitions == [orders, notifications])
        run(step)
        #expect(initialize(now: 3) == .none)
        #expect(current().producerEpoch == 2 && current().state == .empty)
        // The old producer, at epoch 0, is fenced everywhere.
        #expect(
            states.addPartitions("worker", producerID: id, producerEpoch: 0, partitions: [orders], now: 4)
                == .respond(.producerFenced)
        )
        #expect(
            states.end("worker", producerID: id, producerEpoch: 0, commit: true, now: 4) == .respond(.producerFenced)
        )
        #expect(states.produceRefusal(producerID: id, producerEpoch: 0, partition: orders) == .invalidProducerEpoch)
    }

    @Test(
        "a transaction open longer than its timeout is aborted at a bumped epoch; the producer's own abort is then done"
    )
    mutating func timeout() {
        _ = initialize(timeoutMs: 1_000)
        let id = current().producerID
        run(states.addPartitions("worker", producerID: id, producerEpoch: 0, partitions: [orders], now: 100))
        #expect(states.expired(now: 1_100).isEmpty)
        let expired = states.expired(now: 1_101)
        #expect(expired.count == 1)
        #expect(expired.first?.prepared.state == .prepareAbort && expired.first?.prepared.producerEpoch == 1)
        // Not twice while the first abort is under way.
        #expect(states.expired(now: 5_000).isEmpty)
        for end in expired { run(.end(end, then: .none)) }
        #expect(current().state == .completeAbort)
        #expect(states.end("worker", producerID: id, producerEpoch: 0, commit: false, now: 2_000) == .respond(.none))
        #expect(
            states.end("worker", producerID: id, producerEpoch: 0, commit: true, now: 2_000)
                == .respond(.producerFenced)
        )
    }

    @Test("produce is allowed only into an open transaction that added the partition, at the current epoch")
    mutating func produceChecks() {
        _ = initialize()
        let id = current().producerID
        #expect(states.produceRefusal(producerID: id, producerEpoch: 0, partition: orders) == .invalidTransactionState)
        run(states.addPartitions("worker", producerID: id, producerEpoch: 0, partitions: [orders], now: 1))
        #expect(states.produceRefusal(producerID: id, producerEpoch: 0, partition: orders) == nil)
        #expect(
            states.produceRefusal(producerID: id, producerEpoch: 0, partition: notifications)
                == .invalidTransactionState
        )
        #expect(states.produceRefusal(producerID: 99, producerEpoch: 0, partition: orders) == .invalidProducerIDMapping)
    }

    @Test("after a crash, ends that were prepared are finished, and a failed write frees the id")
    mutating func recovery() {
        _ = initialize()
        let id = current().producerID
        run(states.addPartitions("worker", producerID: id, producerEpoch: 0, partitions: [orders], now: 1))
        guard case .end(let end, _) = states.end("worker", producerID: id, producerEpoch: 0, commit: true, now: 2)
        else {
            Issue.record("expected an end")
            return
        }
        states.stored(end.prepared)
        // The broker dies here; at the next start the log replays the prepared state.
        var restarted = TransactionStates(maxTimeoutMs: 60_000, transactions: [end.prepared])
        let resumed = restarted.interruptedEnds(now: 50)
        #expect(resumed.count == 1 && resumed.first?.commit == true && resumed.first?.prepared.partitions == [orders])
        #expect(restarted.interruptedEnds(now: 51).isEmpty, "not resumed twice while under way")
        restarted.failed("worker")
        #expect(restarted.interruptedEnds(now: 52).count == 1, "retried after a failure")
    }

    @Test("metadata round-trips through the transaction log's encoding")
    func encoding() throws {
        var metadata = TransactionMetadata(
            transactionalID: "worker-7",
            producerID: 4242,
            producerEpoch: 3,
            lastProducerEpoch: 2,
            timeoutMs: 60_000,
            state: .ongoing,
            startTimestamp: 1_700_000_000_000,
            lastUpdateTimestamp: 1_700_000_000_500
        )
        metadata.partitions = [TopicPartition("a", 0), TopicPartition("b", 3)]
        metadata.groups = ["workers"]
        metadata.pendingOffsets = [
            "workers": [TopicPartition("a", 0): CommittedOffset(offset: 9, metadata: "m", commitTimestamp: 5)]
        ]
        #expect(try TransactionMetadata.decode(transactionalID: "worker-7", from: metadata.encode()) == metadata)
        #expect(
            TransactionState.allCases.map(\.description) == [
                "Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead",
                "PrepareEpochFence",
            ]
        )
    }
}
