import PetrelProtocol

/// JoinGroup (11), v0–7.
struct JoinGroupHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...7
    let coordinator: GroupCoordinator

    func handle(_ request: JoinGroupRequest, context: RequestContext) async throws -> JoinGroupResponse? {
        let version = context.apiVersion
        let input = ClassicGroup.JoinInput(
            memberID: request.memberId,
            instanceID: request.groupInstanceId,
            clientID: context.header.clientID ?? "",
            clientHost: "/" + context.connection.clientHost,
            sessionTimeoutMs: request.sessionTimeoutMs,
            // v0 has no rebalance timeout: the session timeout stands in for it.
            rebalanceTimeoutMs: version >= 1 ? request.rebalanceTimeoutMs : request.sessionTimeoutMs,
            protocolType: request.protocolType,
            protocols: request.protocols.map { .init(name: $0.name, metadata: $0.metadata) },
            apiVersion: version
        )
        return await coordinator.join(groupID: request.groupId, input)
    }
}
