import NIOCore
import PetrelProtocol
import Testing

@testable import PetrelBroker

/// The group state machine, driven by a fake clock: every call says what time it is.
@Suite("Classic group state machine")
struct ClassicGroupTests {
    static let range = GroupMember.SupportedProtocol(name: "range", metadata: ByteBuffer(string: "subscription"))
    static let roundRobin = GroupMember.SupportedProtocol(name: "roundrobin", metadata: ByteBuffer(string: "rr"))

    var config: GroupCoordinatorConfig = {
        var config = GroupCoordinatorConfig()
        config.initialRebalanceDelayMs = 0
        return config
    }()

    private var nextWaiter: WaiterID = 1

    func input(
        _ memberID: String = "",
        instance: String? = nil,
        client: String = "c",
        session: Int32 = 10_000,
        rebalance: Int32 = 30_000,
        protocols: [GroupMember.SupportedProtocol] = [range],
        version: Int16 = 5,
        type: String = "consumer"
    ) -> ClassicGroup.JoinInput {
        .init(
            memberID: memberID,
            instanceID: instance,
            clientID: client,
            clientHost: "/127.0.0.1",
            sessionTimeoutMs: session,
            rebalanceTimeoutMs: rebalance,
            protocolType: type,
            protocols: protocols,
            apiVersion: version
        )
    }

    /// Joins and returns the immediate answer, or nil if the request was parked.
    mutating func join(
        _ group: inout ClassicGroup,
        _ input: ClassicGroup.JoinInput,
        at now: Int64,
        effects: inout GroupEffects
    )
        -> (WaiterID, JoinGroupResponse?)
    {
        let waiter = nextWaiter
        nextWaiter += 1
        if case .respond(let response) = group.join(input, waiter: waiter, now: now, effects: &effects) {
            return (waiter, response)
        }
        return (waiter, nil)
    }

    /// A dynamic member's two-step join (v4+): MEMBER_ID_REQUIRED, then the real join.
    mutating func joinNew(
        _ group: inout ClassicGroup,
        at now: Int64,
        effects: inout GroupEffects,
        client: String = "c"
    )
        -> (memberID: String, waiter: WaiterID)
    {
        let (_, first) = join(&group, input(client: client), at: now, effects: &effects)
        let memberID = first!.memberId
        #expect(first?.errorCode == ErrorCode.memberIDRequired)
        #expect(memberID.hasPrefix("\(client)-"))
        let (waiter, _) = join(&group, input(memberID), at: now, effects: &effects)
        return (memberID, waiter)
    }

    mutating func sync(
        _ group: inout ClassicGroup,
        _ memberID: String,
        generation: Int32,
        assignments: [String: ByteBuffer] = [:],
        at now: Int64,
        effects: inout GroupEffects
    ) -> SyncGroupResponse? {
        let waiter = nextWaiter
        nextWaiter += 1
        let input = ClassicGroup.SyncInput(
            memberID: memberID,
            instanceID: nil,
            generation: generation,
            protocolType: nil,
            protocolName: nil,
            assignments: assignments
        )
        if case .respond(let response) = group.sync(input, waiter: waiter, now: now, effects: &effects) {
            return response
        }
        return nil
    }

    /// Brings a group with `count` dynamic members to Stable at generation 1 by t = 1000, the first
    /// member leading (they all join within an initial delay, so one round suffices).
    mutating func stableGroup(members count: Int) -> (ClassicGroup, [String]) {
        var delayed = config
        delayed.initialRebalanceDelayMs = 1_000
        var group = ClassicGroup(groupID: "g", config: delayed)
        var effects = GroupEffects()
        for index in 0..<count {
            #expect(join(&group, input(client: "c\(index)", version: 3), at: 0, effects: &effects).1 == nil)
        }
        let ids = group.orderedMembers.map(\.memberID)
        group.tick(now: 1_000, effects: &effects)
        #expect(group.state == .completingRebalance)
        #expect(group.generation == 1)
        var syncEffects = GroupEffects()
        let assignments = Dictionary(uniqueKeysWithValues: ids.map { ($0, ByteBuffer(string: "assigned-\($0)")) })
        for id in ids.dropFirst() { _ = sync(&group, id, generation: 1, at: 1_000, effects: &syncEffects) }
        _ = sync(&group, ids[0], generation: 1, assignments: assignments, at: 1_000, effects: &syncEffects)
        #expect(group.state == .stable)
        #expect(syncEffects.syncs.count == count)
        return (group, ids)
    }

