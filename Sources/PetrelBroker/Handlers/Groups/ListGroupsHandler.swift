import PetrelProtocol

/// ListGroups (16), v0–5, with the state (v4+) and type (v5+) filters.
struct ListGroupsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...5
    let coordinator: GroupCoordinator

    func handle(_ request: ListGroupsRequest, context: RequestContext) async throws -> ListGroupsResponse? {
        let states = Set(request.statesFilter.map { $0.lowercased() })
        let types = Set(request.typesFilter.map { $0.lowercased() })
        let groups = coordinator.listGroups().filter { summary in
            (states.isEmpty || states.contains(summary.state.lowercased()))
                && (types.isEmpty || types.contains(summary.type))
        }
        return ListGroupsResponse(
            throttleTimeMs: 0,
            errorCode: ErrorCode.none,
            groups: groups.map {
                .init(
                    groupId: $0.groupID,
                    protocolType: $0.protocolType,
                    groupState: $0.state,
                    groupType: $0.type
                )
            }
        )
    }
}
