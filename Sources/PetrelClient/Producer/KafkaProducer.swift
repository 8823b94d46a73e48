import Logging
import NIOCore
import PetrelProtocol
import ServiceLifecycle
import Synchronization

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
    private let accumulator: Mutex<RecordAccumulator>
    private let state = Mutex(State())
    private let wakeup = WakeupSignal()
    private let reports: AsyncStream<[DeliveryReport]>.Continuation
    /// The outcome of every record given to `send(_:)`, in the order they complete.
    public let deliveryReports: DeliveryReports

    private struct State {
        var nextID: UInt64 = 1
        var flushRequested = 0
        var closing = false
        var flushWaiters: [CheckedContinuation<Void, Never>] = []
        var roomWaiters: [CheckedContinuation<Void, Never>] = []
    }

    public init(configuration: KafkaProducerConfiguration, logger: Logger = Logger(label: "petrel.producer")) {
        self.configuration = configuration
        self.logger = logger
        self.cluster = ClusterConnections(
            bootstrap: configuration.bootstrap, clientID: configuration.clientID,
            requestTimeout: .milliseconds(configuration.requestTimeoutMs), security: configuration.security)
        self.accumulator = Mutex(RecordAccumulator(configuration: configuration))
        (self.deliveryReports, self.reports) = DeliveryReports.makeStream()
    }

    /// Runs a producer for the duration of `body`, then delivers what is left and stops.
    public static func withProducer<Result: Sendable>(
        _ configuration: KafkaProducerConfiguration, logger: Logger = Logger(label: "petrel.producer"),
        _ body: (KafkaProducer) async throws -> Result
    ) async throws -> Result {
        let producer = KafkaProducer(configuration: configuration, logger: logger)
        return try await withRunningClient(
            run: { try await producer.run() }, finish: { await producer.shutDown() }, cancelAfterFailure: true
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
        let id = state.withLock { state -> UInt64 in
            defer { state.nextID += 1 }
            return state.nextID
        }
        append(record, partition: partition, waiter: .report(id))
        return id
    }

    /// Sends a record and returns where it was stored, once the broker acknowledged it.
    public func sendAndWait(_ record: ProducerRecord) async throws -> RecordMetadata {
        let partition = try await partition(for: record)
        return try await withCheckedThrowingContinuation { continuation in
            append(record, partition: partition, waiter: .awaiting(continuation))
        }
    }

    /// Picks the record's partition once there is buffer room. The common case does not suspend: the
    /// producer is open, there is room and the topic's layout is known.
    private func partition(for record: ProducerRecord) async throws -> Int32 {
        if state.withLock({ $0.closing }) { throw KafkaClientError.invalidArgument("the producer is shutting down") }
        if accumulator.withLock({ $0.bufferedBytes < configuration.bufferBytes }),
            let layout = cluster.cachedLayout(of: record.topic)
        {
            return try partition(for: record, in: layout)
        }
        try await waitForRoom()
        return try partition(for: record, in: try await topicLayout(record.topic))
    }

    private func append(_ record: ProducerRecord, partition: Int32, waiter: DeliveryWaiter) {
        let now = wallClockMillis()
        let wake = accumulator.withLock {
            $0.append(record, partition: partition, timestamp: record.timestamp ?? now, waiter: waiter, now: now)
        }
        if wake { wakeup.signal() }
    }

    private func partition(for record: ProducerRecord, in layout: TopicLayout) throws -> Int32 {
        if let partition = record.partition {
            guard partition >= 0, Int(partition) < layout.partitionCount else {
                throw KafkaClientError.invalidArgument("\(record.topic) has no partition \(partition)")
            }
            return partition
        }
        if let key = record.key { return Partitioner.partition(forKey: key, partitionCount: layout.partitionCount) }
        return accumulator.withLock { accumulator in
            if let sticky = accumulator.sticky[record.topic], Int(sticky) < layout.partitionCount { return sticky }
            let chosen = Int32.random(in: 0..<Int32(layout.partitionCount))
            accumulator.sticky[record.topic] = chosen
            return chosen
        }
    }

    /// The topic's layout. A topic just auto-created may need a moment before it has leaders, and a
    /// broker may be restarting: retriable failures are retried for up to `maxBlockMs`.
    private func topicLayout(_ topic: String) async throws -> TopicLayout {
        let deadline = wallClockMillis() + configuration.maxBlockMs
        var attempt = 0
        while true {
            do {
                return try await cluster.layout(of: topic, refresh: attempt > 0, create: configuration.autoCreateTopics)
            } catch {
                attempt += 1
                guard let failure = error as? KafkaClientError, failure.isRetriable, wallClockMillis() < deadline else { throw error }
                if attempt == 1 { configuration.onWaitingForCluster?(failure) }
                let backoff = min(configuration.retryBackoffMs << min(attempt - 1, 6), configuration.maxRetryBackoffMs)
                try await Task.sleep(for: .milliseconds(backoff))
            }
        }
    }

    private func waitForRoom() async throws {
        while accumulator.withLock({ $0.bufferedBytes >= configuration.bufferBytes }) {
            await withCheckedContinuation { continuation in
                let roomNow = accumulator.withLock { $0.bufferedBytes < configuration.bufferBytes }
                if roomNow {
                    continuation.resume()
                } else {
                    state.withLock { $0.roomWaiters.append(continuation) }
                }
            }
        }
    }

    /// Sends everything queued now, without waiting for linger, and returns once all of it is
    /// acknowledged (or has failed).
    public func flush() async {
        await withCheckedContinuation { continuation in
            let done = accumulator.withLock { $0.isEmpty }
            if done {
                continuation.resume()
                return
            }
            state.withLock {
                $0.flushRequested += 1
                $0.flushWaiters.append(continuation)
            }
            wakeup.signal()
        }
    }

    /// Stops taking records, delivers what is queued, and lets `run()` return.
    public func shutDown() async {
        state.withLock { $0.closing = true }
        wakeup.signal()
        await flush()
    }

    // MARK: - The sender

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                await sendUntilClosed(group: &group)
            }
        } onGracefulShutdown: {
            self.state.withLock { $0.closing = true }
            self.wakeup.signal()
        }
        await cluster.close()
        reports.finish()
    }

    private func sendUntilClosed(group: inout DiscardingTaskGroup) async {
        if configuration.idempotence { await initProducerID() }
        while true {
            let (closing, force) = state.withLock { ($0.closing, $0.flushRequested > 0 || $0.closing) }
            let now = wallClockMillis()
            let drained: (batches: [SealedBatch], nextDeadline: Int64?)
            do {
                drained = try accumulator.withLock { try $0.drainReady(now: now, force: force) }
            } catch {
                logger.error("encoding a batch failed", metadata: ["error": "\(error)"])
                return
            }
            if closing && accumulator.withLock({ $0.isEmpty }) { return }
            if Task.isCancelled {
                failEverything(KafkaClientError.connectionClosed)
                return
            }
            if drained.batches.isEmpty {
                let timeout = drained.nextDeadline.map { TimeAmount.milliseconds(max(1, $0 - now)) }
                await wakeup.wait(timeout: timeout ?? .seconds(1))
                continue
            }
            for (node, batches) in await groupByLeader(drained.batches) {
                group.addTask { await self.deliver(batches, to: node) }
            }
        }
    }

    /// Gets a producer id and epoch for idempotence, retrying until the cluster answers.
    private func initProducerID() async {
        var backoff = configuration.retryBackoffMs
        while !Task.isCancelled {
            do {
                let response = try await cluster.any().send(
                    InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: 60_000), maximumVersion: 4)
                if response.errorCode == 0 {
                    accumulator.withLock {
                        $0.producerID = response.producerId
                        $0.producerEpoch = response.producerEpoch
                    }
                    return
                }
                logger.warning("InitProducerId failed", metadata: ["error": "\(ErrorCode(rawValue: response.errorCode))"])
            } catch {
                logger.warning("InitProducerId failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(backoff))
            backoff = min(backoff * 2, configuration.maxRetryBackoffMs)
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
        defer { wakeup.signal() }
        let byTopic = Dictionary(grouping: batches, by: \.partition.topic)
        let request = ProduceRequest(
            acks: configuration.acks.rawValue, timeoutMs: Int32(configuration.requestTimeoutMs),
            topicData: byTopic.keys.sorted().map { topic in
                .init(name: topic, partitionData: byTopic[topic]!.map { .init(index: $0.partition.partition, records: $0.bytes) })
            })
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
                for partition in topic.partitionResponses { answers[TopicPartition(topic.name, partition.index)] = partition }
            }
            for batch in batches {
                guard let answer = answers[batch.partition] else {
                    retryOrFail(batch, error: .unexpectedResponse("no answer for \(batch.partition)"))
                    continue
                }
                let code = ErrorCode(rawValue: answer.errorCode)
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
                topic: batch.partition.topic, partition: batch.partition.partition,
                offset: baseOffset < 0 ? -1 : baseOffset + Int64(index), timestamp: record.timestamp)
            reports.resolve(record.waiter, .success(metadata))
        }
        reports.send(to: self.reports)
        finished(batch)
    }

    private func retryOrFail(_ batch: SealedBatch, error: KafkaClientError) {
        let now = wallClockMillis()
        if error.isRetriable && now < batch.deadline && !Task.isCancelled {
            let backoff = min(configuration.retryBackoffMs << min(batch.attempts, 10), configuration.maxRetryBackoffMs)
            logger.debug("retrying a batch", metadata: ["partition": "\(batch.partition)", "error": "\(error)", "attempt": "\(batch.attempts + 1)"])
            accumulator.withLock { $0.requeue(batch, now: now, backoff: backoff) }
            return
        }
        logger.warning("a batch could not be delivered", metadata: ["partition": "\(batch.partition)", "error": "\(error)"])
        fail(batch.records, error)
        finished(batch)
    }

    /// Resumes or reports each record as failed with `error`.
    private func fail(_ records: [PendingRecord], _ error: KafkaClientError) {
        var reports = DeliveryReportBatch(capacity: records.count)
        for record in records { reports.resolve(record.waiter, .failure(error)) }
        reports.send(to: self.reports)
    }

    private func finished(_ batch: SealedBatch) {
        let (empty, hasRoom) = accumulator.withLock {
            $0.finish(batch)
            return ($0.isEmpty, $0.bufferedBytes < configuration.bufferBytes)
        }
        let (flushed, roomed) = state.withLock { state -> ([CheckedContinuation<Void, Never>], [CheckedContinuation<Void, Never>]) in
            var flushed: [CheckedContinuation<Void, Never>] = []
            if empty {
                flushed = state.flushWaiters
                state.flushWaiters = []
                state.flushRequested = 0
            }
            var roomed: [CheckedContinuation<Void, Never>] = []
            if hasRoom {
                roomed = state.roomWaiters
                state.roomWaiters = []
            }
            return (flushed, roomed)
        }
        flushed.forEach { $0.resume() }
        roomed.forEach { $0.resume() }
    }

    /// When the producer stops for good: everything still queued fails.
    private func failEverything(_ error: KafkaClientError) {
        let queued = accumulator.withLock { accumulator -> [PendingRecord] in
            let records = accumulator.queues.values.flatMap { $0.unsent.flatMap(\.records) + $0.retries.flatMap(\.records) }
            accumulator = RecordAccumulator(configuration: configuration)
            return records
        }
        fail(queued, error)
        let waiters = state.withLock { state in
            defer { state.flushWaiters = []; state.roomWaiters = [] }
            return state.flushWaiters + state.roomWaiters
        }
        waiters.forEach { $0.resume() }
    }
}

/// The outcomes of one batch's records: awaiting senders are resumed at once, reports are handed to
/// `deliveryReports` together.
private struct DeliveryReportBatch {
    private var reports: [DeliveryReport] = []

    init(capacity: Int) {
        reports.reserveCapacity(capacity)
    }

    mutating func resolve(_ waiter: DeliveryWaiter, _ result: Result<RecordMetadata, KafkaClientError>) {
        switch waiter {
        case .awaiting(let continuation): continuation.resume(with: result.mapError { $0 as any Error })
        case .report(let id): reports.append(DeliveryReport(id: id, result: result))
        }
    }

    func send(to continuation: AsyncStream<[DeliveryReport]>.Continuation) {
        if !reports.isEmpty { continuation.yield(reports) }
    }
}
