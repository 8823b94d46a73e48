import PetrelProtocol

/// FindCoordinator (10), v0–3: this broker coordinates every group. Transactions are not supported, so
/// a transaction coordinator lookup fails at once (with a non-retriable code, so clients do not spin).
struct FindCoordinatorHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...3
    let broker: BrokerState

    static let groupKeyType: Int8 = 0

    func handle(_ request: FindCoordinatorRequest, context: RequestContext) async throws -> FindCoordinatorResponse? {
        guard request.keyType == Self.groupKeyType else {
            return FindCoordinatorResponse(
                errorCode: ErrorCode.invalidRequest,
                errorMessage: "transactions are not supported",
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
