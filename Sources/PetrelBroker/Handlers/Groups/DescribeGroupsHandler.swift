import PetrelProtocol

/// DescribeGroups (15), v0–5: state, protocol and members (with their subscription and assignment).
/// An unknown group is described as Dead with no members, as Kafka does up to v5. A consumer-protocol
/// group is described in the classic shape, so tools that only know DescribeGroups still see its
/// members: protocol type "consumer", its assignor as the protocol, each member's subscription and
/// current assignment in the consumer protocol's encoding (epochs are in ConsumerGroupDescribe).
struct DescribeGroupsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...5
    let coordinator: GroupCoordinator

    func handle(_ request: DescribeGroupsRequest, context: RequestContext) async throws -> DescribeGroupsResponse? {
        DescribeGroupsResponse(
            throttleTimeMs: 0,
            groups: request.groups.map { id in
                if let group = coordinator.describeConsumerGroup(id) { return Self.described(group) }
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

    static func described(_ group: ConsumerGroup) -> DescribeGroupsResponse.DescribedGroup {
        .init(
            errorCode: ErrorCode.none,
            groupId: group.groupID,
            groupState: group.stateName,
            protocolType: "consumer",
            protocolData: group.isEmpty ? "" : group.assignorInUse.rawValue,
            members: group.members.values.sorted { $0.id < $1.id }.map { member in
                .init(
                    memberId: member.id,
                    groupInstanceId: member.instanceID,
                    clientId: member.clientID,
                    clientHost: member.clientHost,
                    memberMetadata: ConsumerProtocolSubscription(topics: member.subscribedTopics).embedded,
                    memberAssignment: ConsumerProtocolAssignment(
                        partitions: member.assigned.subtracting(member.revoking)
                    ).embedded
                )
            },
            authorizedOperations: MetadataHandler.operationsNotProvided
        )
    }
}
