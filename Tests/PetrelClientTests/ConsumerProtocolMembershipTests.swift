import PetrelProtocol
import Testing

@testable import PetrelClient

/// `ConsumerProtocolMembership` driven event by event with a fake clock: joining, heartbeat timing,
/// incremental reconciliation, errors and leaving (KIP-848, as the member sees it).
@Suite("Consumer protocol membership")
struct ConsumerProtocolMembershipTests {
    private let ordersID = KafkaUUID(high: 1, low: 1)
    private let paymentsID = KafkaUUID(high: 2, low: 2)
    private func orders(_ partition: Int32) -> TopicPartition { TopicPartition("orders", partition) }

    private func membership(instanceID: String? = nil, assignor: String? = "uniform") -> ConsumerProtocolMembership {
        ConsumerProtocolMembership(
            settings: .init(
                groupID: "workers",
                topics: ["payments", "orders"],
                instanceID: instanceID,
                serverAssignor: assignor,
                rebalanceTimeoutMs: 60_000,
                retryBackoffMs: 100
            ),
            clientMemberID: "client-named"
        )
    }

    private func answer(
        memberID: String? = nil,
        epoch: Int32,
        interval: Int32 = 1_000,
        assignment: [KafkaUUID: [Int32]]? = nil,
        error: ErrorCode = .none
    ) -> ConsumerGroupHeartbeatResponse {
        ConsumerGroupHeartbeatResponse(
            errorCode: error,
            memberId: memberID,
            memberEpoch: epoch,
            heartbeatIntervalMs: interval,
            assignment: assignment.map { topics in
                .init(
                    topicPartitions: topics.keys.sorted { $0.high < $1.high }.map {
                        .init(topicId: $0, partitions: topics[$0]!)
                    }
                )
            }
        )
    }

    /// Owned partitions a heartbeat reports, by topic id.
    private func owned(_ request: ConsumerGroupHeartbeatRequest) -> [KafkaUUID: Set<Int32>]? {
        request.topicPartitions.map { lists in
            Dictionary(uniqueKeysWithValues: lists.map { ($0.topicId, Set($0.partitions)) })
        }
    }

