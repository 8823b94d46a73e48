import PetrelProtocol

/// InitProducerId (22): for idempotent producers a fresh producer id that is never reused, at epoch 0;
/// for transactional ones the id's producer id at its next epoch, from the transaction coordinator.
struct InitProducerIdHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...4
    let broker: BrokerState

    func handle(_ request: InitProducerIdRequest, context: RequestContext) async throws -> InitProducerIdResponse? {
        if let id = request.transactionalId {
            guard !id.isEmpty else {
                return InitProducerIdResponse(errorCode: ErrorCode.invalidRequest, producerId: -1, producerEpoch: -1)
            }
            let (code, producerID, epoch) = await broker.transactions.initProducerID(
                id,
                timeoutMs: request.transactionTimeoutMs,
                producerID: request.producerId,
                producerEpoch: request.producerEpoch
            )
            return InitProducerIdResponse(errorCode: code, producerId: producerID, producerEpoch: epoch)
        }
        // v3+: a producer that already has an id may ask for its epoch to be bumped (KIP-360).
        if request.producerId >= 0, request.producerEpoch >= 0, request.producerEpoch < Int16.max - 1 {
            return InitProducerIdResponse(
                errorCode: ErrorCode.none,
                producerId: request.producerId,
                producerEpoch: request.producerEpoch + 1
            )
        }
        do {
            let id = try broker.producerIDs.next()
            return InitProducerIdResponse(errorCode: ErrorCode.none, producerId: id, producerEpoch: 0)
        } catch {
            context.logger.error("allocating a producer id failed", metadata: ["error": "\(error)"])
            return InitProducerIdResponse(errorCode: ErrorCode.kafkaStorageError, producerId: -1, producerEpoch: -1)
        }
    }
}
