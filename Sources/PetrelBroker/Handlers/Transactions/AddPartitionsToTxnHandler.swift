import PetrelProtocol

/// AddPartitionsToTxn (24), v0–3: a transactional producer names each partition before its first write
/// to it in a transaction. Unknown partitions fail the whole request (the others answer
/// OPERATION_NOT_ATTEMPTED, as Kafka does). v4+ (brokers verifying for each other) is not served.
struct AddPartitionsToTxnHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...3
    let broker: BrokerState

    static let operationNotAttempted = ErrorCode(rawValue: 55)

    func handle(
        _ request: AddPartitionsToTxnRequest,
        context: RequestContext
    ) async throws
        -> AddPartitionsToTxnResponse?
    {
        let wanted = request.v3AndBelowTopics.flatMap { topic in
            topic.partitions.map { TopicPartition(topic.name, $0) }
        }
        let unknown = Set(wanted.filter { broker.logs.partition(topic: $0.topic, partition: $0.partition) == nil })
        let code: ErrorCode
        if unknown.isEmpty {
            code = await broker.transactions.addPartitions(
                request.v3AndBelowTransactionalId,
                producerID: request.v3AndBelowProducerId,
                producerEpoch: request.v3AndBelowProducerEpoch,
                partitions: Set(wanted)
            )
        } else {
            code = Self.operationNotAttempted
        }
        return AddPartitionsToTxnResponse(
            throttleTimeMs: 0,
            resultsByTopicV3AndBelow: request.v3AndBelowTopics.map { topic in
                .init(
                    name: topic.name,
                    resultsByPartition: topic.partitions.map { partition in
                        let failed = unknown.contains(TopicPartition(topic.name, partition))
                        return .init(
                            partitionIndex: partition,
                            partitionErrorCode: failed ? .unknownTopicOrPartition : code
                        )
                    }
                )
            }
        )
    }
}
