import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("CreatePartitions and DescribeCluster")
struct CreatePartitionsTests {
    private func grow(
        _ connection: KafkaConnection,
        _ topics: [(String, Int32)],
        validateOnly: Bool = false
    ) async throws -> [CreatePartitionsResponse.CreatePartitionsTopicResult] {
        let request = CreatePartitionsRequest(
            topics: topics.map { .init(name: $0.0, count: $0.1, assignments: nil) },
            timeoutMs: 5000,
            validateOnly: validateOnly
        )
        return try await connection.send(request).results
    }

    private func partitionCount(_ connection: KafkaConnection, _ topic: String) async throws -> Int {
        let metadata = try await connection.send(
            MetadataRequest(topics: [.init(name: topic)], allowAutoTopicCreation: false)
        )
        return metadata.topics[0].partitions.count
    }

    @Test(
        "a topic grows at once, keeps its data and configs, and the new partitions take records; it survives a restart"
    )
    func grows() async throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        try await withBroker(dataDirectory: folder.path) { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders", partitions: 2)
                _ = try await produce(connection, "orders", partition: 1, ["kept"])
                #expect(try await grow(connection, [("orders", 5)], validateOnly: true)[0].errorCode == ErrorCode.none)
                #expect(try await partitionCount(connection, "orders") == 2, "validate-only changed nothing")
                #expect(try await grow(connection, [("orders", 5)])[0].errorCode == ErrorCode.none)
                #expect(try await partitionCount(connection, "orders") == 5)
                #expect(try await produce(connection, "orders", partition: 4, ["new"]).baseOffset == 0)
                #expect(try await produce(connection, "orders", partition: 1, ["more"]).baseOffset == 1)
            }
        }
        let after = try await withBroker(dataDirectory: folder.path) { _, port in
            try await withConnection(port) { connection in try await partitionCount(connection, "orders") }
        }
        #expect(after == 5)
    }

    @Test("fewer or as many partitions, an unknown topic, a topic twice and a foreign assignment are refused")
    func refusals() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "orders", partitions: 3)
                let results = try await grow(connection, [("orders", 3), ("nowhere", 4), ("twice", 2), ("twice", 3)])
                #expect(results[0].errorCode == ErrorCode.invalidPartitions)
                #expect(results[0].errorMessage?.contains("has 3 partitions") == true)
                #expect(results[1].errorCode == ErrorCode.unknownTopicOrPartition)
                #expect(
                    results[2].errorCode == ErrorCode.invalidRequest && results[3].errorCode == ErrorCode.invalidRequest
                )
                let foreign = CreatePartitionsRequest(
                    topics: [.init(name: "orders", count: 4, assignments: [.init(brokerIds: [7])])],
                    timeoutMs: 5000,
                    validateOnly: false
                )
                #expect(try await connection.send(foreign).results[0].errorCode == ErrorCode.invalidReplicaAssignment)
                #expect(try await partitionCount(connection, "orders") == 3)
            }
        }
    }

    @Test("DescribeCluster names the cluster and this broker as its controller")
    func describeCluster() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                let brokers = try await connection.send(DescribeClusterRequest(endpointType: 1), version: 1)
                #expect(brokers.errorCode == ErrorCode.none && brokers.controllerId == 1 && !brokers.clusterId.isEmpty)
                #expect(brokers.brokers.map(\.brokerId) == [1] && brokers.brokers[0].port == Int32(port))
                let controllers = try await connection.send(DescribeClusterRequest(endpointType: 2), version: 1)
                #expect(controllers.errorCode == ErrorCode.unsupportedEndpointType)
            }
        }
    }
}
