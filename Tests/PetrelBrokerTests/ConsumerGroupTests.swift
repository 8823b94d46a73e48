import PetrelProtocol
import Testing

@testable import PetrelBroker

/// The consumer protocol's group state machine (KIP-848), driven with a fake clock.
@Suite("Consumer-protocol group")
struct ConsumerGroupTests {
    private var group = ConsumerGroup(groupID: "workers", config: ConsumerGroup.Config(sessionTimeoutMs: 10_000))
    private let topics: [String: Int32] = ["orders": 6]

    private func partitions(_ numbers: [Int32]) -> Set<TopicPartition> {
        Set(numbers.map { TopicPartition("orders", $0) })
    }

    /// Joins a member subscribed to orders and returns its answer.
    private mutating func join(_ id: String, instance: String? = nil, now: Int64 = 0) -> ConsumerGroup.Answer {
        group.heartbeat(
            .init(
                memberID: id,
                memberEpoch: 0,
                instanceID: instance,
                rebalanceTimeoutMs: 5_000,
                subscribedTopics: ["orders"]
            ),
            topics: topics,
            now: now
        )
    }

    /// A heartbeat reporting what the member holds.
    private mutating func beat(
        _ id: String,
        epoch: Int32,
        owned: Set<TopicPartition>? = nil,
        now: Int64 = 0
    )
        -> ConsumerGroup.Answer
    {
        group.heartbeat(
            .init(memberID: id, memberEpoch: epoch, ownedPartitions: owned.map { Array($0) }),
            topics: topics,
            now: now
        )
    }

    @Test("the first member gets every partition at the first group epoch")
    mutating func firstMember() {
        let answer = join("a")
        #expect(answer.errorCode == .none && answer.memberID == "a" && answer.memberEpoch == 1)
        #expect(answer.assignment == partitions([0, 1, 2, 3, 4, 5]))
        #expect(group.stateName == "Stable")
    }

    @Test("a second member gets its half only after the first gave it up; the first never stops")
    mutating func revokeBeforeAssign() {
        _ = join("a")
        let joined = join("b")
        #expect(joined.memberEpoch == 2 && joined.assignment == [])
        // a is told to keep only its target half (its epoch stays until it acknowledges)...
        let told = beat("a", epoch: 1)
        let kept = try! #require(told.assignment)
        #expect(kept.count == 3 && told.memberEpoch == 1)
        // ...b still gets nothing: a holds the other half until it says it let go.
        #expect(beat("b", epoch: 2).assignment == nil)
        let acked = beat("a", epoch: 1, owned: kept)
        #expect(acked.memberEpoch == 2)
        let given = try! #require(beat("b", epoch: 2).assignment)
        #expect(given.count == 3 && given.isDisjoint(with: kept))
        #expect(group.stateName == "Stable")
    }

    @Test("a member that stops heartbeating is removed after its session timeout and its partitions move")
    mutating func sessionTimeout() {
        _ = join("a")
        _ = join("b", now: 0)
        let kept = beat("a", epoch: 1).assignment!
        _ = beat("a", epoch: 1, owned: kept)
        _ = beat("b", epoch: 2)
        _ = beat("a", epoch: 2, now: 9_000)
        #expect(group.expire(now: 10_001) == ["b"])
        let answer = beat("a", epoch: 2, now: 10_002)
        #expect(answer.assignment == partitions([0, 1, 2, 3, 4, 5]) && answer.memberEpoch == 3)
    }

    @Test("leaving hands the partitions over at once; an unknown or stale member is told so")
    mutating func leaving() {
        _ = join("a")
        _ = join("b")
        let kept = beat("a", epoch: 1).assignment!
        _ = beat("a", epoch: 1, owned: kept)
        _ = beat("b", epoch: 2)
        #expect(beat("b", epoch: ConsumerGroup.leaveEpoch).errorCode == .none)
        let after = beat("a", epoch: 2)
        #expect(after.assignment == partitions([0, 1, 2, 3, 4, 5]) && after.memberEpoch == 3)
        #expect(beat("b", epoch: 2).errorCode == .unknownMemberID)
        #expect(beat("a", epoch: 2).errorCode == .none, "the previous epoch is still answered")
        #expect(beat("a", epoch: 1).errorCode == .fencedMemberEpoch)
    }

