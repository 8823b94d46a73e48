import PetrelProtocol

/// OffsetDelete (47), v0: drops a group's committed offsets for given partitions. A partition of a topic
/// a live member subscribes to gets GROUP_SUBSCRIBED_TO_TOPIC; an unknown group GROUP_ID_NOT_FOUND.
struct OffsetDeleteHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...0
    let coordinator: GroupCoordinator

    func handle(_ request: OffsetDeleteRequest, context: RequestContext) async throws -> OffsetDeleteResponse? {
        let partitions = request.topics.flatMap { topic in
            topic.partitions.map { TopicPartition(topic.name, $0.partitionIndex) }
        }
        let (groupError, results) = await coordinator.deleteOffsets(groupID: request.groupId, partitions: partitions)
        guard groupError == ErrorCode.none else {
            return OffsetDeleteResponse(errorCode: groupError, throttleTimeMs: 0)
        }
        return OffsetDeleteResponse(
            errorCode: ErrorCode.none,
            throttleTimeMs: 0,
            topics: request.topics.map { topic in
                .init(
                    name: topic.name,
                    partitions: topic.partitions.map {
                        .init(
                            partitionIndex: $0.partitionIndex,
                            errorCode: results[TopicPartition(topic.name, $0.partitionIndex)] ?? ErrorCode.none
                        )
                    }
                )
            }
        )
    }
}
