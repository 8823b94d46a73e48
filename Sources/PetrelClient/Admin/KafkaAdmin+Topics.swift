import PetrelProtocol

/// A topic as `KafkaAdmin.describeTopic` reports it.
public struct TopicInfo: Sendable, Hashable {
    public var name: String
    public var id: KafkaUUID
    public var partitionCount: Int
    /// Leader node per partition.
    public var leaders: [Int32]
    public var isInternal: Bool
}

/// Topic administration.
extension KafkaAdmin {
    /// Creates a topic. `replicationFactor` -1 and `partitions` -1 mean the broker's defaults.
    public func createTopic(
        _ name: String,
        partitions: Int32 = -1,
        replicationFactor: Int16 = -1,
        configs: [String: String] = [:]
    )
        async throws
    {
        let request = CreateTopicsRequest(
            topics: [
                .init(
                    name: name,
                    numPartitions: partitions,
                    replicationFactor: replicationFactor,
                    configs: configs.sorted { $0.key < $1.key }.map { .init(name: $0.key, value: $0.value) }
                )
            ],
            timeoutMs: 30_000
        )
        let response = try await controller().send(request, maximumVersion: 7)
        guard let result = response.topics.first else {
            throw KafkaClientError.unexpectedResponse("CreateTopics answered nothing")
        }
        if result.errorCode != ErrorCode.none {
            throw KafkaClientError.broker(result.errorCode, message: result.errorMessage)
        }
        cluster.invalidate(topic: name)
    }

    public func deleteTopic(_ name: String) async throws {
        let connection = try await controller()
        // v0-5 name topics in a plain list; v6 in structs (which may carry ids instead).
        let version = try connection.version(for: DeleteTopicsRequest.self, maximum: 6)
        let request =
            version >= 6
            ? DeleteTopicsRequest(topics: [.init(name: name, topicId: .zero)], timeoutMs: 30_000)
            : DeleteTopicsRequest(topicNames: [name], timeoutMs: 30_000)
        let response = try await connection.send(request, version: version)
        guard let result = response.responses.first else {
            throw KafkaClientError.unexpectedResponse("DeleteTopics answered nothing")
        }
        if result.errorCode != ErrorCode.none {
            throw KafkaClientError.broker(result.errorCode, message: result.errorMessage ?? "topic \(name)")
        }
        cluster.invalidate(topic: name)
    }

    /// Every topic clients can see, by name.
    public func listTopics() async throws -> [TopicInfo] {
        let response = try await cluster.metadata(topics: nil)
        return response.topics.filter { $0.errorCode == ErrorCode.none }.map(Self.info).sorted { $0.name < $1.name }
    }

    public func describeTopic(_ name: String) async throws -> TopicInfo {
        let response = try await cluster.metadata(topics: [name])
        guard let topic = response.topics.first(where: { $0.name == name }) else {
            throw KafkaClientError.unexpectedResponse("Metadata did not mention \(name)")
        }
        guard topic.errorCode == ErrorCode.none else {
            throw KafkaClientError.broker(topic.errorCode, message: "topic \(name)")
        }
        return Self.info(topic)
    }

    /// The offset of the first record at or after `timestamp` in each partition (nil: none that late).
    public func offsets(
        forTimestamp timestamp: Int64,
        partitions: [TopicPartition]
    ) async throws -> [TopicPartition: Int64?] {
        let found = try await listOffsets(partitions, timestamp: timestamp)
        return Dictionary(uniqueKeysWithValues: partitions.map { ($0, found[$0].flatMap { $0 >= 0 ? $0 : nil }) })
    }

    private static func info(_ topic: MetadataResponse.MetadataResponseTopic) -> TopicInfo {
        let leaders = topic.partitions.sorted { $0.partitionIndex < $1.partitionIndex }.map(\.leaderId)
        return TopicInfo(
            name: topic.name ?? "",
            id: topic.topicId,
            partitionCount: topic.partitions.count,
            leaders: leaders,
            isInternal: topic.isInternal
        )
    }
}
