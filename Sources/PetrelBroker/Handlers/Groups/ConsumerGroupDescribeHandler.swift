import PetrelProtocol

/// ConsumerGroupDescribe (69), v0: a consumer-protocol group's epochs, assignor and members with their
/// current and target assignments. A classic (or unknown) group answers GROUP_ID_NOT_FOUND, which is
/// what makes clients fall back to DescribeGroups.
struct ConsumerGroupDescribeHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...0
    let broker: BrokerState
    let coordinator: GroupCoordinator

    typealias Described = ConsumerGroupDescribeResponse.DescribedGroup

    func handle(
        _ request: ConsumerGroupDescribeRequest,
        context: RequestContext
    ) async throws
        -> ConsumerGroupDescribeResponse?
    {
        let ids = Dictionary(uniqueKeysWithValues: broker.logs.allTopics.map { ($0.name, $0.id) })
        func assignment(_ partitions: Set<TopicPartition>) -> ConsumerGroupDescribeResponse.Assignment {
            .init(
                topicPartitions: partitions.groupedByTopic().compactMap { topic, numbers in
                    ids[topic].map { .init(topicId: $0, topicName: topic, partitions: numbers) }
                }
            )
        }
        return ConsumerGroupDescribeResponse(
            throttleTimeMs: 0,
            groups: request.groupIds.map { groupID in
                guard let group = coordinator.describeConsumerGroup(groupID) else {
                    return Described(
                        errorCode: .groupIDNotFound,
                        errorMessage: "\(groupID) is not a consumer-protocol group",
                        groupId: groupID
                    )
                }
                return Described(
                    groupId: groupID,
                    groupState: group.stateName,
                    groupEpoch: group.groupEpoch,
                    assignmentEpoch: group.targetAssignmentEpoch,
                    assignorName: group.assignorInUse.rawValue,
                    members: group.members.values.sorted { $0.id < $1.id }.map { member in
                        .init(
                            memberId: member.id,
                            instanceId: member.instanceID,
                            rackId: nil,
                            memberEpoch: member.memberEpoch,
                            clientId: member.clientID,
                            clientHost: member.clientHost,
                            subscribedTopicNames: member.subscribedTopics,
                            subscribedTopicRegex: member.subscribedRegex,
                            assignment: assignment(member.assigned.subtracting(member.revoking)),
                            targetAssignment: assignment(group.targetAssignment[member.id] ?? [])
                        )
                    }
                )
            }
        )
    }
}
