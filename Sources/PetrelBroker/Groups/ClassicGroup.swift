import NIOCore
import PetrelProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Responses owed to parked requests, produced by a state change.
struct GroupEffects {
    var joins: [(WaiterID, JoinGroupResponse)] = []
    var syncs: [(WaiterID, SyncGroupResponse)] = []
    /// The group's generation, protocol or membership changed (worth persisting or logging).
    var generationCompleted = false
    /// The leader's assignment arrived: the group is Stable in a new generation (Kafka stores it then).
    var assignmentCompleted = false
}

/// The classic group protocol's state machine for one group, without sockets or clocks: every method
/// takes the current time and returns what to answer. The coordinator drives it with the real clock;
/// tests drive it with a fake one.
struct ClassicGroup {
    let groupID: String
    let config: GroupCoordinatorConfig
    var state: GroupState = .empty
    var generation: Int32 = 0
    var protocolType: String?
    var protocolName: String?
    var leaderID: String?
    /// Members in join order (the order the leader sees them in).
    var members: [String: GroupMember] = [:]
    var memberOrder: [String] = []
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet used to join, with their expiry time.
    var pendingMembers: [String: Int64] = [:]
    /// group.instance.id → member id, for static members.
    var staticMembers: [String: String] = [:]

    /// When the join phase must end whoever has rejoined.
    var rebalanceDeadline: Int64 = 0
    /// Until when a group that left Empty waits for more members (group.initial.rebalance.delay.ms).
    var initialDelayDeadline: Int64?
    var initialDelayStart: Int64 = 0
    /// When members that have not sent SyncGroup are dropped.
    var syncDeadline: Int64 = 0

    init(groupID: String, config: GroupCoordinatorConfig, protocolType: String? = nil, generation: Int32 = 0) {
        self.groupID = groupID
        self.config = config
        self.protocolType = protocolType
        self.generation = generation
    }

    var isEmpty: Bool { members.isEmpty }
    var orderedMembers: [GroupMember] { memberOrder.compactMap { members[$0] } }

    // MARK: - Join

    struct JoinInput {
        var memberID: String
        var instanceID: String?
        var clientID: String
        var clientHost: String
        var sessionTimeoutMs: Int32
        var rebalanceTimeoutMs: Int32
        var protocolType: String
        var protocols: [GroupMember.SupportedProtocol]
        var apiVersion: Int16
        /// JoinGroup v4+: a new dynamic member first gets an id with MEMBER_ID_REQUIRED.
        var requiresKnownMemberID: Bool { apiVersion >= 4 }
    }

    enum JoinOutcome {
        case respond(JoinGroupResponse)
        case parked
    }

    mutating func join(
        _ input: JoinInput,
        waiter: WaiterID,
        now: Int64,
        effects: inout GroupEffects
    ) -> JoinOutcome {
        if state == .dead { return .respond(Self.joinError(.coordinatorNotAvailable, memberID: input.memberID)) }
        guard input.sessionTimeoutMs >= config.minSessionTimeoutMs, input.sessionTimeoutMs <= config.maxSessionTimeoutMs
        else {
            return .respond(Self.joinError(.invalidSessionTimeout, memberID: input.memberID))
        }
        guard isCompatible(protocolType: input.protocolType, protocols: input.protocols) else {
            return .respond(Self.joinError(.inconsistentGroupProtocol, memberID: input.memberID))
        }
        if input.memberID.isEmpty {
            return joinUnknownMember(input, waiter: waiter, now: now, effects: &effects)
        }
        if pendingMembers.removeValue(forKey: input.memberID) != nil {
            return addMemberAndRebalance(input, memberID: input.memberID, waiter: waiter, now: now, effects: &effects)
        }
        guard var member = members[input.memberID] else {
            return .respond(Self.joinError(.unknownMemberID, memberID: input.memberID))
        }
        if let instance = input.instanceID, staticMembers[instance] != input.memberID {
            return .respond(Self.joinError(.fencedInstanceID, memberID: input.memberID))
        }
        member.lastSeen = now
        switch state {
        case .preparingRebalance:
            update(&member, with: input, waiter: waiter, effects: &effects)
            members[member.memberID] = member
            maybeCompleteJoin(now: now, effects: &effects)
            // Parked even if the join phase just completed: its answer is then already in `effects`.
            return .parked
        case .completingRebalance:
            if member.hasSameProtocols(as: input.protocols) {
                // A duplicate join (e.g. the response got lost): answer with the generation in progress.
                members[member.memberID] = member
                return .respond(joinResponse(for: member.memberID))
            }
            update(&member, with: input, waiter: waiter, effects: &effects)
            members[member.memberID] = member
            prepareRebalance(now: now, effects: &effects)
            maybeCompleteJoin(now: now, effects: &effects)
            return .parked
        case .stable:
            if member.memberID != leaderID, member.hasSameProtocols(as: input.protocols) {
                // A follower rejoining with nothing new: no rebalance, same generation.
                members[member.memberID] = member
                return .respond(joinResponse(for: member.memberID))
            }
            update(&member, with: input, waiter: waiter, effects: &effects)
            members[member.memberID] = member
            prepareRebalance(now: now, effects: &effects)
            maybeCompleteJoin(now: now, effects: &effects)
            return .parked
        case .empty, .dead:
            return .respond(Self.joinError(.unknownMemberID, memberID: input.memberID))
        }
    }

