import PetrelProtocol

/// OffsetFetch in whichever shape the broker speaks best: v8+ batches groups, v0–7 asks for one.
enum OffsetFetching {
    /// A group's committed offsets: for `partitions`, or every committed partition when nil.
    /// Partitions never committed are absent.
    static func committed(
        group: String,
        partitions: [TopicPartition]?,
        on connection: KafkaConnection
    ) async throws
        -> [TopicPartition: Int64]
    {
        // v9 adds a member id and epoch, which a reader outside the group leaves out (nil, -1).
        let version = try connection.version(for: OffsetFetchRequest.self, maximum: 9)
        let byTopic = partitions.map { Dictionary(grouping: $0, by: \.topic) }
        let topics = byTopic.map { groups in
            groups.keys.sorted().map {
                OffsetFetchRequest.OffsetFetchRequestTopic(name: $0, partitionIndexes: groups[$0]!.map(\.partition))
            }
        }
        var offsets: [TopicPartition: Int64] = [:]
        if version >= 8 {
            let request = OffsetFetchRequest(
                groups: [
                    .init(
                        groupId: group,
                        topics: topics?.map { .init(name: $0.name, partitionIndexes: $0.partitionIndexes) }
                    )
                ])
            let response = try await connection.send(request, version: version)
            guard let answer = response.groups.first(where: { $0.groupId == group }) else {
                throw KafkaClientError.unexpectedResponse("OffsetFetch did not answer for group \(group)")
            }
            try check(answer.errorCode)
            for topic in answer.topics {
                for partition in topic.partitions where partition.committedOffset >= 0 {
                    try check(partition.errorCode)
                    offsets[TopicPartition(topic.name, partition.partitionIndex)] = partition.committedOffset
                }
            }
        } else {
            guard partitions != nil || version >= 2 else {
                throw KafkaClientError.unsupportedVersion(.offsetFetch)
            }
            let response = try await connection.send(
                OffsetFetchRequest(groupId: group, topics: topics),
                version: version
            )
            try check(response.errorCode)
            for topic in response.topics {
                for partition in topic.partitions where partition.committedOffset >= 0 {
                    try check(partition.errorCode)
                    offsets[TopicPartition(topic.name, partition.partitionIndex)] = partition.committedOffset
                }
            }
        }
        return offsets
    }

    private static func check(_ code: ErrorCode) throws {
        if code != ErrorCode.none { throw KafkaClientError.broker(code, message: "OffsetFetch") }
    }
}
