import PetrelProtocol

/// FindCoordinator (10), v0–3: this broker coordinates every consumer group (key type 0) and every
/// transactional id (key type 1).
struct FindCoordinatorHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...3
    let broker: BrokerState

    static let groupKeyType: Int8 = 0
    static let transactionKeyType: Int8 = 1

    func handle(_ request: FindCoordinatorRequest, context: RequestContext) async throws -> FindCoordinatorResponse? {
        guard request.keyType == Self.groupKeyType || request.keyType == Self.transactionKeyType else {
            return FindCoordinatorResponse(
                errorCode: ErrorCode.invalidRequest,
                errorMessage: "unknown coordinator key type \(request.keyType)",
                nodeId: -1,
                host: "",
                port: -1
            )
        }
        let address = broker.advertised
        return FindCoordinatorResponse(
            errorCode: ErrorCode.none,
            errorMessage: nil,
            nodeId: broker.identity.nodeID,
            host: address.host,
            port: Int32(address.port)
        )
    }
}
