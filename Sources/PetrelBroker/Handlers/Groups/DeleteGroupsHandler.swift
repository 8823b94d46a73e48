import PetrelProtocol

/// DeleteGroups (42), v0–2: removes groups without members, and their committed offsets.
struct DeleteGroupsHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...2
    let coordinator: GroupCoordinator

    func handle(_ request: DeleteGroupsRequest, context: RequestContext) async throws -> DeleteGroupsResponse? {
        var results: [DeleteGroupsResponse.DeletableGroupResult] = []
        for id in request.groupsNames {
            let error = id.isEmpty ? ErrorCode.invalidGroupID : await coordinator.delete(groupID: id)
            results.append(.init(groupId: id, errorCode: error))
        }
        return DeleteGroupsResponse(throttleTimeMs: 0, results: results)
    }
}
