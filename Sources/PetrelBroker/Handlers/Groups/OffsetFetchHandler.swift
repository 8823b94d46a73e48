import PetrelProtocol

/// OffsetFetch (9), v0–9: a group's committed offsets, for the partitions asked for or (v2+, null
/// topics) for every partition it has committed. Never-committed partitions answer offset -1. With
/// `require_stable` (v7), a partition whose offset an open transaction is about to commit answers
/// UNSTABLE_OFFSET_COMMIT, so a consumer taking over from a transactional worker waits for it. From v8
/// one request asks for several groups; v9 carries the member id and epoch of a consumer-protocol
/// member, checked as its commits are (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH).
struct OffsetFetchHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...9
    let coordinator: GroupCoordinator
    let transactions: TransactionCoordinator

    /// One group's answer, before it takes the shape of the request's version.
    private struct GroupOffsets {
        var errorCode: ErrorCode = .none
        var topics: [(name: String, partitions: [PartitionOffset])] = []
    }

    private struct PartitionOffset {
        var index: Int32
        var offset: Int64
        var leaderEpoch: Int32
        var metadata: String
        var errorCode: ErrorCode
    }

    func handle(_ request: OffsetFetchRequest, context: RequestContext) async throws -> OffsetFetchResponse? {
        guard context.apiVersion >= 8 else {
            let group = offsets(
                group: request.groupId,
                topics: request.topics.map { $0.map { ($0.name, $0.partitionIndexes) } },
                memberID: nil,
                memberEpoch: -1,
                requireStable: request.requireStable
            )
            return OffsetFetchResponse(
                throttleTimeMs: 0,
                topics: group.topics.map { topic in
                    .init(
                        name: topic.name,
                        partitions: topic.partitions.map {
                            .init(
                                partitionIndex: $0.index,
                                committedOffset: $0.offset,
                                committedLeaderEpoch: $0.leaderEpoch,
                                metadata: $0.metadata,
                                errorCode: $0.errorCode
                            )
                        }
                    )
                },
                errorCode: group.errorCode
            )
        }
        return OffsetFetchResponse(
            throttleTimeMs: 0,
            groups: request.groups.map { asked in
                let group = offsets(
                    group: asked.groupId,
                    topics: asked.topics.map { $0.map { ($0.name, $0.partitionIndexes) } },
                    memberID: asked.memberId,
                    memberEpoch: asked.memberEpoch,
                    requireStable: request.requireStable
                )
                return .init(
                    groupId: asked.groupId,
                    topics: group.topics.map { topic in
                        .init(
                            name: topic.name,
                            partitions: topic.partitions.map {
                                .init(
                                    partitionIndex: $0.index,
                                    committedOffset: $0.offset,
                                    committedLeaderEpoch: $0.leaderEpoch,
                                    metadata: $0.metadata,
                                    errorCode: $0.errorCode
                                )
                            }
                        )
                    },
                    errorCode: group.errorCode
                )
            }
        )
    }

    /// One group's committed offsets for `topics` (nil: every partition it has committed).
    private func offsets(
        group groupID: String,
        topics: [(String, [Int32])]?,
        memberID: String?,
        memberEpoch: Int32,
        requireStable: Bool
    ) -> GroupOffsets {
        guard !groupID.isEmpty else { return GroupOffsets(errorCode: .invalidGroupID) }
        if let error = coordinator.fetchCheck(groupID: groupID, memberID: memberID, memberEpoch: memberEpoch) {
            return GroupOffsets(errorCode: error)
        }
        let committed = coordinator.offsets.committed(group: groupID)
        let wanted: [(String, [Int32])]
        if let topics {
            wanted = topics
        } else {
            wanted = committed.keys.groupedByTopic().map { ($0.topic, $0.partitions) }
        }
        return GroupOffsets(
            topics: wanted.map { topic, partitions in
                (
                    topic,
                    partitions.map { index in
                        let partition = TopicPartition(topic, index)
                        let entry = committed[partition]
                        let unstable =
                            requireStable && transactions.hasPendingOffsets(group: groupID, partition: partition)
                        return PartitionOffset(
                            index: index,
                            offset: entry?.offset ?? -1,
                            leaderEpoch: entry?.leaderEpoch ?? -1,
                            metadata: entry?.metadata ?? "",
                            errorCode: unstable ? .unstableOffsetCommit : .none
                        )
                    }
                )
            }
        )
    }
}