    @Test("a new member gets MEMBER_ID_REQUIRED, joins with that id, leads generation 1 and syncs its own assignment")
    mutating func singleMember() {
        var group = ClassicGroup(groupID: "g", config: config)
        var effects = GroupEffects()
        let (id, waiter) = joinNew(&group, at: 0, effects: &effects)
        // No initial delay: everyone (one member) has joined, so the join phase completes within the call.
        #expect(group.state == .completingRebalance)
        #expect(group.generation == 1)
        let answer = effects.joins.first { $0.0 == waiter }?.1
        #expect(answer?.errorCode == ErrorCode.none)
        #expect(answer?.leader == id && answer?.memberId == id)
        #expect(answer?.protocolName == "range")
        #expect(answer?.members.map(\.memberId) == [id])
        #expect(answer?.members.first?.metadata == ByteBuffer(string: "subscription"))

        var syncEffects = GroupEffects()
        _ = sync(
            &group,
            id,
            generation: 1,
            assignments: [id: ByteBuffer(string: "all of it")],
            at: 10,
            effects: &syncEffects
        )
        #expect(group.state == .stable)
        #expect(syncEffects.syncs.first?.1.assignment == ByteBuffer(string: "all of it"))
    }

    @Test("the initial delay waits for more members and each newcomer extends it")
    mutating func initialDelay() {
        config.initialRebalanceDelayMs = 3_000
        var group = ClassicGroup(groupID: "g", config: config)
        var effects = GroupEffects()
        let (a, aWaiter) = joinNew(&group, at: 0, effects: &effects)
        #expect(group.state == .preparingRebalance)
        let (b, bWaiter) = joinNew(&group, at: 1_000, effects: &effects)
        #expect(effects.joins.isEmpty)
        group.tick(now: 3_999, effects: &effects)
        #expect(group.state == .preparingRebalance, "B's arrival at 1000 moved the deadline to 4000")
        group.tick(now: 4_000, effects: &effects)
        #expect(group.state == .completingRebalance)
        let answers = Dictionary(uniqueKeysWithValues: effects.joins.map { ($0.0, $0.1) })
        #expect(answers[aWaiter]?.leader == a)
        #expect(answers[aWaiter]?.members.map(\.memberId) == [a, b])
        #expect(answers[bWaiter]?.members == [])
        #expect(answers[bWaiter]?.generationId == 1)

        // Followers' syncs wait for the leader's.
        var syncs = GroupEffects()
        #expect(sync(&group, b, generation: 1, at: 4_100, effects: &syncs) == nil)
        _ = sync(
            &group,
            a,
            generation: 1,
            assignments: [a: ByteBuffer(string: "p0"), b: ByteBuffer(string: "p1")],
            at: 4_200,
            effects: &syncs
        )
        #expect(Set(syncs.syncs.map { String(buffer: $0.1.assignment) }) == ["p0", "p1"])
    }

