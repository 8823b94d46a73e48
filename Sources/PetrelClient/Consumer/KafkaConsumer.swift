import Logging
import NIOCore
import PetrelProtocol
import ServiceLifecycle
import Synchronization

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
    let buffer: RecordBuffer
    let state = Mutex(ConsumerState())
    /// Wakes the fetcher when the assignment or positions change.
    let assignmentChanged = WakeupSignal()
    let stopSignal = WakeupSignal()
    private let eventContinuation: AsyncStream<KafkaConsumerEvent>.Continuation
    /// Assignments and revocations, as they happen.
    public let events: AsyncStream<KafkaConsumerEvent>

    struct ConsumerState {
        /// Assigned partitions and the next offset to fetch from each.
        var positions: [TopicPartition: Int64] = [:]
        var paused: Set<TopicPartition> = []
        var memberID = ""
        var generation: Int32 = -1
        var coordinator: Int32?
        var stopping = false
        /// Offsets committed so far (to skip commits that would change nothing).
        var committed: [TopicPartition: Int64] = [:]
    }

    public init(configuration: KafkaConsumerConfiguration, logger: Logger = Logger(label: "petrel.consumer")) {
        self.configuration = configuration
        self.logger = logger
        self.cluster = ClusterConnections(
            bootstrap: configuration.bootstrap, clientID: configuration.clientID,
            requestTimeout: .milliseconds(configuration.requestTimeoutMs), security: configuration.security)
        self.buffer = RecordBuffer(capacity: configuration.bufferedRecords)
        (self.events, self.eventContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1_000))
    }

    /// The records, in order per partition. Read them from one task.
    public var messages: KafkaConsumerMessages { KafkaConsumerMessages(buffer: buffer) }

    /// The next record, waiting at most `timeout`; nil if none came (or the consumer stopped). Unlike
    /// racing `messages` against a timer, a record is never lost to the timeout.
    public func nextRecord(timeout: Duration) async throws -> ConsumerRecord? {
        try await buffer.next(timeout: timeout)
    }

    /// The partitions currently assigned to this consumer.
    public var assignment: [TopicPartition] { state.withLock { $0.positions.keys.sorted() } }

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
                        group.addTask { try await self.runMembership(group: id, topics: topics) }
                        if configuration.autoCommit { group.addTask { await self.runAutoCommit() } }
                    case .partitions(let starts):
                        try await assignManually(starts)
                    }
                    group.addTask { await self.runFetcher() }
                    group.addTask { await self.stopSignal.wait(timeout: nil) }
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
            buffer.finish(error: error)
            throw error
        }
        await finishUp()
        buffer.finish()
    }

    /// Asks `run()` to finish: commit (with auto-commit), leave the group, end `messages`.
    public func stop() {
        state.withLock { $0.stopping = true }
        stopSignal.signal()
    }

    var isStopping: Bool { state.withLock { $0.stopping } }

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
        _ configuration: KafkaConsumerConfiguration, logger: Logger = Logger(label: "petrel.consumer"),
        _ body: (KafkaConsumer) async throws -> Result
    ) async throws -> Result {
        let consumer = KafkaConsumer(configuration: configuration, logger: logger)
        // After a failure the consumer still leaves its group properly: no cancellation.
        return try await withRunningClient(
            run: { try await consumer.run() }, finish: { consumer.stop() }, cancelAfterFailure: false
        ) {
            try await body(consumer)
        }
    }

    // MARK: - Flow control

    /// Stops fetching these partitions (records already fetched are still handed out).
    public func pause(_ partitions: [TopicPartition]) {
        state.withLock { $0.paused.formUnion(partitions) }
    }

    public func resume(_ partitions: [TopicPartition]) {
        state.withLock { $0.paused.subtract(partitions) }
        assignmentChanged.signal()
    }

    /// Moves a partition's position; records already buffered for it are dropped.
    public func seek(_ partition: TopicPartition, to start: KafkaConsumerConfiguration.StartOffset) async throws {
        guard state.withLock({ $0.positions[partition] != nil }) else {
            throw KafkaClientError.invalidArgument("\(partition) is not assigned to this consumer")
        }
        let offset = try await resolve([partition: start])[partition]!
        state.withLock { $0.positions[partition] = offset }
        buffer.newEpoch { $0 != partition }
        buffer.forget([partition])
        assignmentChanged.signal()
    }

    /// Installs an assignment (after a rebalance or at start in manual mode).
    func install(_ positions: [TopicPartition: Int64]) {
        state.withLock { state in
            state.positions = positions
            state.paused = state.paused.intersection(positions.keys)
        }
        buffer.newEpoch { positions[$0] != nil }
        assignmentChanged.signal()
    }

    private func assignManually(_ starts: [TopicPartition: KafkaConsumerConfiguration.StartOffset]) async throws {
        install(try await resolve(starts))
        emit(.assigned(starts.keys.sorted(), generation: -1))
    }
}
