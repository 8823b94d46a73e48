import Logging
import PetrelProtocol
import PetrelStorage
import Synchronization

/// The transaction coordinator of this broker (every transactional id's): `TransactionStates` decides,
/// this carries the steps out — the transaction log's writes, the markers in every partition of a
/// transaction, the consumer offsets committed with it — and aborts transactions that outlive their
/// timeout. Thread-safe.
final class TransactionCoordinator: Sendable {
    private let states: Mutex<TransactionStates>
    private let log: TransactionLog
    private let logs: LogManager
    private let offsets: OffsetStore
    private let appendNotifier: AppendNotifier
    private let producerIDs: ProducerIDAllocator
    private let logger: Logger
    private let metrics: TransactionMetrics
    private let clock: @Sendable () -> Int64

    init(
        log: TransactionLog,
        logs: LogManager,
        offsets: OffsetStore,
        appendNotifier: AppendNotifier,
        producerIDs: ProducerIDAllocator,
        maxTimeoutMs: Int32,
        logger: Logger,
        metrics: TransactionMetrics = .disabled,
        clock: @escaping @Sendable () -> Int64
    ) throws {
        self.metrics = metrics
        self.log = log
        self.logs = logs
        self.offsets = offsets
        self.appendNotifier = appendNotifier
        self.producerIDs = producerIDs
        self.logger = logger
        self.clock = clock
        self.states = Mutex(TransactionStates(maxTimeoutMs: maxTimeoutMs, transactions: try log.replay()))
    }

    // MARK: - Requests

    /// InitProducerId with a transactional id: the producer id and epoch to use, or an error.
    func initProducerID(
        _ id: String,
        timeoutMs: Int32,
        producerID: Int64,
        producerEpoch: Int16
    ) async -> (ErrorCode, Int64, Int16) {
        let step: TransactionStates.Step
        do {
            step = try states.withLock { states in
                try states.initProducerID(
                    id,
                    timeoutMs: timeoutMs,
                    producerID: producerID,
                    producerEpoch: producerEpoch,
                    now: clock(),
                    newProducerID: producerIDs.next
                )
            }
        } catch {
            logger.error("allocating a producer id failed", metadata: ["error": "\(error)"])
            return (.kafkaStorageError, -1, -1)
        }
        let code = await run(step)
        guard code == .none, let metadata = transaction(id) else { return (code, -1, -1) }
        return (code, metadata.producerID, metadata.producerEpoch)
    }

    func addPartitions(
        _ id: String,
        producerID: Int64,
        producerEpoch: Int16,
        partitions: Set<TopicPartition>
    ) async
        -> ErrorCode
    {
        await run(
            states.withLock {
                $0.addPartitions(
                    id,
                    producerID: producerID,
                    producerEpoch: producerEpoch,
                    partitions: partitions,
                    now: clock()
                )
            }
        )
    }

    func addOffsets(_ id: String, producerID: Int64, producerEpoch: Int16, group: String) async -> ErrorCode {
        await run(
            states.withLock {
                $0.addOffsets(id, producerID: producerID, producerEpoch: producerEpoch, group: group, now: clock())
            }
        )
    }

    func commitOffsets(
        _ id: String,
        producerID: Int64,
        producerEpoch: Int16,
        group: String,
        offsets: [TopicPartition: CommittedOffset]
    ) async -> ErrorCode {
        await run(
            states.withLock {
                $0.commitOffsets(
                    id,
                    producerID: producerID,
                    producerEpoch: producerEpoch,
                    group: group,
                    offsets: offsets,
                    now: clock()
                )
            }
        )
    }

    func end(_ id: String, producerID: Int64, producerEpoch: Int16, commit: Bool) async -> ErrorCode {
        await run(
            states.withLock {
                $0.end(id, producerID: producerID, producerEpoch: producerEpoch, commit: commit, now: clock())
            }
        )
    }

    // MARK: - Questions

    func transaction(_ id: String) -> TransactionMetadata? { states.withLock { $0.transactions[id] } }

    var allTransactions: [TransactionMetadata] {
        states.withLock { Array($0.transactions.values) }.sorted { $0.transactionalID < $1.transactionalID }
    }

