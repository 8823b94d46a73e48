import PetrelProtocol

/// DescribeCluster (60), v0–1: the cluster id and its one broker, which is also its controller. Java's
/// admin client (and the UIs built on it) call this instead of Metadata for the cluster view.
struct DescribeClusterHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...1
    let broker: BrokerState

    /// DescribeCluster's endpoint types: 1 brokers, 2 controllers.
    private static let brokers: Int8 = 1

    func handle(_ request: DescribeClusterRequest, context: RequestContext) async throws -> DescribeClusterResponse? {
        let nodeID = broker.identity.nodeID
        let address = broker.advertised
        var response = DescribeClusterResponse(
            throttleTimeMs: 0,
            errorCode: ErrorCode.none,
            errorMessage: nil,
            endpointType: request.endpointType,
            clusterId: broker.identity.clusterID,
            controllerId: nodeID,
            brokers: [.init(brokerId: nodeID, host: address.host, port: Int32(address.port), rack: nil)],
            clusterAuthorizedOperations: MetadataHandler.operationsNotProvided
        )
        // v1 can ask for controllers instead; this broker serves only the broker endpoints.
        if context.apiVersion >= 1 && request.endpointType != Self.brokers {
            response.errorCode = .unsupportedEndpointType
            response.errorMessage = "only broker endpoints (type 1) are described"
            response.brokers = []
        }
        return response
    }
}
