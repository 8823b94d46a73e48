import PetrelProtocol
import PetrelStorage

/// ConsumerGroupHeartbeat (68), v0–1: the consumer group protocol of KIP-848 (`group.protocol=consumer`).
/// Joins (epoch 0), leaves (-1, static -2) and every heartbeat in between go to the group's state machine
/// (`ConsumerGroup`); topics travel by id on the wire and by name inside.
struct ConsumerGroupHeartbeatHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...1
    let broker: BrokerState
    let coordinator: GroupCoordinator

    func handle(
        _ request: ConsumerGroupHeartbeatRequest,
        context: RequestContext
    ) async throws
        -> ConsumerGroupHeartbeatResponse?
    {
        let topics = broker.logs.allTopics
        let namesByID = Dictionary(uniqueKeysWithValues: topics.map { ($0.id, $0.name) })
        let idsByName = Dictionary(uniqueKeysWithValues: topics.map { ($0.name, $0.id) })
        let owned = request.topicPartitions.map { list in
            list.flatMap { topic in
                topic.partitions.compactMap { partition in
                    namesByID[topic.topicId].map { TopicPartition($0, partition) }
                }
            }
        }
        let input = ConsumerGroup.Heartbeat(
            memberID: request.memberId,
            memberEpoch: request.memberEpoch,
            instanceID: request.instanceId,
            clientID: context.header.clientID ?? "",
            clientHost: "/" + context.connection.clientHost,
            rebalanceTimeoutMs: request.rebalanceTimeoutMs,
            subscribedTopics: request.subscribedTopicNames,
            subscribedRegex: context.apiVersion >= 1 ? request.subscribedTopicRegex : nil,
            serverAssignor: request.serverAssignor,
            ownedPartitions: owned
        )
        let answer = coordinator.consumerHeartbeat(
            groupID: request.groupId,
            input,
            topics: Dictionary(uniqueKeysWithValues: topics.map { ($0.name, Int32($0.partitionCount)) })
        )
        if answer.errorCode != .none {
            context.logger.debug(
                "consumer group heartbeat refused",
                metadata: ["group": "\(request.groupId)", "error": "\(answer.errorCode)"]
            )
        }
        return ConsumerGroupHeartbeatResponse(
            throttleTimeMs: 0,
            errorCode: answer.errorCode,
            errorMessage: answer.errorMessage,
            memberId: answer.memberID,
            memberEpoch: answer.memberEpoch,
            heartbeatIntervalMs: answer.heartbeatIntervalMs,
            assignment: answer.assignment.map { assignment in
                ConsumerGroupHeartbeatResponse.Assignment(
                    topicPartitions: assignment.groupedByTopic().compactMap { topic, partitions in
                        idsByName[topic].map { .init(topicId: $0, partitions: partitions) }
                    }
                )
            }
        )
    }
}
