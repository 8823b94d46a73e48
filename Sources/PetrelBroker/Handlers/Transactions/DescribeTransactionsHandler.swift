import PetrelProtocol

/// DescribeTransactions (65), v0: a transactional id's state, producer, timeout, start time and
/// partitions; TRANSACTIONAL_ID_NOT_FOUND for ids the coordinator does not know.
struct DescribeTransactionsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...0
    let broker: BrokerState

    func handle(
        _ request: DescribeTransactionsRequest,
        context: RequestContext
    ) async throws
        -> DescribeTransactionsResponse?
    {
        DescribeTransactionsResponse(
            throttleTimeMs: 0,
            transactionStates: request.transactionalIds.map { id in
                guard let metadata = broker.transactions.transaction(id) else {
                    return .init(
                        errorCode: .transactionalIDNotFound,
                        transactionalId: id,
                        transactionState: "",
                        transactionTimeoutMs: 0,
                        transactionStartTimeMs: -1,
                        producerId: -1,
                        producerEpoch: -1,
                        topics: []
                    )
                }
                return .init(
                    errorCode: .none,
                    transactionalId: id,
                    transactionState: "\(metadata.state)",
                    transactionTimeoutMs: metadata.timeoutMs,
                    transactionStartTimeMs: metadata.startTimestamp,
                    producerId: metadata.producerID,
                    producerEpoch: metadata.producerEpoch,
                    topics: metadata.partitions.groupedByTopic().map {
                        .init(topic: $0.topic, partitions: $0.partitions)
                    }
                )
            }
        )
    }
}