    private mutating func joinUnknownMember(
        _ input: JoinInput,
        waiter: WaiterID,
        now: Int64,
        effects: inout GroupEffects
    ) -> JoinOutcome {
        if config.maxGroupSize > 0, members.count + pendingMembers.count >= config.maxGroupSize {
            return .respond(Self.joinError(.groupMaxSizeReached, memberID: ""))
        }
        let newID = Self.newMemberID(clientID: input.clientID)
        if let instance = input.instanceID {
            if let oldID = staticMembers[instance], let old = members[oldID] {
                return replaceStaticMember(old, newID: newID, input: input, waiter: waiter, now: now, effects: &effects)
            }
            return addMemberAndRebalance(input, memberID: newID, waiter: waiter, now: now, effects: &effects)
        }
        if input.requiresKnownMemberID {
            // KIP-394: the client must come back with this id, so a lost response cannot leave a ghost member.
            pendingMembers[newID] = now + Int64(input.sessionTimeoutMs)
            return .respond(Self.joinError(.memberIDRequired, memberID: newID))
        }
        return addMemberAndRebalance(input, memberID: newID, waiter: waiter, now: now, effects: &effects)
    }

    /// A static member came back (with a new member id): it takes over the old member's place. In a
    /// stable group whose protocols it does not change, that needs no rebalance.
    private mutating func replaceStaticMember(
        _ old: GroupMember,
        newID: String,
        input: JoinInput,
        waiter: WaiterID,
        now: Int64,
        effects: inout GroupEffects
    ) -> JoinOutcome {
        if let oldJoin = old.joinWaiter {
            effects.joins.append((oldJoin.id, Self.joinError(.fencedInstanceID, memberID: old.memberID)))
        }
        if let oldSync = old.syncWaiter {
            effects.syncs.append((oldSync, SyncGroupResponse(errorCode: ErrorCode.fencedInstanceID)))
        }
        let member = GroupMember(
            memberID: newID,
            instanceID: input.instanceID,
            clientID: input.clientID,
            clientHost: input.clientHost,
            sessionTimeoutMs: input.sessionTimeoutMs,
            rebalanceTimeoutMs: input.rebalanceTimeoutMs,
            protocolType: input.protocolType,
            protocols: input.protocols,
            assignment: old.assignment,
            lastSeen: now
        )
        members[old.memberID] = nil
        members[newID] = member
        memberOrder = memberOrder.map { $0 == old.memberID ? newID : $0 }
        staticMembers[input.instanceID!] = newID
        let wasLeader = leaderID == old.memberID
        if wasLeader { leaderID = newID }
        // As Kafka: in a stable group a follower coming back rebalances nothing unless the protocol the
        // group would select changes. Its metadata may differ (a cooperative member lists the partitions
        // it owns, which a restarted process does not), the protocol it shares with the group does not.
        if state == .stable, !wasLeader, selectProtocol() == protocolName {
            return .respond(joinResponse(for: newID))
        }
        members[newID]!.joinWaiter = .init(id: waiter, apiVersion: input.apiVersion)
        if state != .preparingRebalance { prepareRebalance(now: now, effects: &effects) }
        maybeCompleteJoin(now: now, effects: &effects)
        return .parked
    }

