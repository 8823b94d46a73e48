import NIOCore
import PetrelProtocol

/// SyncGroup (14), v0–5.
struct SyncGroupHandler: RequestHandler {
    let versions: ClosedRange<Int16> = 0...5
    let coordinator: GroupCoordinator

    func handle(_ request: SyncGroupRequest, context: RequestContext) async throws -> SyncGroupResponse? {
        var assignments: [String: ByteBuffer] = [:]
        for entry in request.assignments { assignments[entry.memberId] = entry.assignment }
        let input = ClassicGroup.SyncInput(
            memberID: request.memberId,
            instanceID: request.groupInstanceId,
            generation: request.generationId,
            protocolType: request.protocolType,
            protocolName: request.protocolName,
            assignments: assignments
        )
        return await coordinator.sync(groupID: request.groupId, input)
    }
}
