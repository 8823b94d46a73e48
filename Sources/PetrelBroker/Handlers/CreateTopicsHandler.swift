import PetrelProtocol
import PetrelStorage

/// CreateTopics (19). One broker: replication factor 1 (or -1 for the default) only.
struct CreateTopicsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...7
    let broker: BrokerState

    func handle(_ request: CreateTopicsRequest, context: RequestContext) async throws -> CreateTopicsResponse? {
        var seen: [String: Int] = [:]
        for topic in request.topics { seen[topic.name, default: 0] += 1 }
        let results = request.topics.map { topic in
            if seen[topic.name, default: 0] > 1 {
                return failure(topic.name, .invalidRequest, "topic \(topic.name) appears more than once in the request")
            }
            return create(topic, validateOnly: request.validateOnly, context: context)
        }
        return CreateTopicsResponse(throttleTimeMs: 0, topics: results)
    }

    private func create(
        _ topic: CreateTopicsRequest.CreatableTopic,
        validateOnly: Bool,
        context: RequestContext
    ) -> CreateTopicsResponse.CreatableTopicResult {
        let nodeID = broker.identity.nodeID
        var partitions = Int(topic.numPartitions)
        if !topic.assignments.isEmpty {
            guard topic.numPartitions == -1, topic.replicationFactor == -1 else {
                return failure(
                    topic.name,
                    .invalidRequest,
                    "give either assignments or partitions and replication factor"
                )
            }
            let indexes = topic.assignments.map(\.partitionIndex).sorted()
            guard indexes == Array(0..<Int32(indexes.count)), topic.assignments.allSatisfy({ $0.brokerIds == [nodeID] })
            else {
                return failure(
                    topic.name,
                    .invalidReplicaAssignment,
                    "every partition 0..n-1 must be assigned to broker \(nodeID) alone"
                )
            }
            partitions = indexes.count
        } else if partitions == -1 {
            partitions = broker.configuration.defaultPartitions
        }
        guard topic.replicationFactor == -1 || topic.replicationFactor == 1 || !topic.assignments.isEmpty else {
            return failure(
                topic.name,
                .invalidReplicationFactor,
                "replication factor \(topic.replicationFactor) is larger than the 1 available broker"
            )
        }
        var overrides: [String: String] = [:]
        for config in topic.configs {
            if let value = config.value { overrides[config.name] = value }
        }
        do {
            let created = try broker.logs.createTopic(
                name: topic.name,
                partitionCount: partitions,
                configOverrides: overrides,
                validateOnly: validateOnly
            )
            return .init(
                name: topic.name,
                topicId: created.id,
                errorCode: ErrorCode.none,
                errorMessage: nil,
                numPartitions: Int32(partitions),
                replicationFactor: 1,
                configs: effectiveConfigs(overrides)
            )
        } catch let error as TopicError {
            switch error {
            case .invalidName(let reason): return failure(topic.name, .invalidTopic, reason)
            case .alreadyExists: return failure(topic.name, .topicAlreadyExists, "topic \(topic.name) already exists")
            case .invalidPartitions(let count):
                return failure(topic.name, .invalidPartitions, "number of partitions must be at least 1, got \(count)")
            case .invalidConfig(let reason): return failure(topic.name, .invalidConfig, reason.description)
            case .unknownTopic: return failure(topic.name, .unknownServerError, "\(error)")
            }
        } catch {
            context.logger.error("creating a topic failed", metadata: ["topic": "\(topic.name)", "error": "\(error)"])
            return failure(topic.name, .kafkaStorageError, "\(error)")
        }
    }

    /// The topic's settings as CreateTopics v5+ reports them: the same as DescribeConfigs.
    private func effectiveConfigs(
        _ overrides: [String: String]
    ) -> [CreateTopicsResponse.CreatableTopicResult.CreatableTopicConfigs] {
        TopicConfigDescriptions.describe(overrides: overrides, brokerDefaults: broker.configuration.log).map {
            .init(
                name: $0.name,
                value: $0.value,
                readOnly: $0.readOnly,
                configSource: $0.source.rawValue,
                isSensitive: $0.isSensitive
            )
        }
    }

    private func failure(
        _ name: String,
        _ code: ErrorCode,
        _ message: String
    ) -> CreateTopicsResponse.CreatableTopicResult {
        .init(
            name: name,
            errorCode: code,
            errorMessage: message,
            numPartitions: -1,
            replicationFactor: -1,
            configs: nil
        )
    }
}
