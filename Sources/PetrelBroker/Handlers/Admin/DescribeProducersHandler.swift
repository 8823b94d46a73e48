import PetrelProtocol
import PetrelStorage

/// DescribeProducers (61), v0: per partition, the idempotent producers it remembers (id, epoch, last
/// sequence, last timestamp) and the first offset of its open transaction. The coordinator epoch is -1.
struct DescribeProducersHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...0
    let broker: BrokerState

    func handle(_ request: DescribeProducersRequest, context: RequestContext) async throws -> DescribeProducersResponse?
    {
        DescribeProducersResponse(
            throttleTimeMs: 0,
            topics: request.topics.map { topic in
                .init(
                    name: topic.name,
                    partitions: topic.partitionIndexes.map { index in
                        guard let log = broker.logs.partition(topic: topic.name, partition: index) else {
                            return .init(
                                partitionIndex: index,
                                errorCode: .unknownTopicOrPartition,
                                errorMessage: "\(topic.name)-\(index) does not exist",
                                activeProducers: []
                            )
                        }
                        return .init(
                            partitionIndex: index,
                            errorCode: ErrorCode.none,
                            errorMessage: nil,
                            activeProducers: log.activeProducers.map {
                                .init(
                                    producerId: $0.producerID,
                                    producerEpoch: Int32($0.epoch),
                                    lastSequence: $0.lastSequence,
                                    lastTimestamp: $0.lastTimestamp,
                                    coordinatorEpoch: -1,
                                    currentTxnStartOffset: $0.currentTransactionStartOffset
                                )
                            }
                        )
                    }
                )
            }
        )
    }
}
