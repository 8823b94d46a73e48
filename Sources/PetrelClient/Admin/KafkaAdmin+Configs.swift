import PetrelProtocol

/// A config as DescribeConfigs reports it.
public struct ConfigValue: Sendable, Hashable {
    /// Where a value comes from (Kafka's ConfigSource).
    public enum Source: Int8, Sendable, Hashable, CustomStringConvertible {
        case unknown = 0
        case topic = 1
        case dynamicBroker = 2
        case dynamicDefaultBroker = 3
        case staticBroker = 4
        case defaultConfig = 5

        public var description: String {
            switch self {
            case .unknown: "unknown"
            case .topic: "topic"
            case .dynamicBroker: "dynamic broker"
            case .dynamicDefaultBroker: "dynamic broker default"
            case .staticBroker: "broker setting"
            case .defaultConfig: "default"
            }
        }
    }

    public var name: String
    public var value: String?
    public var source: Source
    public var isReadOnly: Bool
    public var isSensitive: Bool
    public var documentation: String?
}

/// Configs and the partition admin APIs.
extension KafkaAdmin {
    private static let topicResource: Int8 = 2
    private static let brokerResource: Int8 = 4

    /// Every config of a topic, with its value and where it comes from.
    public func topicConfigs(_ topic: String) async throws -> [ConfigValue] {
        try await describeConfigs(type: Self.topicResource, name: topic)
    }

    /// The broker's settings under their Kafka names (`node` nil: the one the client is connected to).
    public func brokerConfigs(node: Int32? = nil) async throws -> [ConfigValue] {
        try await describeConfigs(type: Self.brokerResource, name: node.map { "\($0)" } ?? "")
    }

    /// Sets (a value) or deletes (nil: back to its default) each named config of a topic, leaving the
    /// others as they are (IncrementalAlterConfigs). With `validateOnly` the broker only checks.
    public func alterTopicConfigs(
        _ topic: String,
        _ changes: [String: String?],
        validateOnly: Bool = false
    ) async throws {
        let request = IncrementalAlterConfigsRequest(
            resources: [
                .init(
                    resourceType: Self.topicResource,
                    resourceName: topic,
                    configs: changes.sorted { $0.key < $1.key }.map {
                        .init(name: $0.key, configOperation: $0.value == nil ? 1 : 0, value: $0.value ?? nil)
                    }
                )
            ],
            validateOnly: validateOnly
        )
        let response = try await controller().send(request, maximumVersion: 1)
        guard let result = response.responses.first else {
            throw KafkaClientError.unexpectedResponse("IncrementalAlterConfigs answered nothing")
        }
        if result.errorCode != ErrorCode.none {
            throw KafkaClientError.broker(result.errorCode, message: result.errorMessage ?? "topic \(topic)")
        }
    }

    /// Grows a topic to `count` partitions in all.
    public func createPartitions(_ topic: String, count: Int32) async throws {
        let request = CreatePartitionsRequest(
            topics: [.init(name: topic, count: count, assignments: nil)],
            timeoutMs: 30_000,
            validateOnly: false
        )
        let response = try await controller().send(request, maximumVersion: 3)
        guard let result = response.results.first else {
            throw KafkaClientError.unexpectedResponse("CreatePartitions answered nothing")
        }
        if result.errorCode != ErrorCode.none {
            throw KafkaClientError.broker(result.errorCode, message: result.errorMessage ?? "topic \(topic)")
        }
        cluster.invalidate(topic: topic)
    }

    /// Deletes the records of a partition below `offset` (-1: all of them). Returns the new low watermark.
    public func deleteRecords(_ partition: TopicPartition, before offset: Int64) async throws -> Int64 {
        let (node, _) = try await cluster.leader(of: partition)
        let request = DeleteRecordsRequest(
            topics: [
                .init(name: partition.topic, partitions: [.init(partitionIndex: partition.partition, offset: offset)])
            ],
            timeoutMs: 30_000
        )
        let response = try await cluster.node(node).send(request, maximumVersion: 2)
        guard let result = response.topics.first?.partitions.first else {
            throw KafkaClientError.unexpectedResponse("DeleteRecords answered nothing")
        }
        if result.errorCode != ErrorCode.none {
            throw KafkaClientError.broker(result.errorCode, message: "deleting records of \(partition)")
        }
        return result.lowWatermark
    }

    /// Deletes a group's committed offsets for `partitions` (OffsetDelete). A partition of a topic a live
    /// member subscribes to fails with GROUP_SUBSCRIBED_TO_TOPIC.
    public func deleteOffsets(group groupID: String, _ partitions: [TopicPartition]) async throws {
        let request = OffsetDeleteRequest(
            groupId: groupID,
            topics: partitions.groupedByTopic().map { topic, indexes in
                .init(name: topic, partitions: indexes.map { .init(partitionIndex: $0) })
            }
        )
        let response = try await coordinatorConnection(for: groupID).send(request, maximumVersion: 0)
        if response.errorCode != ErrorCode.none {
            throw KafkaClientError.broker(response.errorCode, message: "group \(groupID)")
        }
        for topic in response.topics {
            for partition in topic.partitions where partition.errorCode != ErrorCode.none {
                throw KafkaClientError.broker(
                    partition.errorCode,
                    message: "deleting the offset of \(topic.name)-\(partition.partitionIndex)"
                )
            }
        }
    }

    private func describeConfigs(type: Int8, name: String) async throws -> [ConfigValue] {
        let request = DescribeConfigsRequest(
            resources: [.init(resourceType: type, resourceName: name, configurationKeys: nil)],
            includeSynonyms: false,
            includeDocumentation: true
        )
        let response = try await controller().send(request, maximumVersion: 4)
        guard let result = response.results.first else {
            throw KafkaClientError.unexpectedResponse("DescribeConfigs answered nothing")
        }
        if result.errorCode != ErrorCode.none {
            throw KafkaClientError.broker(result.errorCode, message: result.errorMessage ?? name)
        }
        return result.configs.map {
            ConfigValue(
                name: $0.name,
                value: $0.value,
                source: ConfigValue.Source(rawValue: $0.configSource) ?? .unknown,
                isReadOnly: $0.readOnly,
                isSensitive: $0.isSensitive,
                documentation: $0.documentation
            )
        }
        .sorted { $0.name < $1.name }
    }

    /// Kafka sends configs and topic administration to the controller; Metadata names it.
    func controller() async throws -> KafkaConnection {
        let controller = try await cluster.metadata(topics: []).controllerId
        return controller >= 0 ? try await cluster.node(controller) : try await cluster.any()
    }
}
