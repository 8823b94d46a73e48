import NIOCore
import PetrelProtocol

/// SyncGroup, Heartbeat, LeaveGroup, offset-commit checks and timeouts.
extension ClassicGroup {
    // MARK: - Sync

    struct SyncInput {
        var memberID: String
        var instanceID: String?
        var generation: Int32
        var protocolType: String?
        var protocolName: String?
        var assignments: [String: ByteBuffer]
    }

    enum SyncOutcome {
        case respond(SyncGroupResponse)
        case parked
    }

    mutating func sync(_ input: SyncInput, waiter: WaiterID, now: Int64, effects: inout GroupEffects) -> SyncOutcome {
        if let error = memberCheck(memberID: input.memberID, instanceID: input.instanceID, generation: input.generation)
        {
            return .respond(SyncGroupResponse(errorCode: error))
        }
        if let type = input.protocolType, type != protocolType {
            return .respond(SyncGroupResponse(errorCode: ErrorCode.inconsistentGroupProtocol))
        }
        if let name = input.protocolName, name != protocolName {
            return .respond(SyncGroupResponse(errorCode: ErrorCode.inconsistentGroupProtocol))
        }
        members[input.memberID]?.lastSeen = now
        switch state {
        case .preparingRebalance:
            return .respond(SyncGroupResponse(errorCode: ErrorCode.rebalanceInProgress))
        case .completingRebalance:
            members[input.memberID]?.syncWaiter = waiter
            if input.memberID == leaderID {
                for id in memberOrder { members[id]?.assignment = input.assignments[id] ?? ByteBuffer() }
                state = .stable
                effects.assignmentCompleted = true
                for id in memberOrder {
                    guard let member = members[id], let parked = member.syncWaiter else { continue }
                    effects.syncs.append((parked, syncResponse(for: member)))
                    members[id]?.syncWaiter = nil
                }
            }
            return .parked
        case .stable:
            return .respond(syncResponse(for: members[input.memberID]!))
        case .empty, .dead:
            return .respond(SyncGroupResponse(errorCode: ErrorCode.unknownMemberID))
        }
    }

    private func syncResponse(for member: GroupMember) -> SyncGroupResponse {
        SyncGroupResponse(
            errorCode: ErrorCode.none,
            protocolType: protocolType,
            protocolName: protocolName,
            assignment: member.assignment
        )
    }

    // MARK: - Heartbeat

    mutating func heartbeat(memberID: String, instanceID: String?, generation: Int32, now: Int64) -> ErrorCode {
        if let error = memberCheck(memberID: memberID, instanceID: instanceID, generation: generation) { return error }
        members[memberID]?.lastSeen = now
        switch state {
        case .preparingRebalance: return .rebalanceInProgress
        case .completingRebalance, .stable: return .none
        case .empty, .dead: return .unknownMemberID
        }
    }

    /// The member checks shared by SyncGroup, Heartbeat and OffsetCommit, in Kafka's order.
    private func memberCheck(memberID: String, instanceID: String?, generation: Int32) -> ErrorCode? {
        if state == .dead { return .coordinatorNotAvailable }
        // A static member replaced by a newer instance of itself is fenced, not merely unknown.
        if let instanceID, let current = staticMembers[instanceID], current != memberID { return .fencedInstanceID }
        guard members[memberID] != nil else { return .unknownMemberID }
        if generation != self.generation { return .illegalGeneration }
        return nil
    }

    // MARK: - Leave

    /// Removes the members (by member id, or for static members by instance id). Returns an error per
    /// member, in order.
    mutating func leave(
        _ leaving: [(memberID: String, instanceID: String?)],
        now: Int64,
        effects: inout GroupEffects
    ) -> [ErrorCode] {
        var results: [ErrorCode] = []
        var changed = false
        for (memberID, instanceID) in leaving {
            let id: String?
            if let instanceID {
                let known = staticMembers[instanceID]
                if let known, !memberID.isEmpty, known != memberID {
                    results.append(.fencedInstanceID)
                    continue
                }
                id = known
            } else {
                id = members[memberID] == nil ? nil : memberID
            }
            guard let id else {
                results.append(.unknownMemberID)
                continue
            }
            removeMember(id, effects: &effects)
            results.append(.none)
            changed = true
        }
        if changed { membershipChanged(now: now, effects: &effects) }
        return results
    }

    // MARK: - Offset commits

    /// Whether a member (or an admin, with generation -1 and no member id) may commit offsets now.
    func commitCheck(memberID: String, instanceID: String?, generation: Int32) -> ErrorCode? {
        if generation < 0 && memberID.isEmpty {
            // Commits from outside the group (manual assignment, admin tools) only while it has no members.
            return members.isEmpty ? nil : .unknownMemberID
        }
        if let error = memberCheck(memberID: memberID, instanceID: instanceID, generation: generation) { return error }
        return state == .completingRebalance ? .rebalanceInProgress : nil
    }

    /// A parked JoinGroup or SyncGroup whose connection closed: the member stops counting as waiting
    /// (and so as alive), and its session timeout decides its fate.
    mutating func abandonWaiter(_ waiter: WaiterID) {
        for id in memberOrder {
            if members[id]?.joinWaiter?.id == waiter { members[id]?.joinWaiter = nil }
            if members[id]?.syncWaiter == waiter { members[id]?.syncWaiter = nil }
        }
    }

    mutating func touch(memberID: String, now: Int64) {
        members[memberID]?.lastSeen = now
    }

    // MARK: - Time

    /// Applies every timeout due at `now`: handed-out ids that were never used, members whose session
    /// expired, the join phase's rebalance timeout and the initial delay, and members that never synced.
    mutating func tick(now: Int64, effects: inout GroupEffects) {
        let expiredPending = pendingMembers.filter { $0.value <= now }.map(\.key)
        for id in expiredPending { pendingMembers[id] = nil }

        // A member parked in JoinGroup or SyncGroup is waiting on us, so it counts as alive.
        let expired = memberOrder.filter { id in
            guard let member = members[id], member.joinWaiter == nil, member.syncWaiter == nil else { return false }
            return now - member.lastSeen > Int64(member.sessionTimeoutMs)
        }
        for id in expired { removeMember(id, effects: &effects) }
        if !expired.isEmpty {
            membershipChanged(now: now, effects: &effects)
        } else if !expiredPending.isEmpty {
            maybeCompleteJoin(now: now, effects: &effects)
        }

        switch state {
        case .preparingRebalance:
            if now >= rebalanceDeadline {
                completeJoin(now: now, effects: &effects)
            } else {
                maybeCompleteJoin(now: now, effects: &effects)
            }
        case .completingRebalance where now >= syncDeadline:
            // The leader never sent its assignment: everyone who did not sync is dropped, and round again.
            let silent = memberOrder.filter { members[$0]?.syncWaiter == nil }
            for id in silent { removeMember(id, effects: &effects) }
            membershipChanged(now: now, effects: &effects)
        default:
            break
        }
    }
}
