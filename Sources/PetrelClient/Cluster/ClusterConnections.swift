import NIOCore
import NIOPosix
import PetrelProtocol
import Synchronization

/// Connections to the brokers of a cluster, found through the bootstrap servers and Metadata: one
/// connection per broker, opened when first needed and reopened if it closed. Thread-safe.
final class ClusterConnections: Sendable {
    let bootstrap: [BrokerAddress]
    let clientID: String
    private let eventLoopGroup: any EventLoopGroup
    private let state = Mutex(State())

    private struct State {
        var byNode: [Int32: KafkaConnection] = [:]
        var addresses: [Int32: BrokerAddress] = [:]
        var bootstrapConnection: KafkaConnection?
    }

    init(bootstrap: [BrokerAddress], clientID: String, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.bootstrap = bootstrap
        self.clientID = clientID
        self.eventLoopGroup = eventLoopGroup
    }

    /// A connection to any broker: the first bootstrap server that answers.
    func any() async throws -> KafkaConnection {
        if let open = state.withLock({ $0.bootstrapConnection }), open.isActive { return open }
        var failures: [String] = []
        for address in bootstrap {
            do {
                let connection = try await KafkaConnection.connect(
                    host: address.host, port: address.port, clientID: clientID, eventLoopGroup: eventLoopGroup)
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
        guard let address else { throw KafkaClientError.unexpectedResponse("no broker with node id \(nodeID) in the cluster metadata") }
        let connection = try await KafkaConnection.connect(
            host: address.host, port: address.port, clientID: clientID, eventLoopGroup: eventLoopGroup)
        state.withLock { $0.byNode[nodeID] = connection }
        return connection
    }

    /// Learns broker addresses from a FindCoordinator or Metadata answer.
    func remember(nodeID: Int32, address: BrokerAddress) {
        state.withLock { $0.addresses[nodeID] = address }
    }

    /// Metadata for the given topics (nil: all), remembering every broker's address.
    func metadata(topics: [String]?, allowAutoCreation: Bool = false) async throws -> MetadataResponse {
        let connection = try await any()
        let request = MetadataRequest(topics: topics?.map { .init(name: $0) }, allowAutoTopicCreation: allowAutoCreation)
        let response = try await connection.send(request, maximumVersion: 12)
        state.withLock { state in
            for broker in response.brokers { state.addresses[broker.nodeId] = BrokerAddress(host: broker.host, port: Int(broker.port)) }
        }
        return response
    }

    private func refreshBrokers() async throws {
        _ = try await metadata(topics: [])
    }

    func close() async {
        let all = state.withLock { state -> [KafkaConnection] in
            defer { state.byNode = [:]; state.bootstrapConnection = nil }
            return Array(state.byNode.values) + (state.bootstrapConnection.map { [$0] } ?? [])
        }
        for connection in all { await connection.close() }
    }
}
