import PetrelProtocol

/// ListTransactions (66), v0–1: every transactional id the coordinator knows, in any state (Kafka's
/// state names), filtered by state, producer id and (v1) how long the transaction has been open.
struct ListTransactionsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...1
    let broker: BrokerState

    func handle(_ request: ListTransactionsRequest, context: RequestContext) async throws -> ListTransactionsResponse? {
        let unknownStates = request.stateFilters.filter { TransactionState(name: $0) == nil }
        let states = Set(request.stateFilters.compactMap(TransactionState.init(name:)))
        let producers = Set(request.producerIdFilters)
        let now = wallClockMillis()
        let listed = broker.transactions.allTransactions.filter { metadata in
            (request.stateFilters.isEmpty || states.contains(metadata.state))
                && (producers.isEmpty || producers.contains(metadata.producerID))
                && (request.durationFilter < 0
                    || (metadata.startTimestamp >= 0 && now - metadata.startTimestamp >= request.durationFilter))
        }
        return ListTransactionsResponse(
            throttleTimeMs: 0,
            errorCode: ErrorCode.none,
            unknownStateFilters: unknownStates,
            transactionStates: listed.map {
                .init(transactionalId: $0.transactionalID, producerId: $0.producerID, transactionState: "\($0.state)")
            }
        )
    }
}
