import PetrelProtocol
import PetrelStorage

/// DeleteRecords (21), v0–2: moves each partition's log start offset to the offset given (-1: the high
/// watermark), durably, deleting the segments wholly below it; the answer is the new low watermark.
/// Fetches below it get OFFSET_OUT_OF_RANGE and ListOffsets(earliest) answers it. Past the high
/// watermark: OFFSET_OUT_OF_RANGE.
struct DeleteRecordsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...2
    let broker: BrokerState

    func handle(_ request: DeleteRecordsRequest, context: RequestContext) async throws -> DeleteRecordsResponse? {
        DeleteRecordsResponse(
            throttleTimeMs: 0,
            topics: request.topics.map { topic in
                .init(
                    name: topic.name,
                    partitions: topic.partitions.map { delete(topic.name, $0, context: context) }
                )
            }
        )
    }

    private func delete(
        _ topic: String,
        _ partition: DeleteRecordsRequest.DeleteRecordsTopic.DeleteRecordsPartition,
        context: RequestContext
    ) -> DeleteRecordsResponse.DeleteRecordsTopicResult.DeleteRecordsPartitionResult {
        let index = partition.partitionIndex
        // Committed offsets are removed by deleting them (OffsetDelete, DeleteGroups), never by truncation.
        if TopicName.isInternal(topic) {
            return .init(partitionIndex: index, lowWatermark: -1, errorCode: .invalidTopic)
        }
        do {
            let start = try broker.logs.deleteRecords(topic: topic, partition: index, before: partition.offset)
            return .init(partitionIndex: index, lowWatermark: start, errorCode: ErrorCode.none)
        } catch TopicError.unknownTopic {
            return .init(partitionIndex: index, lowWatermark: -1, errorCode: .unknownTopicOrPartition)
        } catch PartitionLog.ReadError.offsetOutOfRange(let start, _) {
            return .init(partitionIndex: index, lowWatermark: start, errorCode: .offsetOutOfRange)
        } catch {
            context.logger.error(
                "deleting records failed",
                metadata: ["partition": "\(topic)-\(index)", "error": "\(error)"]
            )
            return .init(partitionIndex: index, lowWatermark: -1, errorCode: .kafkaStorageError)
        }
    }
}