    private mutating func addMemberAndRebalance(
        _ input: JoinInput,
        memberID: String,
        waiter: WaiterID,
        now: Int64,
        effects: inout GroupEffects
    ) -> JoinOutcome {
        let member = GroupMember(
            memberID: memberID,
            instanceID: input.instanceID,
            clientID: input.clientID,
            clientHost: input.clientHost,
            sessionTimeoutMs: input.sessionTimeoutMs,
            rebalanceTimeoutMs: input.rebalanceTimeoutMs,
            protocolType: input.protocolType,
            protocols: input.protocols,
            lastSeen: now,
            joinWaiter: .init(id: waiter, apiVersion: input.apiVersion)
        )
        members[memberID] = member
        memberOrder.append(memberID)
        if let instance = input.instanceID { staticMembers[instance] = memberID }
        if protocolType == nil || state == .empty { protocolType = input.protocolType }
        if state == .preparingRebalance {
            extendInitialDelay(now: now)
        } else {
            prepareRebalance(now: now, effects: &effects)
        }
        maybeCompleteJoin(now: now, effects: &effects)
        return .parked
    }

    private mutating func update(
        _ member: inout GroupMember,
        with input: JoinInput,
        waiter: WaiterID,
        effects: inout GroupEffects
    ) {
        if let previous = member.joinWaiter {
            // A second JoinGroup from the same member supersedes the first.
            effects.joins.append((previous.id, Self.joinError(.rebalanceInProgress, memberID: member.memberID)))
        }
        member.protocols = input.protocols
        member.sessionTimeoutMs = input.sessionTimeoutMs
        member.rebalanceTimeoutMs = input.rebalanceTimeoutMs
        member.clientID = input.clientID
        member.clientHost = input.clientHost
        member.joinWaiter = .init(id: waiter, apiVersion: input.apiVersion)
    }

    // MARK: - Rebalance

    /// Starts a join phase: parked syncs fail with REBALANCE_IN_PROGRESS, members must rejoin.
    mutating func prepareRebalance(now: Int64, effects: inout GroupEffects) {
        if state == .completingRebalance {
            for id in memberOrder {
                if let sync = members[id]?.syncWaiter {
                    effects.syncs.append((sync, SyncGroupResponse(errorCode: ErrorCode.rebalanceInProgress)))
                    members[id]?.syncWaiter = nil
                }
            }
        }
        let wasEmpty = state == .empty
        state = .preparingRebalance
        rebalanceDeadline = now + Int64(members.values.map(\.rebalanceTimeoutMs).max() ?? 0)
        if wasEmpty, config.initialRebalanceDelayMs > 0 {
            initialDelayStart = now
            initialDelayDeadline = min(now + config.initialRebalanceDelayMs, rebalanceDeadline)
        } else {
            initialDelayDeadline = nil
        }
    }

    /// A new member during the initial delay extends it, never past the rebalance timeout.
    private mutating func extendInitialDelay(now: Int64) {
        rebalanceDeadline = max(rebalanceDeadline, now + Int64(members.values.map(\.rebalanceTimeoutMs).max() ?? 0))
        guard initialDelayDeadline != nil else { return }
        let limit = initialDelayStart + Int64(members.values.map(\.rebalanceTimeoutMs).max() ?? 0)
        initialDelayDeadline = min(now + config.initialRebalanceDelayMs, limit)
    }

    /// Ends the join phase once every known member has rejoined and no handed-out id is outstanding,
    /// unless the initial delay still holds.
    mutating func maybeCompleteJoin(now: Int64, effects: inout GroupEffects) {
        guard state == .preparingRebalance else { return }
        if let delay = initialDelayDeadline, now < delay { return }
        if members.values.allSatisfy({ $0.joinWaiter != nil }) && pendingMembers.isEmpty {
            completeJoin(now: now, effects: &effects)
        }
    }

    /// Ends the join phase: drops dynamic members that did not rejoin, picks the protocol and the
    /// leader, starts a new generation and answers every parked JoinGroup.
    mutating func completeJoin(now: Int64, effects: inout GroupEffects) {
        for id in memberOrder where members[id]?.joinWaiter == nil && members[id]?.isStatic == false {
            removeMember(id, effects: &effects)
        }
        initialDelayDeadline = nil
        generation += 1
        effects.generationCompleted = true
        if members.isEmpty {
            state = .empty
            protocolName = nil
            leaderID = nil
            return
        }
        protocolName = selectProtocol()
        if leaderID == nil || members[leaderID!]?.joinWaiter == nil {
            leaderID = memberOrder.first { members[$0]?.joinWaiter != nil } ?? memberOrder.first
        }
        state = .completingRebalance
        syncDeadline = now + Int64(members.values.map(\.rebalanceTimeoutMs).max() ?? 0)
        for id in memberOrder {
            guard let waiter = members[id]?.joinWaiter else { continue }
            effects.joins.append((waiter.id, joinResponse(for: id)))
            members[id]?.joinWaiter = nil
            members[id]?.lastSeen = now
        }
    }

