import PetrelProtocol

/// DescribeGroups (15), v0–5: state, protocol and members (with their subscription and assignment).
/// An unknown group is described as Dead with no members, as Kafka does up to v5.
struct DescribeGroupsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...5
    let coordinator: GroupCoordinator

    func handle(_ request: DescribeGroupsRequest, context: RequestContext) async throws -> DescribeGroupsResponse? {
        DescribeGroupsResponse(
            throttleTimeMs: 0,
            groups: request.groups.map { id in
                guard let group = coordinator.describe(groupID: id) else {
                    let state: GroupState = coordinator.offsets.hasOffsets(group: id) ? .empty : .dead
                    return .init(
                        errorCode: ErrorCode.none,
                        groupId: id,
                        groupState: state.rawValue,
                        protocolType: "",
                        protocolData: "",
                        members: [],
                        authorizedOperations: MetadataHandler.operationsNotProvided
                    )
                }
                // Members are listed once the group has settled on a protocol, as Kafka does.
                let settled = group.state == .stable || group.state == .completingRebalance
                return .init(
                    errorCode: ErrorCode.none,
                    groupId: id,
                    groupState: group.state.rawValue,
                    protocolType: group.protocolType ?? "",
                    protocolData: settled ? group.protocolName ?? "" : "",
                    members: group.orderedMembers.map { member in
                        .init(
                            memberId: member.memberID,
                            groupInstanceId: member.instanceID,
                            clientId: member.clientID,
                            clientHost: member.clientHost,
                            memberMetadata: member.metadata(for: group.protocolName),
                            memberAssignment: member.assignment
                        )
                    },
                    authorizedOperations: MetadataHandler.operationsNotProvided
                )
            }
        )
    }
}
