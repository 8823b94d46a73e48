import NIOCore
import PetrelProtocol

/// Administration of a Kafka-protocol cluster: topics, consumer groups, offsets and lag.
///
///     let admin = KafkaAdmin(bootstrap: [BrokerAddress("127.0.0.1:9092")!])
///     let lag = try await admin.lag(group: "order-workers")
public final class KafkaAdmin: Sendable {
    let cluster: ClusterConnections

    public init(
        bootstrap: [BrokerAddress],
        clientID: String = "petrel-admin",
        security: KafkaClientSecurity = .plaintext
    ) {
        self.cluster = ClusterConnections(bootstrap: bootstrap, clientID: clientID, security: security)
    }

    public func close() async {
        await cluster.close()
    }

    // MARK: - Groups

    public func listGroups() async throws -> [GroupListing] {
        let response = try await cluster.any().send(ListGroupsRequest(), maximumVersion: 5)
        try check(response.errorCode, "ListGroups")
        return response.groups
            .map { GroupListing(groupID: $0.groupId, protocolType: $0.protocolType, state: $0.groupState) }
            .sorted { $0.groupID < $1.groupID }
    }

    /// A group's state and members. A consumer-protocol group (KIP-848) is described with
    /// ConsumerGroupDescribe, epochs and target assignments included; a classic one (which that request
    /// answers with GROUP_ID_NOT_FOUND) or any group on a broker without it, with DescribeGroups.
    public func describeGroup(_ groupID: String) async throws -> GroupDescription {
        let coordinator = try await coordinatorConnection(for: groupID)
        if coordinator.brokerVersions(for: .consumerGroupDescribe) != nil {
            let response = try await coordinator.send(
                ConsumerGroupDescribeRequest(groupIds: [groupID]),
                maximumVersion: 0
            )
            if let group = response.groups.first, group.errorCode != .groupIDNotFound {
                try check(group.errorCode, "ConsumerGroupDescribe", message: group.errorMessage)
                return Self.description(of: group)
            }
        }
        let response = try await coordinator.send(DescribeGroupsRequest(groups: [groupID]), maximumVersion: 5)
        guard let group = response.groups.first else {
            throw KafkaClientError.unexpectedResponse("DescribeGroups answered no group")
        }
        try check(group.errorCode, "DescribeGroups")
        return GroupDescription(
            groupID: group.groupId,
            state: group.groupState,
            protocolType: group.protocolType,
            protocolName: group.protocolData,
            members: group.members.map { member in
                GroupDescription.Member(
                    memberID: member.memberId,
                    instanceID: member.groupInstanceId,
                    clientID: member.clientId,
                    host: member.clientHost,
                    assignment: group.protocolType == "consumer"
                        ? ConsumerProtocolAssignment(embedded: member.memberAssignment)?.partitions ?? [] : []
                )
            }
        )
    }

    static func description(of group: ConsumerGroupDescribeResponse.DescribedGroup) -> GroupDescription {
        func partitions(_ assignment: ConsumerGroupDescribeResponse.Assignment) -> [TopicPartition] {
            assignment.topicPartitions.flatMap { topic in topic.partitions.map { TopicPartition(topic.topicName, $0) } }
                .sorted()
        }
        return GroupDescription(
            groupID: group.groupId,
            state: group.groupState,
            protocolType: "consumer",
            protocolName: group.assignorName,
            members: group.members.map { member in
                GroupDescription.Member(
                    memberID: member.memberId,
                    instanceID: member.instanceId,
                    clientID: member.clientId,
                    host: member.clientHost,
                    assignment: partitions(member.assignment),
                    memberEpoch: member.memberEpoch,
                    targetAssignment: partitions(member.targetAssignment)
                )
            },
            groupProtocol: "consumer",
            groupEpoch: group.groupEpoch,
            assignmentEpoch: group.assignmentEpoch
        )
    }

    /// Every offset the group has committed.
    public func committedOffsets(group groupID: String) async throws -> [TopicPartition: Int64] {
        try await OffsetFetching.committed(
            group: groupID,
            partitions: nil,
            on: try await coordinatorConnection(for: groupID)
        )
    }