    /// The protocol every member supports that most members list first among those.
    private func selectProtocol() -> String? {
        let all = orderedMembers
        guard let first = all.first else { return nil }
        let candidates = first.protocols.map(\.name).filter { name in
            all.allSatisfy { $0.protocols.contains { $0.name == name } }
        }
        var votes: [String: Int] = [:]
        for member in all {
            if let choice = member.protocols.first(where: { candidates.contains($0.name) }) {
                votes[choice.name, default: 0] += 1
            }
        }
        return candidates.max { votes[$0, default: 0] < votes[$1, default: 0] }
    }

    /// Whether a joining member can be in this group: same protocol type, and a protocol in common
    /// with every current member.
    private func isCompatible(protocolType: String, protocols: [GroupMember.SupportedProtocol]) -> Bool {
        if protocolType.isEmpty || protocols.isEmpty { return false }
        if members.isEmpty { return true }
        if let existing = self.protocolType, existing != protocolType { return false }
        let names = Set(protocols.map(\.name))
        return members.values.allSatisfy { member in member.protocols.contains { names.contains($0.name) } }
    }

    func joinResponse(for memberID: String) -> JoinGroupResponse {
        let isLeader = memberID == leaderID
        return JoinGroupResponse(
            errorCode: ErrorCode.none,
            generationId: generation,
            protocolType: protocolType,
            protocolName: protocolName,
            leader: leaderID ?? "",
            memberId: memberID,
            members: isLeader
                ? orderedMembers.map {
                    .init(
                        memberId: $0.memberID,
                        groupInstanceId: $0.instanceID,
                        metadata: $0.metadata(for: protocolName)
                    )
                }
                : []
        )
    }

    static func joinError(_ code: ErrorCode, memberID: String) -> JoinGroupResponse {
        JoinGroupResponse(errorCode: code, generationId: -1, protocolName: nil, leader: "", memberId: memberID)
    }

    static func newMemberID(clientID: String) -> String {
        "\(clientID)-\(UUID().uuidString.lowercased())"
    }

    // MARK: - Membership

    /// Removes a member; its parked requests are answered with UNKNOWN_MEMBER_ID.
    mutating func removeMember(_ memberID: String, effects: inout GroupEffects) {
        guard let member = members.removeValue(forKey: memberID) else { return }
        memberOrder.removeAll { $0 == memberID }
        if let instance = member.instanceID, staticMembers[instance] == memberID { staticMembers[instance] = nil }
        if let join = member.joinWaiter {
            effects.joins.append((join.id, Self.joinError(.unknownMemberID, memberID: memberID)))
        }
        if let sync = member.syncWaiter {
            effects.syncs.append((sync, SyncGroupResponse(errorCode: ErrorCode.unknownMemberID)))
        }
        if leaderID == memberID { leaderID = nil }
    }

    /// After members left or were evicted: rebalance, or finish a join phase now complete.
    mutating func membershipChanged(now: Int64, effects: inout GroupEffects) {
        switch state {
        case .stable, .completingRebalance:
            if members.isEmpty {
                state = .empty
                generation += 1
                protocolName = nil
                leaderID = nil
                effects.generationCompleted = true
            } else {
                prepareRebalance(now: now, effects: &effects)
                maybeCompleteJoin(now: now, effects: &effects)
            }
        case .preparingRebalance:
            if members.isEmpty {
                completeJoin(now: now, effects: &effects)
            } else {
                maybeCompleteJoin(now: now, effects: &effects)
            }
        case .empty, .dead:
            break
        }
    }

    /// Marks the group dead (DeleteGroups); it must have no members.
    mutating func markDead() {
        state = .dead
    }
}

extension ClassicGroup {
    /// The group as Kafka records it in `__consumer_offsets` (GroupMetadataValue): generation, protocol,
    /// leader, and each member's subscription and assignment.
    func metadataRecord(now: Int64) -> OffsetsTopicRecord.GroupMetadata {
        OffsetsTopicRecord.GroupMetadata(
            protocolType: protocolType ?? "",
            generation: generation,
            protocolName: protocolName,
            leader: leaderID,
            currentStateTimestamp: now,
            members: orderedMembers.map { member in
                .init(
                    memberID: member.memberID,
                    groupInstanceID: member.instanceID,
                    clientID: member.clientID,
                    clientHost: member.clientHost,
                    rebalanceTimeoutMs: member.rebalanceTimeoutMs,
                    sessionTimeoutMs: member.sessionTimeoutMs,
                    subscription: Array(buffer: member.metadata(for: protocolName)),
                    assignment: Array(buffer: member.assignment)
                )
            }
        )
    }
}
