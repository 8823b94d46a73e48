import PetrelProtocol

/// AddOffsetsToTxn (25), v0–3: `send_offsets_to_transaction` first adds the consumer group to the
/// transaction; the offsets follow in TxnOffsetCommit.
struct AddOffsetsToTxnHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...3
    let broker: BrokerState

    func handle(_ request: AddOffsetsToTxnRequest, context: RequestContext) async throws -> AddOffsetsToTxnResponse? {
        guard !request.groupId.isEmpty else { return AddOffsetsToTxnResponse(errorCode: .invalidGroupID) }
        let code = await broker.transactions.addOffsets(
            request.transactionalId,
            producerID: request.producerId,
            producerEpoch: request.producerEpoch,
            group: request.groupId
        )
        return AddOffsetsToTxnResponse(throttleTimeMs: 0, errorCode: code)
    }
}