    @Test("a static member that leaves with -2 and comes back gets its partitions back, nothing else moves")
    mutating func staticMember() {
        _ = join("a", instance: "worker-1")
        _ = join("b", instance: "worker-2")
        let aKept = beat("a", epoch: 1).assignment!
        _ = beat("a", epoch: 1, owned: aKept)
        let bGiven = beat("b", epoch: 2).assignment!
        let epochBefore = group.groupEpoch
        _ = beat("b", epoch: ConsumerGroup.staticLeaveEpoch)
        // b's process restarts as b2 under the same instance id.
        let back = join("b2", instance: "worker-2", now: 1_000)
        #expect(back.errorCode == .none && back.assignment == bGiven)
        #expect(group.groupEpoch == epochBefore, "no rebalance")
        #expect(join("c", instance: "worker-1").errorCode == .unreleasedInstanceID)
    }

    @Test("a member that keeps a revoked partition past its rebalance timeout is fenced")
    mutating func revocationTimeout() {
        _ = join("a")
        _ = join("b")
        _ = beat("a", epoch: 1, now: 100)
        #expect(group.expire(now: 5_101) == ["a"])
    }

    @Test("new partitions are assigned without members doing anything but heartbeat")
    mutating func newPartitions() {
        _ = join("a")
        let grown = group.heartbeat(.init(memberID: "a", memberEpoch: 1), topics: ["orders": 8], now: 1)
        #expect(grown.assignment?.count == 8 && grown.memberEpoch == 2)
    }

    @Test("uniform is sticky and even; range gives contiguous ranges")
    func assignors() {
        let members = ["a", "b", "c"].map { ServerAssignor.Member(id: $0, topics: ["orders"]) }
        let first = ServerAssignor.uniform.assign(members: members, partitionCounts: ["orders": 6], current: [:])
        #expect(first.values.map(\.count).sorted() == [2, 2, 2])
        let withD = members + [ServerAssignor.Member(id: "d", topics: ["orders"])]
        let second = ServerAssignor.uniform.assign(members: withD, partitionCounts: ["orders": 6], current: first)
        #expect(second.values.map(\.count).sorted() == [1, 1, 2, 2])
        let moved = ["a", "b", "c"].reduce(0) { $0 + first[$1]!.subtracting(second[$1]!).count }
        #expect(moved == 1 && second["d"]?.count == 1, "only what d needs moves")
        let range = ServerAssignor.range.assign(members: members, partitionCounts: ["orders": 7], current: [:])
        #expect(range["a"] == Set((0..<3).map { TopicPartition("orders", $0) }))
        #expect(range["c"] == Set((5..<7).map { TopicPartition("orders", $0) }))
    }

