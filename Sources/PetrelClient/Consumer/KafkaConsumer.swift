import Logging
import NIOCore
import PetrelProtocol
import ServiceLifecycle

/// Reads records from a Kafka-protocol cluster, as a member of a consumer group (membership,
/// rebalances and heartbeats run in the background) or from partitions it picks itself.
///
/// Run it as a swift-service-lifecycle `Service` and read `messages`:
///
///     let consumer = KafkaConsumer(configuration: .init(
///         bootstrap: [BrokerAddress("127.0.0.1:9092")!], source: .group(id: "workers", topics: ["orders"])))
///     try await withThrowingTaskGroup(of: Void.self) { group in
///         group.addTask { try await consumer.run() }
///         for try await record in consumer.messages { print(record.offset, record.valueString ?? "") }
///     }
///
/// On graceful shutdown (or `stop()`) it commits what was read (with auto-commit), leaves the group and
/// ends `messages`.
public final class KafkaConsumer: Service, Sendable {
    public let configuration: KafkaConsumerConfiguration
    let cluster: ClusterConnections
    let logger: Logger
    /// Everything that changes, behind one lock: assignment, membership, buffered records and waits.
    let machine: LockedStateMachine<ConsumerStateMachine>
    private let eventContinuation: AsyncStream<KafkaConsumerEvent>.Continuation
    /// Assignments and revocations, as they happen.
    public let events: AsyncStream<KafkaConsumerEvent>

    public init(configuration: KafkaConsumerConfiguration, logger: Logger = Logger(label: "petrel.consumer")) {
        self.configuration = configuration
        self.logger = logger
        self.cluster = ClusterConnections(
            bootstrap: configuration.bootstrap,
            clientID: configuration.clientID,
            requestTimeout: configuration.requestTimeout.timeAmount,
            security: configuration.security
        )
        self.machine = LockedStateMachine(ConsumerStateMachine(capacity: configuration.bufferedRecords))
        (self.events, self.eventContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1_000))
    }

    /// The records, in order per partition. Read them from one task.
    public var messages: KafkaConsumerMessages { KafkaConsumerMessages(machine: machine) }

    /// The next record, waiting at most `timeout`; nil if none came (or the consumer stopped). Unlike
    /// racing `messages` against a timer, a record is never lost to the timeout.
    public func nextRecord(timeout: Duration) async throws -> ConsumerRecord? {
        try await machine.nextRecord(timeout: timeout)
    }

    /// The partitions currently assigned to this consumer.
    public var assignment: [TopicPartition] { machine.withLock { $0.positions.keys.sorted() } }

    /// The offset of the next record `messages` hands out from `partition` (Kafka's position); nil while
    /// the partition is not assigned. Every record before it was handed out or is not in the log: records
    /// compacted away, control records. Reading until it reaches the partition's end offset
    /// (`KafkaAdmin.endOffsets`) reads the partition to its end, also a compacted one whose last offsets
    /// hold no record any more.
    public func position(of partition: TopicPartition) -> Int64? {
        machine.withLock { $0.position(of: partition) }
    }

    var groupID: String? {
        if case .group(let id, _) = configuration.source { return id }
        return nil
    }

    func emit(_ event: KafkaConsumerEvent) {
        eventContinuation.yield(event)
    }

    // MARK: - Lifecycle

    public func run() async throws {
        do {
            try await withGracefulShutdownHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    switch configuration.source {
                    case .group(let id, let topics):
                        group.addTask {
                            switch self.configuration.groupProtocol {
                            case .classic: try await self.runMembership(group: id, topics: topics)
                            case .consumer: try await self.runConsumerProtocol(group: id, topics: topics)
                            }
                        }
                        if configuration.autoCommit { group.addTask { await self.runAutoCommit() } }
                    case .partitions(let starts):
                        try await assignManually(starts)
                    }
                    group.addTask { await self.runFetcher() }
                    group.addTask { _ = await self.machine.park(\.stopping) { $0.stopRequested } }
                    // The first task to end (normally the stop signal) ends them all.
                    try await group.next()
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                self.stop()
            }
        } catch is CancellationError {
            // A cancelled run still leaves the group properly.
        } catch {
            await finishUp()
            machine.withLock { $0.finish(error: error) }.resume()
            throw error
        }
        await finishUp()
        machine.withLock { $0.finish(error: nil) }.resume()
    }

    /// Asks `run()` to finish: commit (with auto-commit), leave the group, end `messages`.
    public func stop() {
        machine.withLock { $0.stop() }.resume()
    }

    var isStopping: Bool { machine.withLock { $0.isStopping } }

    private func finishUp() async {
        if groupID != nil {
            if configuration.autoCommit { try? await commit() }
            await leaveGroup()
        }
        eventContinuation.finish()
        await cluster.close()
    }

    /// Runs a consumer for the duration of `body`, then stops it.
    public static func withConsumer<Result: Sendable>(
        _ configuration: KafkaConsumerConfiguration,
        logger: Logger = Logger(label: "petrel.consumer"),
        _ body: (KafkaConsumer) async throws -> Result
    ) async throws -> Result {
        let consumer = KafkaConsumer(configuration: configuration, logger: logger)
        // After a failure the consumer still leaves its group properly: no cancellation.
        return try await withRunningClient(
            run: { try await consumer.run() },
            finish: { consumer.stop() },
            cancelAfterFailure: false
        ) {
            try await body(consumer)
        }
    }

    // MARK: - Flow control

    /// Stops fetching these partitions (records already fetched are still handed out).
    public func pause(_ partitions: [TopicPartition]) {
        machine.withLock { $0.pause(partitions) }
    }

    public func resume(_ partitions: [TopicPartition]) {
        machine.withLock { $0.resume(partitions) }.resume()
    }

    /// Moves a partition's position; records already buffered for it are dropped.
    public func seek(_ partition: TopicPartition, to start: KafkaConsumerConfiguration.StartOffset) async throws {
        guard machine.withLock({ $0.positions[partition] != nil }) else {
            throw KafkaClientError.invalidArgument("\(partition) is not assigned to this consumer")
        }
        let offset = try await resolve([partition: start])[partition]!
        machine.withLock { $0.seek(partition, to: offset) }.resume()
    }

    /// Installs an assignment (after a rebalance or at start in manual mode).
    func install(_ positions: [TopicPartition: Int64]) {
        machine.withLock { $0.install(positions) }.resume()
    }

    private func assignManually(_ starts: [TopicPartition: KafkaConsumerConfiguration.StartOffset]) async throws {
        install(try await resolve(starts))
        emit(.assigned(starts.keys.sorted(), generation: -1))
    }
}
