import PetrelProtocol

/// EndTxn (26), v0–3: commit or abort. Answered once the markers are in every partition of the
/// transaction and the offsets sent with it are committed.
struct EndTxnHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...3
    let broker: BrokerState

    func handle(_ request: EndTxnRequest, context: RequestContext) async throws -> EndTxnResponse? {
        let code = await broker.transactions.end(
            request.transactionalId,
            producerID: request.producerId,
            producerEpoch: request.producerEpoch,
            commit: request.committed
        )
        if code != .none && code != .concurrentTransactions {
            context.logger.debug(
                "refused to end a transaction",
                metadata: ["transactionalID": "\(request.transactionalId)", "error": "\(code)"]
            )
        }
        return EndTxnResponse(throttleTimeMs: 0, errorCode: code)
    }
}
