import PetrelProtocol
import PetrelStorage

/// OffsetCommit (8), v0–9. Members commit within their generation (classic groups) or at their member
/// epoch (consumer-protocol groups, v9 and later); with generation -1, anyone may commit for a group
/// that has no members (manual assignment, admin tools).
struct OffsetCommitHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...9
    let broker: BrokerState
    let coordinator: GroupCoordinator

    static let maxMetadataBytes = 4096

    func handle(_ request: OffsetCommitRequest, context: RequestContext) async throws -> OffsetCommitResponse? {
        // v0 predates generations: such commits come from outside any group.
        let generation = context.apiVersion >= 1 ? request.generationIdOrMemberEpoch : -1
        let groupError = coordinator.commitCheck(
            groupID: request.groupId,
            memberID: request.memberId,
            instanceID: request.groupInstanceId,
            generation: generation,
            apiVersion: context.apiVersion
        )
        let now = wallClockMillis()
        var accepted: [TopicPartition: CommittedOffset] = [:]
        var results: [OffsetCommitResponse.OffsetCommitResponseTopic] = request.topics.map { topic in
            .init(
                name: topic.name,
                partitions: topic.partitions.map { partition in
                    let code: ErrorCode
                    if let groupError {
                        code = groupError
                    } else if broker.logs.partition(topic: topic.name, partition: partition.partitionIndex) == nil {
                        code = .unknownTopicOrPartition
                    } else if (partition.committedMetadata?.utf8.count ?? 0) > Self.maxMetadataBytes {
                        code = .offsetMetadataTooLarge
                    } else {
                        code = .none
                        accepted[TopicPartition(topic.name, partition.partitionIndex)] = CommittedOffset(
                            offset: partition.committedOffset,
                            leaderEpoch: partition.committedLeaderEpoch,
                            metadata: partition.committedMetadata,
                            commitTimestamp: now
                        )
                    }
                    return .init(partitionIndex: partition.partitionIndex, errorCode: code)
                }
            )
        }
        do {
            try await coordinator.offsets.commit(group: request.groupId, accepted)
        } catch {
            context.logger.error(
                "storing committed offsets failed",
                metadata: ["group": "\(request.groupId)", "error": "\(error)"]
            )
            for topic in results.indices {
                for partition in results[topic].partitions.indices
                where results[topic].partitions[partition].errorCode == ErrorCode.none {
                    results[topic].partitions[partition].errorCode = ErrorCode.coordinatorNotAvailable
                }
            }
        }
        return OffsetCommitResponse(throttleTimeMs: 0, topics: results)
    }
}
