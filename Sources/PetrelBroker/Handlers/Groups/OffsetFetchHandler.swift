import PetrelProtocol

/// OffsetFetch (9), v0–7: a group's committed offsets, for the partitions asked for or (v2+, null
/// topics) for every partition it has committed. Never-committed partitions answer offset -1. With
/// `require_stable` (v7), a partition whose offset an open transaction is about to commit answers
/// UNSTABLE_OFFSET_COMMIT, so a consumer taking over from a transactional worker waits for it.
struct OffsetFetchHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...7
    let coordinator: GroupCoordinator
    let transactions: TransactionCoordinator

    func handle(_ request: OffsetFetchRequest, context: RequestContext) async throws -> OffsetFetchResponse? {
        guard !request.groupId.isEmpty else {
            return OffsetFetchResponse(errorCode: ErrorCode.invalidGroupID)
        }
        let committed = coordinator.offsets.committed(group: request.groupId)
        let wanted: [(String, [Int32])]
        if let topics = request.topics {
            wanted = topics.map { ($0.name, $0.partitionIndexes) }
        } else {
            let byTopic = Dictionary(grouping: committed.keys, by: \.topic)
            wanted = byTopic.keys.sorted().map { topic in (topic, byTopic[topic]!.map(\.partition).sorted()) }
        }
        return OffsetFetchResponse(
            throttleTimeMs: 0,
            topics: wanted.map { topic, partitions in
                .init(
                    name: topic,
                    partitions: partitions.map { index in
                        let partition = TopicPartition(topic, index)
                        let entry = committed[partition]
                        let unstable =
                            request.requireStable
                            && transactions.hasPendingOffsets(group: request.groupId, partition: partition)
                        return .init(
                            partitionIndex: index,
                            committedOffset: entry?.offset ?? -1,
                            committedLeaderEpoch: entry?.leaderEpoch ?? -1,
                            metadata: entry?.metadata ?? "",
                            errorCode: unstable ? ErrorCode.unstableOffsetCommit : ErrorCode.none
                        )
                    }
                )
            },
            errorCode: ErrorCode.none
        )
    }
}
