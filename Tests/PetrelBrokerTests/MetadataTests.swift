import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

@Suite("Metadata, CreateTopics and DeleteTopics")
struct MetadataTests {
    @Test("unknown topics are created on request, with real ids and our advertised address, in every version")
    func autoCreate() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                for version in MetadataRequest.validVersions {
                    let name = "auto-\(version)"
                    let response = try await connection.send(
                        MetadataRequest(topics: [.init(name: name)], allowAutoTopicCreation: true),
                        version: version
                    )
                    #expect(response.brokers.map(\.host) == ["127.0.0.1"])
                    #expect(response.brokers.map(\.port) == [Int32(port)])
                    let topic = try #require(response.topics.first)
                    #expect(topic.errorCode == ErrorCode.none, "Metadata v\(version)")
                    #expect(topic.name == name)
                    #expect(topic.partitions.map(\.leaderId) == [1])
                    if version >= 10 { #expect(topic.topicId != .zero) }
                    if version >= 2 { #expect(response.clusterId?.isEmpty == false) }
                }
            }
        }
    }

    @Test("auto-creation is refused when the client or the broker says no; illegal names get 17")
    func noAutoCreate() async throws {
        try await withBroker(configure: { $0.autoCreateTopics = false }) { _, port in
            try await withConnection(port) { connection in
                let refused = try await connection.send(
                    MetadataRequest(topics: [.init(name: "ghost")], allowAutoTopicCreation: true)
                )
                #expect(refused.topics[0].errorCode == ErrorCode.unknownTopicOrPartition)
            }
        }
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                let declined = try await connection.send(
                    MetadataRequest(topics: [.init(name: "ghost")], allowAutoTopicCreation: false)
                )
                #expect(declined.topics[0].errorCode == ErrorCode.unknownTopicOrPartition)
                let illegal = try await connection.send(
                    MetadataRequest(topics: [.init(name: "bad name!")], allowAutoTopicCreation: true)
                )
                #expect(illegal.topics[0].errorCode == ErrorCode.invalidTopic)
            }
        }
    }

    @Test("all topics: an empty list in v0, null from v1; an empty list from v1 means none")
    func allTopics() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "one")
                try await createTopic(connection, "two", partitions: 4)
                #expect(
                    try await connection.send(MetadataRequest(topics: []), version: 0).topics.map(\.name) == [
                        "__consumer_offsets", "one", "two",
                    ]
                )
                #expect(
                    try await connection.send(MetadataRequest(topics: nil), version: 1).topics.map(\.name) == [
                        "__consumer_offsets", "one", "two",
                    ]
                )
                #expect(try await connection.send(MetadataRequest(topics: []), version: 1).topics.isEmpty)
                let all = try await connection.send(MetadataRequest(topics: nil), version: 12)
                #expect(all.topics.first { $0.name == "two" }?.partitions.count == 4)
            }
        }
    }

    @Test("__consumer_offsets exists from the start, is internal and readable, and refuses writes, deletion and growth")
    func consumerOffsetsTopic() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                let metadata = try await connection.send(MetadataRequest(topics: [.init(name: "__consumer_offsets")]))
                let topic = try #require(metadata.topics.first)
                #expect(topic.errorCode == ErrorCode.none && topic.isInternal && topic.partitions.count == 16)
                #expect(try await produce(connection, "__consumer_offsets", ["forged"]).errorCode == .invalidTopic)
                let fetched = try await connection.send(fetchRequest("__consumer_offsets", offset: 0), version: 12)
                #expect(fetched.responses[0].partitions[0].errorCode == ErrorCode.none)
                let deleted = try await connection.send(
                    DeleteTopicsRequest(topicNames: ["__consumer_offsets"], timeoutMs: 5000),
                    version: 4
                )
                #expect(deleted.responses.map(\.errorCode) == [.invalidTopic])
                let grown = try await connection.send(
                    CreatePartitionsRequest(topics: [.init(name: "__consumer_offsets", count: 20)], timeoutMs: 5000)
                )
                #expect(grown.results.map(\.errorCode) == [.invalidTopic])
                let truncated = try await connection.send(
                    DeleteRecordsRequest(
                        topics: [.init(name: "__consumer_offsets", partitions: [.init(partitionIndex: 0, offset: 0)])],
                        timeoutMs: 5000
                    )
                )
                #expect(truncated.topics[0].partitions[0].errorCode == .invalidTopic)
                let created = try await connection.send(
                    CreateTopicsRequest(
                        topics: [.init(name: "__consumer_offsets", numPartitions: 1, replicationFactor: 1)],
                        timeoutMs: 5000
                    )
                )
                #expect(created.topics.map(\.errorCode) == [.topicAlreadyExists])
            }
        }
    }

    @Test("CreateTopics errors: exists, replication factor, partitions, configs, validate-only")
    func createTopicsErrors() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                let request = CreateTopicsRequest(
                    topics: [
                        .init(
                            name: "ok",
                            numPartitions: 2,
                            replicationFactor: 1,
                            configs: [.init(name: "retention.ms", value: "60000")]
                        ),
                        .init(name: "rf", numPartitions: 1, replicationFactor: 3),
                        .init(name: "zero", numPartitions: 0, replicationFactor: 1),
                        .init(
                            name: "cfg",
                            numPartitions: 1,
                            replicationFactor: 1,
                            configs: [.init(name: "retention.ms", value: "later")]
                        ),
                        .init(name: "dflt", numPartitions: -1, replicationFactor: -1),
                    ],
                    timeoutMs: 1000
                )
                let response = try await connection.send(request, version: 7)
                let codes = Dictionary(uniqueKeysWithValues: response.topics.map { ($0.name, $0.errorCode) })
                #expect(
                    codes == [
                        "ok": .none, "rf": .invalidReplicationFactor, "zero": .invalidPartitions, "cfg": .invalidConfig,
                        "dflt": .none,
                    ]
                )
                #expect(response.topics[0].topicId != .zero)
                #expect(response.topics[0].configs?.first { $0.name == "retention.ms" }?.value == "60000")
                let again = try await connection.send(
                    CreateTopicsRequest(topics: [.init(name: "ok", numPartitions: 1, replicationFactor: 1)]),
                    version: 4
                )
                #expect(again.topics[0].errorCode == ErrorCode.topicAlreadyExists)
                let dry = try await connection.send(
                    CreateTopicsRequest(
                        topics: [.init(name: "dry", numPartitions: 1, replicationFactor: 1)],
                        validateOnly: true
                    ),
                    version: 4
                )
                #expect(dry.topics[0].errorCode == ErrorCode.none)
                #expect(
                    try await connection.send(
                        MetadataRequest(topics: [.init(name: "dry")], allowAutoTopicCreation: false)
                    )
                    .topics[0].errorCode == .unknownTopicOrPartition
                )
            }
        }
    }

    @Test("a deleted topic is gone; created again it starts at offset 0")
    func deleteAndRecreate() async throws {
        try await withBroker { _, port in
            try await withConnection(port) { connection in
                try await createTopic(connection, "cycle")
                _ = try await produce(connection, "cycle", ["old-1", "old-2"])
                let deleted = try await connection.send(
                    DeleteTopicsRequest(topicNames: ["cycle", "never"], timeoutMs: 1000),
                    version: 4
                )
                #expect(deleted.responses.map(\.errorCode) == [.none, ErrorCode.unknownTopicOrPartition])
                try await createTopic(connection, "cycle")
                let fresh = try await produce(connection, "cycle", ["new"])
                #expect(fresh.baseOffset == 0)
                #expect(try values(in: try await connection.send(fetchRequest("cycle", offset: 0))) == ["new"])

                let byID = try await connection.send(MetadataRequest(topics: [.init(name: "cycle")]), version: 12)
                    .topics[0]
                    .topicId
                let deletedByID = try await connection.send(
                    DeleteTopicsRequest(topics: [.init(name: nil, topicId: byID)], timeoutMs: 1000),
                    version: 6
                )
                #expect(deletedByID.responses.first?.name == "cycle")
                #expect(deletedByID.responses.first?.errorCode == ErrorCode.none)
            }
        }
    }
}