    /// The log end offset (high watermark) of each partition.
    public func endOffsets(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await listOffsets(partitions, timestamp: -1)
    }

    /// The first offset still in the log of each partition.
    public func startOffsets(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await listOffsets(partitions, timestamp: -2)
    }

    /// Committed offset, log end and lag for every partition the group has committed or is assigned.
    public func lag(group groupID: String) async throws -> [PartitionLag] {
        let committed = try await committedOffsets(group: groupID)
        let description = try await describeGroup(groupID)
        let partitions = Set(committed.keys).union(description.members.flatMap(\.assignment)).sorted()
        let ends = try await endOffsets(partitions)
        return partitions.map { PartitionLag(partition: $0, committed: committed[$0], logEndOffset: ends[$0] ?? 0) }
    }

    /// Commits offsets for a group from outside it (generation -1): allowed while it has no members.
    public func commitOffsets(group groupID: String, _ offsets: [TopicPartition: Int64]) async throws {
        let coordinator = try await coordinatorConnection(for: groupID)
        let byTopic = Dictionary(grouping: offsets, by: \.key.topic)
        let request = OffsetCommitRequest(
            groupId: groupID,
            generationIdOrMemberEpoch: -1,
            memberId: "",
            topics: byTopic.keys.sorted().map { topic in
                .init(
                    name: topic,
                    partitions: byTopic[topic]!.map {
                        .init(partitionIndex: $0.key.partition, committedOffset: $0.value)
                    }
                )
            }
        )
        let response = try await coordinator.send(request, maximumVersion: 8)
        for topic in response.topics {
            for partition in topic.partitions {
                try check(partition.errorCode, "OffsetCommit for \(topic.name)-\(partition.partitionIndex)")
            }
        }
    }

    public func deleteGroup(_ groupID: String) async throws {
        let coordinator = try await coordinatorConnection(for: groupID)
        let response = try await coordinator.send(DeleteGroupsRequest(groupsNames: [groupID]), maximumVersion: 2)
        try check(response.results.first?.errorCode ?? .unknownServerError, "DeleteGroups")
    }

    // MARK: - Helpers

    /// The coordinator of a group (key type 0) or of a transactional id (key type 1).
    func coordinatorConnection(for key: String, keyType: Int8 = 0) async throws -> KafkaConnection {
        try await cluster.node(try await cluster.findCoordinator(key: key, keyType: keyType))
    }

    func listOffsets(_ partitions: [TopicPartition], timestamp: Int64) async throws -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let topics = Array(Set(partitions.map(\.topic))).sorted()
        let metadata = try await cluster.metadata(topics: topics)
        var leaders: [TopicPartition: Int32] = [:]
        for topic in metadata.topics {
            for partition in topic.partitions {
                leaders[TopicPartition(topic.name ?? "", partition.partitionIndex)] = partition.leaderId
            }
        }
        var results: [TopicPartition: Int64] = [:]
        for (leader, owned) in Dictionary(grouping: partitions, by: { leaders[$0] ?? -1 }) {
            guard leader >= 0 else {
                throw KafkaClientError.broker(.unknownTopicOrPartition, message: "\(owned[0]) has no leader")
            }
            let request = ListOffsetsRequest(
                replicaId: -1,
                topics: owned.groupedByTopic().map { topic, indexes in
                    .init(
                        name: topic,
                        partitions: indexes.map { .init(partitionIndex: $0, timestamp: timestamp, maxNumOffsets: 1) }
                    )
                }
            )
            let response = try await cluster.node(leader).send(request, maximumVersion: 7)
            for topic in response.topics {
                for partition in topic.partitions {
                    try check(partition.errorCode, "ListOffsets for \(topic.name)-\(partition.partitionIndex)")
                    results[TopicPartition(topic.name, partition.partitionIndex)] = partition.offset
                }
            }
        }
        return results
    }

    func check(_ code: ErrorCode, _ what: String, message: String? = nil) throws {
        guard code != ErrorCode.none else { return }
        throw KafkaClientError.broker(code, message: message ?? "\(what) failed")
    }
}
