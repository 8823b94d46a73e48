import Logging
import NIOCore
import PetrelProtocol
import ServiceLifecycle

/// Publishes records to a Kafka-protocol cluster: batching per partition with linger and size,
/// compression, idempotence (on by default) and retries that keep each partition's order.
///
/// Run it as a swift-service-lifecycle `Service` (its `run()` sends the batches, and on graceful
/// shutdown delivers everything still queued), or scoped with `withProducer`:
///
///     try await KafkaProducer.withProducer(configuration) { producer in
///         let stored = try await producer.sendAndWait(ProducerRecord(topic: "orders", key: "o-1", value: "{}"))
///     }
public final class KafkaProducer: Service, Sendable {
    public let configuration: KafkaProducerConfiguration
    let cluster: ClusterConnections
    let logger: Logger
    /// Everything that changes, behind one lock: records, flushes, room, the sender's wake-ups and the
    /// transaction.
    let machine: LockedStateMachine<ProducerStateMachine>
    private let reports: AsyncStream<[DeliveryReport]>.Continuation
    /// The outcome of every record given to `send(_:)`, in the order they complete.
    public let deliveryReports: DeliveryReports

    public init(configuration: KafkaProducerConfiguration, logger: Logger = Logger(label: "petrel.producer")) {
        self.configuration = configuration
        self.logger = logger
        self.cluster = ClusterConnections(
            bootstrap: configuration.bootstrap,
            clientID: configuration.clientID,
            requestTimeout: configuration.requestTimeout.timeAmount,
            security: configuration.security
        )
        self.machine = LockedStateMachine(ProducerStateMachine(configuration: configuration))
        (self.deliveryReports, self.reports) = DeliveryReports.makeStream()
    }

    /// Runs a producer for the duration of `body`, then delivers what is left and stops.
    public static func withProducer<Result: Sendable>(
        _ configuration: KafkaProducerConfiguration,
        logger: Logger = Logger(label: "petrel.producer"),
        _ body: (KafkaProducer) async throws -> Result
    ) async throws -> Result {
        let producer = KafkaProducer(configuration: configuration, logger: logger)
        return try await withRunningClient(
            run: { try await producer.run() },
            finish: { await producer.shutDown() },
            cancelAfterFailure: true
        ) {
            try await body(producer)
        }
    }

    // MARK: - Sending

    /// Queues a record and returns at once (once there is buffer room) with the id its delivery report
    /// will carry in `deliveryReports`.
    @discardableResult
    public func send(_ record: ProducerRecord) async throws -> UInt64 {
        let partition = try await partition(for: record)
        try await joinTransaction(TopicPartition(record.topic, partition))
        let id = machine.withLock { $0.takeReportID() }
        append(record, partition: partition, waiter: .report(id))
        return id
    }

    /// Sends a record and returns where it was stored, once the broker acknowledged it. A cancelled
    /// task stops waiting (CancellationError); the record, already queued, is still delivered.
    public func sendAndWait(_ record: ProducerRecord) async throws -> RecordMetadata {
        let partition = try await partition(for: record)
        try await joinTransaction(TopicPartition(record.topic, partition))
        let ticket = machine.withLock { $0.deliveries.reserve() }
        append(record, partition: partition, waiter: .awaiting(ticket))
        switch await machine.wait(for: ticket, in: \.deliveries) {
        case .resumed(let result): return try result.get()
        case .cancelled: throw CancellationError()
        case .timedOut: throw KafkaClientError.timedOut("sending a record")  // no deadline is set
        }
    }

    /// Picks the record's partition once there is buffer room. The common case does not suspend: the
    /// producer is open, there is room and the topic's layout is known.
    private func partition(for record: ProducerRecord) async throws -> Int32 {
        let (closing, hasRoom) = machine.withLock { ($0.isClosing, $0.hasRoom) }
        if closing { throw KafkaClientError.invalidArgument("the producer is shutting down") }
        if hasRoom, let layout = cluster.cachedLayout(of: record.topic) {
            return try partition(for: record, in: layout)
        }
        try await waitForRoom()
        return try partition(for: record, in: try await topicLayout(record.topic))
    }

