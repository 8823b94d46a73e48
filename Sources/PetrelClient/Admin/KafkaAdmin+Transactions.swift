import PetrelProtocol

/// A transactional id as ListTransactions reports it.
public struct TransactionListing: Sendable, Hashable {
    public var transactionalID: String
    public var producerID: Int64
    /// Kafka's state name: Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, ...
    public var state: String
}

/// A transactional id's transaction as DescribeTransactions reports it.
public struct TransactionDescription: Sendable, Hashable {
    public var transactionalID: String
    public var state: String
    public var producerID: Int64
    public var producerEpoch: Int16
    public var timeoutMs: Int32
    /// When the open transaction began (ms since the epoch), nil when none is open.
    public var startTime: Int64?
    public var partitions: [TopicPartition]
}

extension KafkaAdmin {
    /// Every transactional id each broker's coordinator knows, in any state (or only those in `states`).
    public func listTransactions(states: [String] = []) async throws -> [TransactionListing] {
        let metadata = try await cluster.metadata(topics: [])
        var listings: [TransactionListing] = []
        for broker in metadata.brokers {
            let connection = try await cluster.node(broker.nodeId)
            let response = try await connection.send(ListTransactionsRequest(stateFilters: states), maximumVersion: 1)
            try check(response.errorCode, "ListTransactions")
            listings += response.transactionStates.map {
                TransactionListing(
                    transactionalID: $0.transactionalId,
                    producerID: $0.producerId,
                    state: $0.transactionState
                )
            }
        }
        return listings.sorted { $0.transactionalID < $1.transactionalID }
    }

    /// A transactional id's state, producer, timeout and open transaction, from its coordinator.
    public func describeTransaction(_ transactionalID: String) async throws -> TransactionDescription {
        let coordinator = try await coordinatorConnection(for: transactionalID, keyType: 1)
        let response = try await coordinator.send(
            DescribeTransactionsRequest(transactionalIds: [transactionalID]),
            maximumVersion: 0
        )
        guard let described = response.transactionStates.first else {
            throw KafkaClientError.unexpectedResponse("DescribeTransactions answered no transaction")
        }
        try check(described.errorCode, "DescribeTransactions")
        return TransactionDescription(
            transactionalID: described.transactionalId,
            state: described.transactionState,
            producerID: described.producerId,
            producerEpoch: described.producerEpoch,
            timeoutMs: described.transactionTimeoutMs,
            startTime: described.transactionStartTimeMs >= 0 ? described.transactionStartTimeMs : nil,
            partitions: described.topics.flatMap { topic in topic.partitions.map { TopicPartition(topic.topic, $0) } }
                .sorted()
        )
    }
}
