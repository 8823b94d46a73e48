import NIOCore
import NIOPosix
import PetrelProtocol
import Synchronization

/// Connections to the brokers of a cluster, found through the bootstrap servers and Metadata: one
/// connection per broker, opened when first needed and reopened if it closed. Thread-safe.
final class ClusterConnections: Sendable {
    let bootstrap: [BrokerAddress]
    let clientID: String
    let requestTimeout: TimeAmount
    let security: KafkaClientSecurity
    private let eventLoopGroup: any EventLoopGroup
    private let state = Mutex(State())

    private struct State {
        var byNode: [Int32: KafkaConnection] = [:]
        var addresses: [Int32: BrokerAddress] = [:]
        var bootstrapConnection: KafkaConnection?
        var topics: [String: TopicLayout] = [:]
    }

    init(
        bootstrap: [BrokerAddress],
        clientID: String,
        requestTimeout: TimeAmount = .seconds(30),
        security: KafkaClientSecurity = .plaintext,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.bootstrap = bootstrap
        self.clientID = clientID
        self.requestTimeout = requestTimeout
        self.security = security
        self.eventLoopGroup = eventLoopGroup
    }

    /// A connection to any broker: the first bootstrap server that answers.
    func any() async throws -> KafkaConnection {
        if let open = state.withLock({ $0.bootstrapConnection }), open.isActive { return open }
        var failures: [String] = []
        for address in bootstrap {
            do {
                let connection = try await KafkaConnection.connect(
                    host: address.host,
                    port: address.port,
                    clientID: clientID,
                    security: security,
                    requestTimeout: requestTimeout,
                    eventLoopGroup: eventLoopGroup
                )
                state.withLock { $0.bootstrapConnection = connection }
                return connection
            } catch {
                if let error = error as? KafkaClientError, case .connectionFailed(let reason) = error.kind {
                    failures.append(reason)
                } else {
                    failures.append("\(address): \(error)")
                }
            }
        }
        throw KafkaClientError.connectionFailed(failures.joined(separator: "; "))
    }

    /// A connection to the broker with this node id (as Metadata or FindCoordinator named it).
    func node(_ nodeID: Int32) async throws -> KafkaConnection {
        if let open = state.withLock({ $0.byNode[nodeID] }), open.isActive { return open }
        var address = state.withLock { $0.addresses[nodeID] }
        if address == nil {
            try await refreshBrokers()
            address = state.withLock { $0.addresses[nodeID] }
        }
        guard let address else {
            throw KafkaClientError.unexpectedResponse("no broker with node id \(nodeID) in the cluster metadata")
        }
        let connection = try await KafkaConnection.connect(
            host: address.host,
            port: address.port,
            clientID: clientID,
            security: security,
            requestTimeout: requestTimeout,
            eventLoopGroup: eventLoopGroup
        )
        state.withLock { $0.byNode[nodeID] = connection }
        return connection
    }

    /// The coordinator of a group (key type 0) or of a transactional id (key type 1): its node id,
    /// with its address remembered for `node(_:)`.
    func findCoordinator(key: String, keyType: Int8) async throws -> Int32 {
        let response = try await any().send(FindCoordinatorRequest(key: key, keyType: keyType), maximumVersion: 3)
        guard response.errorCode == ErrorCode.none else {
            throw KafkaClientError.broker(response.errorCode, message: response.errorMessage ?? "FindCoordinator")
        }
        remember(nodeID: response.nodeId, address: BrokerAddress(host: response.host, port: Int(response.port)))
        return response.nodeId
    }

    /// Learns broker addresses from a FindCoordinator or Metadata answer.
    func remember(nodeID: Int32, address: BrokerAddress) {
        state.withLock { $0.addresses[nodeID] = address }
    }

    /// Metadata for the given topics (nil: all), remembering every broker's address.
    func metadata(topics: [String]?, allowAutoCreation: Bool = false) async throws -> MetadataResponse {
        let connection = try await any()
        let request = MetadataRequest(
            topics: topics?.map { .init(name: $0) },
            allowAutoTopicCreation: allowAutoCreation
        )
        let response = try await connection.send(request, maximumVersion: 12)
        state.withLock { state in
            for broker in response.brokers {
                state.addresses[broker.nodeId] = BrokerAddress(host: broker.host, port: Int(broker.port))
            }
        }
        return response
    }

    /// The topic's layout if already known, without asking the cluster.
    func cachedLayout(of topic: String) -> TopicLayout? {
        state.withLock { $0.topics[topic] }
    }

    /// The layout of a topic, from the cache unless `refresh` (after a leadership error, say). With
    /// `create`, a missing topic is created through Metadata's auto-creation where the broker allows it.
    func layout(of topic: String, refresh: Bool = false, create: Bool = false) async throws -> TopicLayout {
        if !refresh, let known = cachedLayout(of: topic) { return known }
        let response = try await metadata(topics: [topic], allowAutoCreation: create)
        guard let entry = response.topics.first(where: { $0.name == topic }) else {
            throw KafkaClientError.unexpectedResponse("Metadata did not mention \(topic)")
        }
        let code = entry.errorCode
        guard code == ErrorCode.none, !entry.partitions.isEmpty else {
            throw KafkaClientError.broker(
                code == ErrorCode.none ? .leaderNotAvailable : code,
                message: "topic \(topic)"
            )
        }
        var leaders = [Int32](repeating: -1, count: entry.partitions.count)
        for partition in entry.partitions where Int(partition.partitionIndex) < leaders.count {
            leaders[Int(partition.partitionIndex)] = partition.errorCode == ErrorCode.none ? partition.leaderId : -1
        }
        let layout = TopicLayout(name: topic, id: entry.topicId, leaders: leaders)
        state.withLock { $0.topics[topic] = layout }
        return layout
    }

    /// Forgets what is cached about a topic, so the next lookup asks the cluster.
    func invalidate(topic: String) {
        _ = state.withLock { $0.topics.removeValue(forKey: topic) }
    }

    /// A connection to the leader of a partition.
    func leader(of partition: TopicPartition) async throws -> (node: Int32, connection: KafkaConnection) {
        let layout = try await layout(of: partition.topic)
        guard Int(partition.partition) < layout.partitionCount, partition.partition >= 0 else {
            throw KafkaClientError.broker(.unknownTopicOrPartition, message: "\(partition) does not exist")
        }
        let node = layout.leaders[Int(partition.partition)]
        guard node >= 0 else {
            throw KafkaClientError.broker(.leaderNotAvailable, message: "\(partition) has no leader")
        }
        return (node, try await self.node(node))
    }

    private func refreshBrokers() async throws {
        _ = try await metadata(topics: [])
    }

    func close() async {
        let all = state.withLock { state -> [KafkaConnection] in
            defer {
                state.byNode = [:]
                state.bootstrapConnection = nil
            }
            return Array(state.byNode.values) + (state.bootstrapConnection.map { [$0] } ?? [])
        }
        for connection in all { await connection.close() }
    }
}