    /// A member that joined at v1 and owns orders 0–3 at epoch 5; the clock is at 1,000.
    private func stableMember() -> ConsumerProtocolMembership {
        var member = membership()
        #expect(member.nextAction(now: 0) == .heartbeat)
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: 5, assignment: [ordersID: [0, 1, 2, 3]]), now: 0) == .accepted)
        member.learn(["orders": ordersID, "payments": paymentsID])
        #expect(member.nextAction(now: 0) == .reconcile(revoke: [], assign: Set((0..<4).map(orders))))
        #expect(member.assigned(Set((0..<4).map(orders))) == Set((0..<4).map(orders)))
        #expect(member.nextAction(now: 0) == .heartbeat)
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: 5), now: 0) == .accepted)
        #expect(member.nextAction(now: 1_000) == .heartbeat)
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: 5), now: 1_000) == .accepted)
        return member
    }

    @Test("a v0 join sends epoch 0, no member id, the subscription, the assignor and no owned partitions")
    func joinV0() {
        var member = membership(instanceID: "worker-1")
        #expect(member.nextAction(now: 0) == .heartbeat)
        let join = member.heartbeat(version: 0)
        #expect(join.groupId == "workers")
        #expect(join.memberId == "")
        #expect(join.memberEpoch == 0)
        #expect(join.instanceId == "worker-1")
        #expect(join.rebalanceTimeoutMs == 60_000)
        #expect(join.subscribedTopicNames == ["orders", "payments"])
        #expect(join.serverAssignor == "uniform")
        #expect(join.topicPartitions == [])
        // The broker names the member; later heartbeats carry that name.
        #expect(member.received(answer(memberID: "broker-named", epoch: 1), now: 0) == .accepted)
        #expect(member.memberID == "broker-named")
        #expect(member.memberEpoch == 1)
        #expect(member.hasJoined)
    }

    @Test("from v1 the member names itself, and keeps the name")
    func joinV1() {
        var member = membership()
        let join = member.heartbeat(version: 1)
        #expect(join.memberId == "client-named")
        #expect(member.received(answer(memberID: "client-named", epoch: 1), now: 0) == .accepted)
        #expect(member.nextAction(now: 1_000) == .heartbeat)
        #expect(member.heartbeat(version: 1).memberId == "client-named")
    }

    @Test("heartbeats go at the broker's interval; unchanged fields are left out")
    func interval() {
        var member = membership()
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: 3, interval: 2_500), now: 10_000) == .accepted)
        #expect(member.heartbeatIntervalMs == 2_500)
        #expect(member.nextAction(now: 10_001) == .wait(until: 12_500))
        #expect(member.nextAction(now: 12_499) == .wait(until: 12_500))
        #expect(member.nextAction(now: 12_500) == .heartbeat)
        let request = member.heartbeat(version: 1)
        #expect(request.memberEpoch == 3)
        #expect(request.subscribedTopicNames == nil)
        #expect(request.serverAssignor == nil)
        #expect(request.rebalanceTimeoutMs == -1)
        #expect(request.topicPartitions == nil, "owned partitions unchanged since the join reported none")
        // In flight: no second heartbeat until it is answered.
        #expect(member.nextAction(now: 20_000) == .wait(until: 12_500))
    }

    @Test("an assignment by topic id is looked up, taken, and acknowledged at once")
    func firstAssignment() {
        var member = membership()
        _ = member.heartbeat(version: 1)
        let assignment = [ordersID: [0, 1] as [Int32], paymentsID: [0]]
        #expect(member.received(answer(epoch: 1, assignment: assignment), now: 0) == .accepted)
        #expect(member.nextAction(now: 0) == .resolveTopics([ordersID, paymentsID]))
        member.learn(["orders": ordersID, "payments": paymentsID])
        let all: Set = [orders(0), orders(1), TopicPartition("payments", 0)]
        #expect(member.nextAction(now: 0) == .reconcile(revoke: [], assign: all))
        #expect(member.assigned(all) == all)
        #expect(member.owned == all)
        // The acknowledgement does not wait for the interval.
        #expect(member.nextAction(now: 1) == .heartbeat)
        let request = member.heartbeat(version: 1)
        #expect(owned(request) == [ordersID: [0, 1], paymentsID: [0]])
        #expect(member.received(answer(epoch: 1), now: 1) == .accepted)
        #expect(member.nextAction(now: 2) == .wait(until: 1_001))
    }

    @Test("a shrunk assignment revokes only what left; the kept partitions are never revoked")
    func incrementalRevoke() {
        var member = stableMember()
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: 5, assignment: [ordersID: [0, 1]]), now: 1_100) == .accepted)
        // Either this heartbeat or the previous: the member epoch stays until the revocation is acknowledged.
        #expect(member.memberEpoch == 5)
        #expect(member.nextAction(now: 1_100) == .reconcile(revoke: [orders(2), orders(3)], assign: []))
        member.revoked([orders(2), orders(3)])
        #expect(member.nextAction(now: 1_100) == .heartbeat)
        let acknowledgement = member.heartbeat(version: 1)
        #expect(acknowledgement.memberEpoch == 5)
        #expect(owned(acknowledgement) == [ordersID: [0, 1]])
        #expect(member.received(answer(epoch: 6), now: 1_100) == .accepted)
        #expect(member.memberEpoch == 6)
        #expect(member.owned == [orders(0), orders(1)])
    }

    @Test("a grown assignment adds only the new partitions")
    func incrementalAdd() {
        var member = stableMember()
        let grown: [KafkaUUID: [Int32]] = [ordersID: [0, 1, 2, 3], paymentsID: [1]]
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: 7, assignment: grown), now: 1_100) == .accepted)
        #expect(member.nextAction(now: 1_100) == .reconcile(revoke: [], assign: [TopicPartition("payments", 1)]))
        // A moved assignment wins over a late take: only what is still assigned is taken.
        #expect(
            member.assigned([TopicPartition("payments", 1), TopicPartition("payments", 9)]) == [
                TopicPartition("payments", 1)
            ]
        )
        #expect(member.owned.count == 5)
    }

    @Test("partitions of a topic whose id is unknown are taken once it is known; the rest at once")
    func unknownTopicID() {
        var member = stableMember()
        let unknownID = KafkaUUID(high: 9, low: 9)
        _ = member.heartbeat(version: 1)
        #expect(
            member.received(answer(epoch: 6, assignment: [ordersID: [0, 1, 2, 3], unknownID: [0]]), now: 1_100)
                == .accepted
        )
        #expect(member.nextAction(now: 1_100) == .resolveTopics([unknownID]))
        member.learn([:])
        // Nothing to reconcile yet, and no look-up again before an interval has passed.
        #expect(member.nextAction(now: 1_200) == .wait(until: 2_100))
        #expect(member.nextAction(now: 2_100) == .resolveTopics([unknownID]))
        member.learn(["refunds": unknownID])
        #expect(member.nextAction(now: 2_100) == .reconcile(revoke: [], assign: [TopicPartition("refunds", 0)]))
    }

    @Test("a failed take is tried again after the backoff, while heartbeats go on")
    func failedTake() {
        var member = stableMember()
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: 6, assignment: [ordersID: [0, 1, 2, 3, 4]]), now: 1_100) == .accepted)
        #expect(member.nextAction(now: 1_100) == .reconcile(revoke: [], assign: [orders(4)]))
        member.assignmentFailed(now: 1_100)
        #expect(member.nextAction(now: 1_150) == .wait(until: 1_200))
        #expect(member.nextAction(now: 1_200) == .reconcile(revoke: [], assign: [orders(4)]))
    }

    @Test(
        "FENCED_MEMBER_EPOCH and UNKNOWN_MEMBER_ID: partitions lost without a commit, rejoin at epoch 0 as the same member",
        arguments: [ErrorCode.fencedMemberEpoch, .unknownMemberID]
    )
    func fenced(code: ErrorCode) {
        var member = stableMember()
        #expect(member.nextAction(now: 2_000) == .heartbeat)
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: -1, error: code), now: 2_000) == .fenced(code))
        #expect(member.memberEpoch == 0)
        #expect(member.nextAction(now: 2_000) == .lose(Set((0..<4).map(orders))))
        member.lost()
        #expect(member.owned.isEmpty)
        #expect(member.nextAction(now: 2_000) == .heartbeat)
        let join = member.heartbeat(version: 1)
        #expect(join.memberEpoch == 0)
        #expect(join.memberId == "client-named")
        #expect(join.subscribedTopicNames == ["orders", "payments"])
        #expect(join.topicPartitions == [])
        // The new assignment is taken from scratch, the old one being gone.
        #expect(member.received(answer(epoch: 9, assignment: [ordersID: [3]]), now: 2_000) == .accepted)
        #expect(member.nextAction(now: 2_000) == .reconcile(revoke: [], assign: [orders(3)]))
    }

    @Test(
        "errors a member cannot get past fail the consumer",
        arguments: [
            ErrorCode.unreleasedInstanceID, .unsupportedAssignor, .groupMaxSizeReached, .inconsistentGroupProtocol,
            .invalidRequest, .invalidGroupID,
        ]
    )
    func fatal(code: ErrorCode) {
        var member = membership(instanceID: "worker-1", assignor: "fancy")
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: -1, error: code), now: 0) == .fatal(code))
        guard case .fail(let error) = member.nextAction(now: 0) else {
            Issue.record("expected the membership to fail")
            return
        }
        #expect(error.errorCode == code)
        #expect(member.nextAction(now: 60_000) == .fail(error), "and it stays failed")
    }

    @Test("a message names what is wrong")
    func fatalMessages() {
        var member = membership(instanceID: "worker-1", assignor: "fancy")
        _ = member.heartbeat(version: 1)
        _ = member.received(answer(epoch: -1, error: .unsupportedAssignor), now: 0)
        guard case .fail(let error) = member.nextAction(now: 0) else {
            Issue.record("expected the membership to fail")
            return
        }
        #expect("\(error)".contains("no server assignor named fancy"))
    }

    @Test(
        "coordinator errors: find it again, retry with a doubling backoff and every field",
        arguments: [ErrorCode.notCoordinator, .coordinatorNotAvailable, .coordinatorLoadInProgress]
    )
    func coordinatorMoved(code: ErrorCode) {
        var member = stableMember()
        #expect(member.nextAction(now: 2_000) == .heartbeat)
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: -1, error: code), now: 2_000) == .coordinatorLost(code))
        #expect(member.nextAction(now: 2_000) == .wait(until: 2_100))
        #expect(member.nextAction(now: 2_100) == .heartbeat)
        _ = member.heartbeat(version: 1)
        #expect(member.received(answer(epoch: -1, error: code), now: 2_100) == .coordinatorLost(code))
        #expect(member.nextAction(now: 2_100) == .wait(until: 2_300))
        let retry = member.heartbeat(version: 1)
        #expect(retry.memberEpoch == 5, "the membership itself is kept")
        #expect(retry.subscribedTopicNames == ["orders", "payments"])
        #expect(owned(retry) == [ordersID: [0, 1, 2, 3]])
    }

    @Test("a heartbeat without an answer is retried after the backoff with every field")
    func noAnswer() {
        var member = stableMember()
        #expect(member.nextAction(now: 2_000) == .heartbeat)
        _ = member.heartbeat(version: 1)
        let completed = member.heartbeatsCompleted
        member.heartbeatFailed(now: 2_000)
        #expect(member.heartbeatsCompleted == completed + 1, "a commit waiting for the next heartbeat goes on")
        #expect(member.nextAction(now: 2_050) == .wait(until: 2_100))
        #expect(member.nextAction(now: 2_100) == .heartbeat)
        let retry = member.heartbeat(version: 1)
        #expect(retry.rebalanceTimeoutMs == 60_000)
        #expect(owned(retry) == [ordersID: [0, 1, 2, 3]])
        #expect(member.received(answer(epoch: 5), now: 2_100) == .accepted)
        #expect(member.heartbeat(version: 1).topicPartitions == nil, "acknowledged: not sent again")
    }

    @Test("leaving: epoch -1, or -2 for a static member; nothing before a join was answered")
    func leave() {
        var dynamic = stableMember()
        #expect(dynamic.leaveRequest()?.memberEpoch == -1)
        #expect(dynamic.leaveRequest()?.memberId == "client-named")
        dynamic.left()
        #expect(dynamic.leaveRequest() == nil)

        var staticMember = membership(instanceID: "worker-1")
        #expect(staticMember.leaveRequest() == nil)
        _ = staticMember.heartbeat(version: 0)
        _ = staticMember.received(answer(memberID: "broker-named", epoch: 2), now: 0)
        let leave = staticMember.leaveRequest()
        #expect(leave?.memberEpoch == -2)
        #expect(leave?.instanceId == "worker-1")
        #expect(leave?.memberId == "broker-named")
    }
}