    @Test(
        "heartbeats: fine when stable, REBALANCE_IN_PROGRESS while rejoining, errors for strangers and old generations"
    )
    mutating func heartbeats() {
        var (group, ids) = stableGroup(members: 2)
        #expect(group.heartbeat(memberID: ids[1], instanceID: nil, generation: 1, now: 100) == .none)
        #expect(group.heartbeat(memberID: ids[1], instanceID: nil, generation: 0, now: 100) == .illegalGeneration)
        #expect(group.heartbeat(memberID: "stranger", instanceID: nil, generation: 1, now: 100) == .unknownMemberID)
        var effects = GroupEffects()
        // The leader rejoining starts a rebalance.
        _ = join(&group, input(ids[0], version: 3), at: 200, effects: &effects)
        #expect(group.state == .preparingRebalance)
        #expect(group.heartbeat(memberID: ids[1], instanceID: nil, generation: 1, now: 300) == .rebalanceInProgress)
        #expect(
            sync(&group, ids[1], generation: 1, at: 300, effects: &effects)?.errorCode == ErrorCode.rebalanceInProgress
        )
    }

    @Test("a member that stops heartbeating is evicted after its session timeout, and the rest rebalance")
    mutating func sessionTimeout() {
        var (group, ids) = stableGroup(members: 2)
        var effects = GroupEffects()
        for now in stride(from: Int64(2_000), through: 11_000, by: 1_000) {
            #expect(group.heartbeat(memberID: ids[0], instanceID: nil, generation: 1, now: now) == .none)
            group.tick(now: now, effects: &effects)
        }
        #expect(group.members.count == 2, "the second member was last seen at 1000: 10 s is not yet past")
        group.tick(now: 11_001, effects: &effects)
        #expect(group.members.keys.sorted() == [ids[0]])
        #expect(group.state == .preparingRebalance)
        #expect(group.heartbeat(memberID: ids[0], instanceID: nil, generation: 1, now: 11_002) == .rebalanceInProgress)
        let (waiter, _) = join(&group, input(ids[0], version: 3), at: 11_003, effects: &effects)
        #expect(effects.joins.first { $0.0 == waiter }?.1.generationId == 2)
        #expect(group.state == .completingRebalance)
    }

    @Test("members that do not rejoin within the rebalance timeout are dropped")
    mutating func rebalanceTimeout() {
        var (group, ids) = stableGroup(members: 3)
        var effects = GroupEffects()
        let (waiter, _) = join(&group, input(ids[0], version: 3), at: 1_000, effects: &effects)
        _ = join(&group, input(ids[2], version: 3), at: 1_500, effects: &effects)
        // The member keeps heartbeating (so its session never expires) but never rejoins.
        for now in stride(from: Int64(2_000), through: 30_000, by: 4_000) {
            #expect(group.heartbeat(memberID: ids[1], instanceID: nil, generation: 1, now: now) == .rebalanceInProgress)
            group.tick(now: now, effects: &effects)
        }
        group.tick(now: 30_999, effects: &effects)
        #expect(group.state == .preparingRebalance)
        group.tick(now: 31_000, effects: &effects)
        #expect(group.state == .completingRebalance)
        #expect(group.members.keys.sorted() == [ids[0], ids[2]].sorted())
        #expect(effects.joins.first { $0.0 == waiter }?.1.members.count == 2)
    }

    @Test("a member whose connection died while parked in JoinGroup is evicted by its session timeout")
    mutating func abandonedJoin() {
        var (group, ids) = stableGroup(members: 2)
        var effects = GroupEffects()
        // The leader rejoins (starting a rebalance) and is then killed: its connection closes.
        let (deadWaiter, _) = join(&group, input(ids[0], version: 3), at: 2_000, effects: &effects)
        #expect(group.state == .preparingRebalance)
        group.abandonWaiter(deadWaiter)
        let (waiter, _) = join(&group, input(ids[1], version: 3), at: 3_000, effects: &effects)
        group.tick(now: 12_000, effects: &effects)
        #expect(group.state == .preparingRebalance, "the session (10 s from 2000) has not run out")
        group.tick(now: 12_001, effects: &effects)
        #expect(group.members.keys.sorted() == [ids[1]])
        #expect(group.state == .completingRebalance, "without waiting for the 30 s rebalance timeout")
        #expect(effects.joins.first { $0.0 == waiter }?.1.members.map(\.memberId) == [ids[1]])
    }

    @Test("a static member that restarts gets a new id without a rebalance; the old id is fenced")
    mutating func staticMembership() {
        var group = ClassicGroup(groupID: "g", config: config)
        var effects = GroupEffects()
        let (_, _) = join(&group, input(instance: "worker-1", client: "leader", version: 5), at: 0, effects: &effects)
        let leader = group.leaderID!
        _ = join(&group, input(instance: "worker-2", client: "follower", version: 5), at: 0, effects: &effects)
        _ = join(&group, input(leader, instance: "worker-1", version: 5), at: 0, effects: &effects)
        #expect(group.state == .completingRebalance)
        let follower = group.staticMembers["worker-2"]!
        var syncs = GroupEffects()
        _ = sync(&group, follower, generation: group.generation, at: 0, effects: &syncs)
        _ = sync(
            &group,
            leader,
            generation: group.generation,
            assignments: [follower: ByteBuffer(string: "mine")],
            at: 0,
            effects: &syncs
        )
        #expect(group.state == .stable)
        let generation = group.generation

        // The follower restarts: an empty member id, the same instance id.
        let (_, answer) = join(
            &group,
            input(instance: "worker-2", client: "follower", version: 5),
            at: 5_000,
            effects: &effects
        )
        let newID = answer!.memberId
        #expect(answer?.errorCode == ErrorCode.none)
        #expect(newID != follower)
        #expect(group.state == .stable)
        #expect(group.generation == generation)
        #expect(
            sync(&group, newID, generation: generation, at: 5_001, effects: &effects)?.assignment
                == ByteBuffer(string: "mine")
        )
        #expect(
            group.heartbeat(memberID: follower, instanceID: "worker-2", generation: generation, now: 5_002)
                == .fencedInstanceID
        )
        // Back once more with other metadata for the same protocol (a cooperative member's owned
        // partitions, say): the group's protocol does not change, so nothing rebalances.
        let owned = GroupMember.SupportedProtocol(name: "range", metadata: ByteBuffer(string: "owned: 0,1"))
        let (_, again) = join(
            &group,
            input(instance: "worker-2", client: "follower", protocols: [owned], version: 5),
            at: 6_000,
            effects: &effects
        )
        #expect(again?.errorCode == ErrorCode.none && group.state == .stable && group.generation == generation)
    }

    @Test("leaving triggers a rebalance; the last one out leaves the group Empty")
    mutating func leaving() {
        var (group, ids) = stableGroup(members: 2)
        var effects = GroupEffects()
        #expect(group.leave([(ids[1], nil)], now: 100, effects: &effects) == [.none])
        #expect(group.state == .preparingRebalance)
        #expect(group.leave([("nobody", nil)], now: 100, effects: &effects) == [.unknownMemberID])
        #expect(group.leave([(ids[0], nil)], now: 200, effects: &effects) == [.none])
        #expect(group.state == .empty)
        #expect(group.members.isEmpty)
    }

    @Test("offset commits: generation and membership rules")
    mutating func commitRules() {
        let empty = ClassicGroup(groupID: "g", config: config)
        #expect(empty.commitCheck(memberID: "", instanceID: nil, generation: -1) == nil)
        var (group, ids) = stableGroup(members: 2)
        #expect(group.commitCheck(memberID: "", instanceID: nil, generation: -1) == .unknownMemberID)
        #expect(group.commitCheck(memberID: ids[0], instanceID: nil, generation: 1) == nil)
        #expect(group.commitCheck(memberID: ids[0], instanceID: nil, generation: 7) == .illegalGeneration)
        #expect(group.commitCheck(memberID: "x", instanceID: nil, generation: 1) == .unknownMemberID)
        var effects = GroupEffects()
        _ = join(&group, input(ids[0], version: 3), at: 10, effects: &effects)
        // Still preparing: commits for the generation that is ending are accepted.
        #expect(group.commitCheck(memberID: ids[1], instanceID: nil, generation: 1) == nil)
        _ = join(&group, input(ids[1], version: 3), at: 20, effects: &effects)
        #expect(group.state == .completingRebalance)
        #expect(group.commitCheck(memberID: ids[1], instanceID: nil, generation: 2) == .rebalanceInProgress)
    }

    @Test("joins that cannot fit the group are refused with the right codes")
    mutating func refusals() {
        var group = ClassicGroup(groupID: "g", config: config)
        var effects = GroupEffects()
        #expect(
            join(&group, input(session: 1_000), at: 0, effects: &effects).1?.errorCode
                == ErrorCode.invalidSessionTimeout
        )
        #expect(join(&group, input("ghost"), at: 0, effects: &effects).1?.errorCode == ErrorCode.unknownMemberID)
        _ = joinNew(&group, at: 0, effects: &effects)
        #expect(
            join(&group, input(type: "connect"), at: 0, effects: &effects).1?.errorCode
                == ErrorCode.inconsistentGroupProtocol
        )
        let other = GroupMember.SupportedProtocol(name: "sticky", metadata: ByteBuffer())
        #expect(
            join(&group, input(protocols: [other]), at: 0, effects: &effects).1?.errorCode
                == ErrorCode.inconsistentGroupProtocol
        )
    }

    @Test("the protocol every member supports that most prefer is chosen")
    mutating func protocolVote() {
        config.initialRebalanceDelayMs = 1_000
        var group = ClassicGroup(groupID: "g", config: config)
        var effects = GroupEffects()
        let sticky = GroupMember.SupportedProtocol(name: "sticky", metadata: ByteBuffer())
        _ = join(&group, input(protocols: [sticky, Self.roundRobin, Self.range], version: 3), at: 0, effects: &effects)
        _ = join(&group, input(protocols: [Self.roundRobin, Self.range], version: 3), at: 0, effects: &effects)
        _ = join(&group, input(protocols: [Self.roundRobin, sticky, Self.range], version: 3), at: 0, effects: &effects)
        group.tick(now: 1_000, effects: &effects)
        #expect(group.protocolName == "roundrobin")
    }

    @Test("an id handed out with MEMBER_ID_REQUIRED holds the join phase until it is used or expires")
    mutating func pendingMembers() {
        var (group, ids) = stableGroup(members: 1)
        var effects = GroupEffects()
        let (_, required) = join(&group, input(session: 6_000), at: 100, effects: &effects)
        #expect(required?.errorCode == ErrorCode.memberIDRequired)
        _ = join(&group, input(ids[0], version: 4), at: 200, effects: &effects)
        #expect(group.state == .preparingRebalance, "the pending newcomer may still join")
        group.tick(now: 6_101, effects: &effects)
        #expect(group.pendingMembers.isEmpty)
        #expect(group.state == .completingRebalance)
    }
}