    func produceRefusal(producerID: Int64, producerEpoch: Int16, partition: TopicPartition) -> ErrorCode? {
        states.withLock {
            $0.produceRefusal(producerID: producerID, producerEpoch: producerEpoch, partition: partition)
        }
    }

    func hasPendingOffsets(group: String, partition: TopicPartition) -> Bool {
        states.withLock { $0.hasPendingOffsets(group: group, partition: partition) }
    }

    // MARK: - Timers

    /// Until cancelled, every `intervalMs`: finishes transactions whose end was interrupted (a crash, a
    /// failed write) and aborts those open longer than their timeout.
    func runTimers(intervalMs: Int64) async {
        while !Task.isCancelled {
            let now = clock()
            let (interrupted, expired) = states.withLock { ($0.interruptedEnds(now: now), $0.expired(now: now)) }
            for end in expired {
                logger.notice(
                    "aborting a transaction that outlived its timeout",
                    metadata: [
                        "transactionalID": "\(end.prepared.transactionalID)",
                        "producerID": "\(end.prepared.producerID)", "timeoutMs": "\(end.prepared.timeoutMs)",
                    ]
                )
            }
            for end in interrupted + expired { _ = await run(.end(end, then: .none)) }
            try? await Task.sleep(for: .milliseconds(intervalMs))
        }
    }

    func close() throws {
        try log.close()
    }

    // MARK: - Carrying steps out

    private func run(_ step: TransactionStates.Step) async -> ErrorCode {
        switch step {
        case .respond(let code):
            return code
        case .store(let metadata, let code):
            do {
                try await log.write(metadata)
                states.withLock { $0.stored(metadata) }
                return code
            } catch {
                states.withLock { $0.failed(metadata.transactionalID) }
                logger.error(
                    "writing the transaction log failed",
                    metadata: ["transactionalID": "\(metadata.transactionalID)", "error": "\(error)"]
                )
                return .coordinatorNotAvailable
            }
        case .end(let end, let code):
            do {
                try await finish(end)
                return code
            } catch {
                states.withLock { $0.failed(end.prepared.transactionalID) }
                logger.error(
                    "ending a transaction failed; it is retried",
                    metadata: ["transactionalID": "\(end.prepared.transactionalID)", "error": "\(error)"]
                )
                return .coordinatorNotAvailable
            }
        }
    }

    /// The two-phase end: the decision is durable before any marker is written, so a crash in between
    /// is finished at the next start (`interruptedEnds`); markers and offset commits written twice are
    /// harmless.
    private func finish(_ end: TransactionStates.TransactionEnd) async throws {
        let prepared = end.prepared
        try await log.write(prepared)
        states.withLock { $0.stored(prepared) }
        let marker = ControlRecord(kind: end.commit ? .commit : .abort)
        for partition in prepared.partitions.sorted() {
            guard let partitionLog = logs.partition(topic: partition.topic, partition: partition.partition) else {
                continue  // the topic was deleted meanwhile
            }
            do {
                let offset = try partitionLog.appendMarker(
                    marker,
                    producerID: prepared.producerID,
                    producerEpoch: prepared.producerEpoch,
                    now: clock()
                )
                if partitionLog.config.flushPolicy == .always {
                    try await partitionLog.waitUntilDurable(through: offset)
                }
                appendNotifier.notifyAppend(to: partition)
            } catch let refused as PartitionLog.MarkerRefused {
                logger.warning("a transaction marker was refused", metadata: ["reason": "\(refused)"])
            }
        }
        if end.commit {
            for (group, committed) in prepared.pendingOffsets.sorted(by: { $0.key < $1.key }) {
                try await offsets.commit(group: group, committed)
            }
        }
        try await log.write(end.completed)
        states.withLock { $0.stored(end.completed) }
        switch end.cause {
        case .requested, .resumed: (end.commit ? metrics.committed : metrics.aborted).increment()
        case .timedOut: metrics.timedOut.increment()
        case .fenced: metrics.fenced.increment()
        }
    }
}