    @Test("commits and offset fetches are checked against the member epoch, as Kafka checks them")
    mutating func offsetChecks() {
        #expect(group.commitCheck(memberID: "", memberEpoch: -1, apiVersion: 9) == nil, "empty group: admin commit")
        _ = join("a")
        #expect(group.commitCheck(memberID: "a", memberEpoch: 1, apiVersion: 9) == nil)
        #expect(group.commitCheck(memberID: "a", memberEpoch: 0, apiVersion: 9) == .staleMemberEpoch)
        #expect(group.commitCheck(memberID: "a", memberEpoch: 2, apiVersion: 9) == .fencedMemberEpoch)
        #expect(group.commitCheck(memberID: "a", memberEpoch: 1, apiVersion: 8) == .unsupportedVersion)
        #expect(group.commitCheck(memberID: "a", memberEpoch: 1, apiVersion: nil) == nil, "TxnOffsetCommit")
        #expect(group.commitCheck(memberID: "z", memberEpoch: 1, apiVersion: 9) == .unknownMemberID)
        #expect(group.commitCheck(memberID: "", memberEpoch: -1, apiVersion: 9) == .unknownMemberID, "live group")
        #expect(group.fetchCheck(memberID: nil, memberEpoch: -1) == nil, "admin fetch")
        #expect(group.fetchCheck(memberID: "a", memberEpoch: 1) == nil)
        _ = join("b")
        _ = beat("a", epoch: 1, owned: beat("a", epoch: 1).assignment)
        #expect(group.members["a"]?.memberEpoch == 2)
        #expect(group.fetchCheck(memberID: "a", memberEpoch: 1) == .staleMemberEpoch)
        #expect(group.fetchCheck(memberID: "z", memberEpoch: 1) == .unknownMemberID)
    }

    @Test("the assignor most members ask for is used; none asked, the broker's first")
    mutating func assignorChoice() {
        #expect(group.assignorInUse == .uniform)
        for (id, assignor) in [("a", "range"), ("b", "range"), ("c", "uniform")] {
            _ = group.heartbeat(
                .init(memberID: id, memberEpoch: 0, subscribedTopics: ["orders"], serverAssignor: assignor),
                topics: topics,
                now: 0
            )
        }
        #expect(group.assignorInUse == .range)
        let refused = group.heartbeat(
            .init(memberID: "d", memberEpoch: 0, subscribedTopics: ["orders"], serverAssignor: "sticky"),
            topics: topics,
            now: 0
        )
        #expect(refused.errorCode == .unsupportedAssignor)
    }

    @Test("heartbeats repeating an unchanged subscription (an empty regex is none) do not bump the epoch")
    mutating func unchangedSubscription() {
        _ = join("a")
        let epoch = group.groupEpoch
        for _ in 0..<3 {
            _ = group.heartbeat(
                .init(memberID: "a", memberEpoch: 1, subscribedTopics: ["orders"], subscribedRegex: ""),
                topics: topics,
                now: 1
            )
        }
        #expect(group.groupEpoch == epoch)
    }

    @Test("a topic counts as subscribed by name or by a member's regex (OffsetDelete refuses those)")
    mutating func subscribedByNameOrRegex() {
        _ = join("a")
        _ = group.heartbeat(
            .init(
                memberID: "b",
                memberEpoch: 0,
                rebalanceTimeoutMs: 5_000,
                subscribedTopics: [],
                subscribedRegex: "audit-.*"
            ),
            topics: topics,
            now: 0
        )
        #expect(group.isSubscribed(to: "orders"))
        #expect(group.isSubscribed(to: "audit-2026"))
        #expect(!group.isSubscribed(to: "audit"))  // the regex must match the whole name
        #expect(!group.isSubscribed(to: "payments"))
    }

    @Test("a member rejoining at epoch 0 under its own id is not a new member, even in a full group")
    mutating func rejoinUnderOwnID() {
        group = ConsumerGroup(groupID: "workers", config: ConsumerGroup.Config(sessionTimeoutMs: 10_000, maxSize: 2))
        _ = join("a")
        _ = join("b")
        _ = beat("a", epoch: 1, owned: beat("a", epoch: 1).assignment)
        _ = beat("b", epoch: 2)
        let epoch = group.groupEpoch
        let again = group.heartbeat(
            .init(memberID: "b", memberEpoch: 0, subscribedTopics: ["orders"], ownedPartitions: []),
            topics: topics,
            now: 1
        )
        #expect(again.errorCode == .none && again.memberID == "b")
        #expect(group.groupEpoch == epoch && group.members.count == 2)
        #expect(join("c").errorCode == .groupMaxSizeReached)
    }
}