    private func append(_ record: ProducerRecord, partition: Int32, waiter: DeliveryWaiter) {
        let now = wallClockMillis()
        machine.withLock {
            $0.append(record, partition: partition, timestamp: record.timestamp ?? now, waiter: waiter, now: now)
        }.resume()
    }

    private func partition(for record: ProducerRecord, in layout: TopicLayout) throws -> Int32 {
        if let partition = record.partition {
            guard partition >= 0, Int(partition) < layout.partitionCount else {
                throw KafkaClientError.invalidArgument("\(record.topic) has no partition \(partition)")
            }
            return partition
        }
        if let key = record.key { return Partitioner.partition(forKey: key, partitionCount: layout.partitionCount) }
        return machine.withLock { state in
            if let sticky = state.accumulator.sticky[record.topic], Int(sticky) < layout.partitionCount {
                return sticky
            }
            let chosen = Int32.random(in: 0..<Int32(layout.partitionCount))
            state.accumulator.sticky[record.topic] = chosen
            return chosen
        }
    }

    /// The topic's layout. A topic just auto-created may need a moment before it has leaders, and a
    /// broker may be restarting: retriable failures are retried for up to `maxBlock`.
    private func topicLayout(_ topic: String) async throws -> TopicLayout {
        let deadline = wallClockMillis() + configuration.maxBlock.inMilliseconds
        var attempt = 0
        while true {
            do {
                return try await cluster.layout(of: topic, refresh: attempt > 0, create: configuration.autoCreateTopics)
            } catch {
                attempt += 1
                guard let failure = error as? KafkaClientError, failure.isRetriable, wallClockMillis() < deadline else {
                    throw error
                }
                if attempt == 1 { configuration.onWaitingForCluster?(failure) }
                let backoff = min(
                    configuration.retryBackoff.inMilliseconds << min(attempt - 1, 6),
                    configuration.maxRetryBackoff.inMilliseconds
                )
                try await Task.sleep(for: .milliseconds(backoff))
            }
        }
    }

    /// Waits until the buffer has room (or the producer stops); a cancelled wait throws.
    private func waitForRoom() async throws {
        let outcome = await machine.park(\.room) { state in state.hasRoom || state.isClosing ? () : nil }
        if case .cancelled = outcome { throw CancellationError() }
        if machine.withLock({ $0.isClosing }) {
            throw KafkaClientError.invalidArgument("the producer is shutting down")
        }
    }

    /// Sends everything queued now, without waiting for linger, and returns once all of it is
    /// acknowledged (or has failed), or the calling task is cancelled.
    public func flush() async {
        guard let wakeups = machine.withLock({ $0.requestFlush() }) else { return }
        wakeups.resume()
        _ = await machine.park(\.flushes) { state in state.isEmpty ? () : nil }
    }

    /// Stops taking records, delivers what is queued, and lets `run()` return.
    public func shutDown() async {
        machine.withLock { $0.close() }.resume()
        await flush()
    }

