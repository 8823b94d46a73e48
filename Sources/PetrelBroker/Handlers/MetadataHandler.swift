import PetrelProtocol
import PetrelStorage

/// Metadata (3): this broker, and the topics asked for (creating unknown ones when allowed).
struct MetadataHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...12
    let broker: BrokerState

    /// Kafka's "not provided" value for authorized-operations fields.
    static let operationsNotProvided = Int32.min

    func handle(_ request: MetadataRequest, context: RequestContext) async throws -> MetadataResponse? {
        let version = context.apiVersion
        let nodeID = broker.identity.nodeID
        let address = broker.advertised
        var response = MetadataResponse(
            throttleTimeMs: 0,
            brokers: [.init(nodeId: nodeID, host: address.host, port: Int32(address.port), rack: nil)],
            clusterId: broker.identity.clusterID,
            controllerId: nodeID,
            clusterAuthorizedOperations: Self.operationsNotProvided
        )

        // v0: an empty list means all topics; v1+: null means all topics and empty means none.
        let wanted = request.topics
        let allTopics = wanted == nil || (version == 0 && wanted?.isEmpty == true)
        if allTopics {
            response.topics = broker.logs.allTopics.map { topicMetadata($0) }
            return response
        }
        // Metadata v0–3 has no AllowAutoTopicCreation field and always allows it.
        let mayCreate = broker.configuration.autoCreateTopics && (version < 4 || request.allowAutoTopicCreation)
        for requested in wanted ?? [] {
            response.topics.append(lookUp(requested, mayCreate: mayCreate, context: context))
        }
        return response
    }

    private func lookUp(
        _ requested: MetadataRequest.MetadataRequestTopic,
        mayCreate: Bool,
        context: RequestContext
    ) -> MetadataResponse.MetadataResponseTopic {
        guard let name = requested.name else {
            // v10+: a topic asked for by id alone.
            if let topic = broker.logs.allTopics.first(where: { $0.id == requested.topicId }) {
                return topicMetadata(topic)
            }
            return .init(errorCode: ErrorCode.unknownTopicID, name: nil, topicId: requested.topicId)
        }
        if let topic = broker.logs.topic(named: name) { return topicMetadata(topic) }
        if TopicName.invalidityReason(name) != nil {
            return .init(errorCode: ErrorCode.invalidTopic, name: name)
        }
        guard mayCreate else { return .init(errorCode: ErrorCode.unknownTopicOrPartition, name: name) }
        do {
            let created = try broker.logs.createTopic(
                name: name,
                partitionCount: broker.configuration.defaultPartitions
            )
            return topicMetadata(created)
        } catch TopicError.alreadyExists {
            // Another client created it at the same moment.
            if let topic = broker.logs.topic(named: name) { return topicMetadata(topic) }
            return .init(errorCode: ErrorCode.leaderNotAvailable, name: name)
        } catch {
            context.logger.error("auto-creating a topic failed", metadata: ["topic": "\(name)", "error": "\(error)"])
            return .init(errorCode: ErrorCode.leaderNotAvailable, name: name)
        }
    }

    private func topicMetadata(_ topic: TopicDescription) -> MetadataResponse.MetadataResponseTopic {
        let nodeID = broker.identity.nodeID
        return .init(
            errorCode: ErrorCode.none,
            name: topic.name,
            topicId: topic.id,
            isInternal: TopicName.isInternal(topic.name),
            partitions: (0..<Int32(topic.partitionCount)).map { partition in
                .init(
                    errorCode: ErrorCode.none,
                    partitionIndex: partition,
                    leaderId: nodeID,
                    leaderEpoch: PartitionLog.leaderEpoch,
                    replicaNodes: [nodeID],
                    isrNodes: [nodeID],
                    offlineReplicas: []
                )
            },
            topicAuthorizedOperations: Self.operationsNotProvided
        )
    }
}
