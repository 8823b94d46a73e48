import PetrelProtocol
import PetrelStorage

/// TxnOffsetCommit (28), v0–3: consumer offsets that become committed when the transaction commits
/// (and are dropped if it aborts). v3 carries the group generation and member (KIP-447), checked as for
/// OffsetCommit, so a worker that was replaced cannot commit.
struct TxnOffsetCommitHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...3
    let broker: BrokerState
    let groups: GroupCoordinator

    func handle(_ request: TxnOffsetCommitRequest, context: RequestContext) async throws -> TxnOffsetCommitResponse? {
        var code: ErrorCode = .none
        if context.apiVersion >= 3, request.generationId >= 0 || !request.memberId.isEmpty {
            code =
                groups.commitCheck(
                    groupID: request.groupId,
                    memberID: request.memberId,
                    instanceID: request.groupInstanceId,
                    generation: request.generationId
                ) ?? .none
        }
        let now = wallClockMillis()
        var offsets: [TopicPartition: CommittedOffset] = [:]
        var unknown = Set<TopicPartition>()
        for topic in request.topics {
            for partition in topic.partitions {
                let key = TopicPartition(topic.name, partition.partitionIndex)
                guard broker.logs.partition(topic: topic.name, partition: partition.partitionIndex) != nil else {
                    unknown.insert(key)
                    continue
                }
                offsets[key] = CommittedOffset(
                    offset: partition.committedOffset,
                    leaderEpoch: partition.committedLeaderEpoch,
                    metadata: partition.committedMetadata,
                    commitTimestamp: now
                )
            }
        }
        if code == .none {
            code = await broker.transactions.commitOffsets(
                request.transactionalId,
                producerID: request.producerId,
                producerEpoch: request.producerEpoch,
                group: request.groupId,
                offsets: offsets
            )
        }
        return TxnOffsetCommitResponse(
            throttleTimeMs: 0,
            topics: request.topics.map { topic in
                .init(
                    name: topic.name,
                    partitions: topic.partitions.map { partition in
                        let failed = unknown.contains(TopicPartition(topic.name, partition.partitionIndex))
                        return .init(
                            partitionIndex: partition.partitionIndex,
                            errorCode: failed ? .unknownTopicOrPartition : code
                        )
                    }
                )
            }
        )
    }
}