    // MARK: - The sender

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                await sendUntilClosed(group: &group)
            }
        } onGracefulShutdown: {
            self.machine.withLock { $0.close() }.resume()
        }
        await cluster.close()
        reports.finish()
    }

    private func sendUntilClosed(group: inout DiscardingTaskGroup) async {
        // A transactional producer gets its id from its coordinator, in initTransactions().
        if configuration.idempotence && configuration.transactionalID == nil { await initProducerID() }
        while true {
            if Task.isCancelled {
                failEverything(KafkaClientError.connectionClosed)
                return
            }
            let now = wallClockMillis()
            let action: ProducerStateMachine.SenderAction
            do {
                action = try machine.withLock { try $0.nextSenderAction(now: now) }
            } catch {
                logger.error("encoding a batch failed", metadata: ["error": "\(error)"])
                failEverything(.unexpectedResponse("encoding a batch failed: \(error)"))
                return
            }
            switch action {
            case .finish:
                return
            case .wait(let until):
                // Woken by a new batch, a finished one, a flush or shutdown; at the latest when the next
                // batch's linger or retry backoff ends (or in a second, to look again).
                let wait = Duration.milliseconds(until.map { max(1, $0 - now) } ?? 1000)
                _ = await machine.park(\.sender, until: .now + wait) { $0.takeSenderWork() }
            case .send(let batches):
                for (node, batches) in await groupByLeader(batches) {
                    group.addTask { await self.deliver(batches, to: node) }
                }
            }
        }
    }

    /// Gets a producer id and epoch for idempotence, retrying until the cluster answers.
    private func initProducerID() async {
        var backoff = configuration.retryBackoff.inMilliseconds
        while !Task.isCancelled {
            do {
                let response = try await cluster.any().send(
                    InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: 60_000),
                    maximumVersion: 4
                )
                if response.errorCode == ErrorCode.none {
                    machine.withLock {
                        $0.accumulator.producerID = response.producerId
                        $0.accumulator.producerEpoch = response.producerEpoch
                    }
                    return
                }
                logger.warning("InitProducerId failed", metadata: ["error": "\(response.errorCode)"])
            } catch {
                logger.warning("InitProducerId failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(backoff))
            backoff = min(backoff * 2, configuration.maxRetryBackoff.inMilliseconds)
        }
    }

    private func groupByLeader(_ batches: [SealedBatch]) async -> [(Int32, [SealedBatch])] {
        var byNode: [Int32: [SealedBatch]] = [:]
        for batch in batches {
            do {
                let (node, _) = try await cluster.leader(of: batch.partition)
                byNode[node, default: []].append(batch)
            } catch {
                retryOrFail(batch, error: error as? KafkaClientError ?? .unexpectedResponse("\(error)"))
            }
        }
        return byNode.sorted { $0.key < $1.key }
    }

    /// One Produce request to one broker with a batch for each of its partitions.
    private func deliver(_ batches: [SealedBatch], to node: Int32) async {
        let byTopic = Dictionary(grouping: batches, by: \.partition.topic)
        let request = ProduceRequest(
            acks: configuration.acks.rawValue,
            timeoutMs: Int32(clamping: configuration.requestTimeout.inMilliseconds),
            topicData: byTopic.keys.sorted().map { topic in
                .init(
                    name: topic,
                    partitionData: byTopic[topic]!.map { .init(index: $0.partition.partition, records: $0.bytes) }
                )
            }
        )
        do {
            let connection = try await cluster.node(node)
            // v3 is the first with record batches; zstd needs v7. Nothing past v9 is needed.
            let version = try connection.version(for: ProduceRequest.self, maximum: 9)
            guard version >= 3 else { throw KafkaClientError.unsupportedVersion(.produce) }
            if configuration.acks == .none {
                try await connection.sendWithoutResponse(request, version: version)
                for batch in batches { complete(batch, baseOffset: -1) }
                return
            }
            let response = try await connection.send(request, version: version)
            var answers: [TopicPartition: ProduceResponse.TopicProduceResponse.PartitionProduceResponse] = [:]
            for topic in response.responses {
                for partition in topic.partitionResponses {
                    answers[TopicPartition(topic.name, partition.index)] = partition
                }
            }
            for batch in batches {
                guard let answer = answers[batch.partition] else {
                    retryOrFail(batch, error: .unexpectedResponse("no answer for \(batch.partition)"))
                    continue
                }
                let code = answer.errorCode
                switch code {
                case .none:
                    complete(batch, baseOffset: answer.baseOffset)
                case .duplicateSequenceNumber:
                    // Older brokers' way of saying "already stored"; the offset is not known.
                    complete(batch, baseOffset: -1)
                default:
                    if code.isRetriable { cluster.invalidate(topic: batch.partition.topic) }
                    retryOrFail(batch, error: .broker(code, message: answer.errorMessage))
                }
            }
        } catch {
            let failure = error as? KafkaClientError ?? .connectionFailed("\(error)")
            for batch in batches {
                cluster.invalidate(topic: batch.partition.topic)
                retryOrFail(batch, error: failure)
            }
        }
    }

    private func complete(_ batch: SealedBatch, baseOffset: Int64) {
        var reports = DeliveryReportBatch(capacity: batch.records.count)
        for (index, record) in batch.records.enumerated() {
            let metadata = RecordMetadata(
                topic: batch.partition.topic,
                partition: batch.partition.partition,
                offset: baseOffset < 0 ? -1 : baseOffset + Int64(index),
                timestamp: record.timestamp
            )
            reports.resolve(record.waiter, .success(metadata))
        }
        reports.send(to: self.reports, machine: machine)
        finished(batch)
    }

    private func retryOrFail(_ batch: SealedBatch, error: KafkaClientError) {
        let now = wallClockMillis()
        if error.isRetriable && now < batch.deadline && !Task.isCancelled {
            let backoff = min(
                configuration.retryBackoff.inMilliseconds << min(batch.attempts, 10),
                configuration.maxRetryBackoff.inMilliseconds
            )
            logger.debug(
                "retrying a batch",
                metadata: ["partition": "\(batch.partition)", "error": "\(error)", "attempt": "\(batch.attempts + 1)"]
            )
            machine.withLock { $0.requeue(batch, now: now, backoff: backoff) }.resume()
            return
        }
        logger.warning(
            "a batch could not be delivered",
            metadata: ["partition": "\(batch.partition)", "error": "\(error)"]
        )
        fail(batch.records, error)
        finished(batch)
    }

    /// Resumes or reports each record as failed with `error`.
    private func fail(_ records: [PendingRecord], _ error: KafkaClientError) {
        if configuration.transactionalID != nil && !records.isEmpty { transactionFailed(error) }
        var reports = DeliveryReportBatch(capacity: records.count)
        for record in records { reports.resolve(record.waiter, .failure(error)) }
        reports.send(to: self.reports, machine: machine)
    }

    private func finished(_ batch: SealedBatch) {
        machine.withLock { $0.finished(batch) }.resume()
    }

    /// When the producer stops for good: everything still queued fails, and every waiting task goes on.
    private func failEverything(_ error: KafkaClientError) {
        let (records, wakeups) = machine.withLock { $0.failAll() }
        fail(records, error)
        wakeups.resume()
    }
}

/// The outcomes of one batch's records: `sendAndWait` callers are resumed through the state machine
/// (one lock for the batch), reports are handed to `deliveryReports` together.
private struct DeliveryReportBatch {
    private var reports: [DeliveryReport] = []
    private var awaited: [(ParkingLot<DeliveryResult>.Ticket, DeliveryResult)] = []

    init(capacity: Int) {
        reports.reserveCapacity(capacity)
    }

    mutating func resolve(_ waiter: DeliveryWaiter, _ result: DeliveryResult) {
        switch waiter {
        case .awaiting(let ticket): awaited.append((ticket, result))
        case .report(let id): reports.append(DeliveryReport(id: id, result: result))
        }
    }

    func send(
        to continuation: AsyncStream<[DeliveryReport]>.Continuation,
        machine: LockedStateMachine<ProducerStateMachine>
    ) {
        if !awaited.isEmpty {
            machine.withLock { state in
                var wakeups = Wakeups<DeliveryResult>()
                for (ticket, result) in awaited { wakeups.append(state.deliveries.resume(ticket, with: result)) }
                return wakeups
            }.resume()
        }
        if !reports.isEmpty { continuation.yield(reports) }
    }
}
