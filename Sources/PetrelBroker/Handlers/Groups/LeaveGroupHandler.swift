import PetrelProtocol

/// LeaveGroup (13): one member (v0–2) or a batch, possibly by instance id (v3–5).
struct LeaveGroupHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...5
    let coordinator: GroupCoordinator

    func handle(_ request: LeaveGroupRequest, context: RequestContext) async throws -> LeaveGroupResponse? {
        if context.apiVersion < 3 {
            let error = coordinator.leave(groupID: request.groupId, members: [(request.memberId, nil)])[0]
            return LeaveGroupResponse(errorCode: error)
        }
        let leaving = request.members.map { (memberID: $0.memberId, instanceID: $0.groupInstanceId) }
        let errors = coordinator.leave(groupID: request.groupId, members: leaving)
        let topLevel: ErrorCode =
            errors.allSatisfy { $0 == .invalidGroupID } && !errors.isEmpty ? .invalidGroupID : .none
        return LeaveGroupResponse(
            errorCode: topLevel,
            members: zip(request.members, errors).map {
                .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, errorCode: $1)
            }
        )
    }
}
