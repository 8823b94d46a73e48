import PetrelProtocol

/// Heartbeat (12), v0–4.
struct HeartbeatHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...4
    let coordinator: GroupCoordinator

    func handle(_ request: HeartbeatRequest, context: RequestContext) async throws -> HeartbeatResponse? {
        let error = coordinator.heartbeat(
            groupID: request.groupId,
            memberID: request.memberId,
            instanceID: request.groupInstanceId,
            generation: request.generationId
        )
        return HeartbeatResponse(errorCode: error)
    }
}
