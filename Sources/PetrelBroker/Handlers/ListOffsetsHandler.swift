import PetrelProtocol
import PetrelStorage

/// ListOffsets (2): earliest (-2), latest (-1: the last stable offset for read_committed), the record
/// with the largest timestamp (-3), or the first record at or after a timestamp.
struct ListOffsetsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...7
    let broker: BrokerState

    enum SpecialTimestamp {
        static let latest: Int64 = -1
        static let earliest: Int64 = -2
        static let maxTimestamp: Int64 = -3
    }

    func handle(_ request: ListOffsetsRequest, context: RequestContext) async throws -> ListOffsetsResponse? {
        ListOffsetsResponse(
            throttleTimeMs: 0,
            topics: request.topics.map { topic in
                .init(
                    name: topic.name,
                    partitions: topic.partitions.map {
                        lookUp($0, topic: topic.name, readCommitted: request.isolationLevel == 1, context: context)
                    }
                )
            }
        )
    }

    private func lookUp(
        _ partition: ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition,
        topic: String,
        readCommitted: Bool,
        context: RequestContext
    ) -> ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse {
        typealias Response = ListOffsetsResponse.ListOffsetsTopicResponse.ListOffsetsPartitionResponse
        func failure(_ code: ErrorCode) -> Response {
            Response(partitionIndex: partition.partitionIndex, errorCode: code, timestamp: -1, offset: -1)
        }
        guard let log = broker.logs.partition(topic: topic, partition: partition.partitionIndex) else {
            return failure(.unknownTopicOrPartition)
        }
        if partition.currentLeaderEpoch > PartitionLog.leaderEpoch { return failure(.unknownLeaderEpoch) }
        if partition.currentLeaderEpoch >= 0, partition.currentLeaderEpoch < PartitionLog.leaderEpoch {
            return failure(.fencedLeaderEpoch)
        }
        let found: PartitionLog.TimestampedOffset?
        do {
            switch partition.timestamp {
            // read_committed consumers start at the last stable offset, and their lag is counted from it.
            case SpecialTimestamp.latest:
                found = .init(offset: readCommitted ? log.lastStableOffset : log.logEndOffset, timestamp: -1)
            case SpecialTimestamp.earliest: found = .init(offset: log.logStartOffset, timestamp: -1)
            case SpecialTimestamp.maxTimestamp: found = try log.offsetOfMaxTimestamp()
            case let target where target >= 0: found = try log.firstOffset(atOrAfter: target)
            default: return failure(.invalidRequest)
            }
        } catch {
            context.logger.error(
                "offset lookup failed",
                metadata: ["partition": "\(topic)-\(partition.partitionIndex)", "error": "\(error)"]
            )
            return failure(.kafkaStorageError)
        }
        guard let found else {
            return Response(
                partitionIndex: partition.partitionIndex,
                errorCode: ErrorCode.none,
                oldStyleOffsets: [],
                timestamp: -1,
                offset: -1,
                leaderEpoch: -1
            )
        }
        return Response(
            partitionIndex: partition.partitionIndex,
            errorCode: ErrorCode.none,
            oldStyleOffsets: [found.offset],
            timestamp: found.timestamp,
            offset: found.offset,
            leaderEpoch: PartitionLog.leaderEpoch
        )
    }
}
