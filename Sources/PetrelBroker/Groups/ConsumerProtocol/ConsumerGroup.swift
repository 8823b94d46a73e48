import PetrelProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One group of the consumer protocol (KIP-848), as a state machine without sockets or clocks: the
/// broker owns the assignment. Every change of membership, subscriptions or subscribed topics bumps the
/// group epoch; the assignor then computes a target assignment for that epoch, and each member is moved
/// towards its target on its own heartbeats — partitions it must give up are revoked first (it keeps its
/// epoch until it acknowledges), then it takes the target epoch and every target partition no other
/// member still holds. A partition is never held by two members, and members whose partitions do not
/// move never stop consuming.
struct ConsumerGroup: Sendable {
    struct Config: Sendable, Hashable {
        /// group.consumer.session.timeout.ms
        var sessionTimeoutMs: Int64 = 45_000
        /// group.consumer.heartbeat.interval.ms
        var heartbeatIntervalMs: Int32 = 5_000
        /// group.consumer.max.size
        var maxSize: Int = Int(Int32.max)
        /// group.consumer.assignors: the first is the default.
        var assignors: [ServerAssignor] = [.uniform, .range]
    }

    struct Member: Sendable, Hashable {
        var id: String
        var instanceID: String?
        var clientID: String
        var clientHost: String
        var memberEpoch: Int32
        /// The epoch before the last bump: a heartbeat still carrying it is answered, not fenced.
        var previousMemberEpoch: Int32
        var subscribedTopics: [String] = []
        var subscribedRegex: String?
        var assignor: ServerAssignor?
        var rebalanceTimeoutMs: Int32
        /// What the member holds, as far as the broker knows.
        var assigned: Set<TopicPartition> = []
        /// Partitions the member was told to give up and has not yet acknowledged giving up.
        var revoking: Set<TopicPartition> = []
        /// The assignment last sent, so an unchanged one is not sent again.
        var lastSent: Set<TopicPartition>?
        var sessionDeadline: Int64
        var revocationDeadline: Int64?
        /// A static member that left with epoch -2: its partitions wait for it until its session ends.
        var hasLeftTemporarily = false

        /// Whether what Kafka records as the member's metadata (who it is, what it subscribes to) is unchanged.
        func hasSameMetadata(as other: Member) -> Bool {
            instanceID == other.instanceID && clientID == other.clientID && clientHost == other.clientHost
                && subscribedTopics == other.subscribedTopics && subscribedRegex == other.subscribedRegex
                && assignor == other.assignor && rebalanceTimeoutMs == other.rebalanceTimeoutMs
        }

        /// Whether what Kafka records as the member's current assignment is unchanged.
        func hasSameAssignment(as other: Member) -> Bool {
            memberEpoch == other.memberEpoch && previousMemberEpoch == other.previousMemberEpoch
                && assigned == other.assigned && revoking == other.revoking
        }
    }

    struct Heartbeat: Sendable, Hashable {
        var memberID: String
        var memberEpoch: Int32
        var instanceID: String?
        var clientID: String = ""
        var clientHost: String = ""
        var rebalanceTimeoutMs: Int32 = -1
        /// Nil: unchanged since the last heartbeat.
        var subscribedTopics: [String]?
        var subscribedRegex: String?
        var serverAssignor: String?
        /// The partitions the member holds (nil: unchanged).
        var ownedPartitions: [TopicPartition]?
    }

    struct Answer: Sendable, Hashable {
        var errorCode: ErrorCode = .none
        var errorMessage: String?
        var memberID: String?
        var memberEpoch: Int32 = -1
        var heartbeatIntervalMs: Int32 = 0
        /// The member's whole assignment, when it changed (nil: keep what you have).
        var assignment: Set<TopicPartition>?
    }

    static let leaveEpoch: Int32 = -1
    static let staticLeaveEpoch: Int32 = -2

    let groupID: String
    let config: Config
    private(set) var groupEpoch: Int32 = 0
    private(set) var targetAssignmentEpoch: Int32 = 0
    private(set) var targetAssignment: [String: Set<TopicPartition>] = [:]
    private(set) var members: [String: Member] = [:]
    /// The partition counts of the subscribed topics the target assignment was computed from.
    private(set) var subscribedPartitionCounts: [String: Int32] = [:]

    init(groupID: String, config: Config, groupEpoch: Int32 = 0) {
        self.groupID = groupID
        self.config = config
        self.groupEpoch = groupEpoch
        self.targetAssignmentEpoch = groupEpoch
    }

    var isEmpty: Bool { members.isEmpty }

    /// Kafka's state names for DescribeGroups/ListGroups: Empty, Assigning, Reconciling or Stable.
    var stateName: String {
        if members.isEmpty { return "Empty" }
        if targetAssignmentEpoch < groupEpoch { return "Assigning" }
        let settled = members.values.allSatisfy {
            $0.memberEpoch == targetAssignmentEpoch && $0.revoking.isEmpty
                && $0.assigned == (targetAssignment[$0.id] ?? [])
        }
        return settled ? "Stable" : "Reconciling"
    }

    // MARK: - Heartbeats

    /// One ConsumerGroupHeartbeat. `topics` are the broker's topics and their partition counts now.
    mutating func heartbeat(_ input: Heartbeat, topics: [String: Int32], now: Int64) -> Answer {
        switch input.memberEpoch {
        case Self.leaveEpoch, Self.staticLeaveEpoch:
            return leave(input, now: now)
        case 0:
            return join(input, topics: topics, now: now)
        default:
            guard var member = members[input.memberID] else {
                return Answer(errorCode: .unknownMemberID, errorMessage: "member \(input.memberID) is not in the group")
            }
            guard input.memberEpoch == member.memberEpoch || input.memberEpoch == member.previousMemberEpoch else {
                return Answer(
                    errorCode: .fencedMemberEpoch,
                    errorMessage: "member epoch \(input.memberEpoch), expected \(member.memberEpoch)"
                )
            }
            // A heartbeat at the previous epoch (its answer was lost) is answered only if the member
            // holds nothing it no longer owns; otherwise it is fenced, as Kafka does.
            if input.memberEpoch != member.memberEpoch, let owned = input.ownedPartitions,
                !Set(owned).isSubset(of: member.assigned)
            {
                return Answer(
                    errorCode: .fencedMemberEpoch,
                    errorMessage: "member epoch \(input.memberEpoch) holds partitions it was not given"
                )
            }
            member.sessionDeadline = now + config.sessionTimeoutMs
            if let error = update(&member, with: input) { return error }
            members[member.id] = member
            return reconcile(member.id, owned: input.ownedPartitions, topics: topics, now: now)
        }
    }

    private mutating func join(_ input: Heartbeat, topics: [String: Int32], now: Int64) -> Answer {
        var replaced: Member?
        if let instanceID = input.instanceID,
            let existing = members.values.first(where: { $0.instanceID == instanceID })
        {
            guard existing.hasLeftTemporarily || existing.sessionDeadline < now else {
                return Answer(
                    errorCode: .unreleasedInstanceID,
                    errorMessage: "instance \(instanceID) is still held by member \(existing.id)"
                )
            }
            replaced = existing
        } else if !input.memberID.isEmpty, let existing = members[input.memberID] {
            // A member back at epoch 0 under its own id (after FENCED_MEMBER_EPOCH, say): the same
            // member, not a new one; what it still owns is in its heartbeat.
            replaced = existing
        }
        if replaced == nil && members.count >= config.maxSize {
            return Answer(errorCode: .groupMaxSizeReached, errorMessage: "the group has \(members.count) members")
        }
        let id = input.memberID.isEmpty ? UUID().uuidString : input.memberID
        var member = Member(
            id: id,
            instanceID: input.instanceID,
            clientID: input.clientID,
            clientHost: input.clientHost,
            memberEpoch: 0,
            previousMemberEpoch: -1,
            rebalanceTimeoutMs: input.rebalanceTimeoutMs,
            sessionDeadline: now + config.sessionTimeoutMs
        )
        if let replaced {
            // A static member back, or a member rejoining: it takes its predecessor's place and
            // partitions, nothing else moves.
            members[replaced.id] = nil
            member.assigned = replaced.assigned
            member.memberEpoch = replaced.memberEpoch
            member.previousMemberEpoch = replaced.previousMemberEpoch
            member.subscribedTopics = replaced.subscribedTopics
            member.subscribedRegex = replaced.subscribedRegex
            member.assignor = replaced.assignor
            targetAssignment[id] = targetAssignment.removeValue(forKey: replaced.id)
        }
        if let error = update(&member, with: input) { return error }
        members[id] = member
        if replaced == nil { groupEpoch += 1 }
        var answer = reconcile(id, owned: input.ownedPartitions ?? [], topics: topics, now: now)
        answer.memberID = id
        if answer.assignment == nil { answer.assignment = members[id]?.assigned ?? [] }
        return answer
    }

    private mutating func leave(_ input: Heartbeat, now: Int64) -> Answer {
        guard var member = members[input.memberID] else {
            return Answer(errorCode: .unknownMemberID, errorMessage: "member \(input.memberID) is not in the group")
        }
        if input.memberEpoch == Self.staticLeaveEpoch && member.instanceID != nil {
            member.hasLeftTemporarily = true
            members[member.id] = member
        } else {
            remove(member.id)
        }
        return Answer(memberID: member.id, memberEpoch: input.memberEpoch, heartbeatIntervalMs: 0)
    }

    /// Applies a heartbeat's subscription fields; a change bumps the group epoch.
    private mutating func update(_ member: inout Member, with input: Heartbeat) -> Answer? {
        if let name = input.serverAssignor {
            guard let assignor = ServerAssignor(rawValue: name), config.assignors.contains(assignor) else {
                return Answer(errorCode: .unsupportedAssignor, errorMessage: "no server assignor named \(name)")
            }
            if member.assignor != assignor {
                member.assignor = assignor
                groupEpoch += member.memberEpoch == 0 ? 0 : 1
            }
        }
        if input.rebalanceTimeoutMs > 0 { member.rebalanceTimeoutMs = input.rebalanceTimeoutMs }
        if let topics = input.subscribedTopics?.sorted(), topics != member.subscribedTopics {
            member.subscribedTopics = topics
            if member.memberEpoch != 0 { groupEpoch += 1 }
        }
        // An empty regex is no regex: clients send "" to say they subscribe by name only.
        if let regex = input.subscribedRegex, (regex.isEmpty ? nil : regex) != member.subscribedRegex {
            guard (try? Regex(regex)) != nil else {
                return Answer(errorCode: .invalidRequest, errorMessage: "invalid subscription regex \(regex)")
            }
            member.subscribedRegex = regex.isEmpty ? nil : regex
            if member.memberEpoch != 0 { groupEpoch += 1 }
        }
        return nil
    }

    // MARK: - Reconciliation

    /// Moves one member towards its target, computing a new target assignment first if the group
    /// epoch moved (or the subscribed topics' partitions changed).
    private mutating func reconcile(
        _ id: String,
        owned: [TopicPartition]?,
        topics: [String: Int32],
        now: Int64
    )
        -> Answer
    {
        refreshTargetAssignment(topics: topics)
        guard var member = members[id] else { return Answer(errorCode: .unknownMemberID) }
        if let owned {
            // What the member says it holds: partitions it gave up are free for others from now on.
            let holding = Set(owned)
            member.revoking.formIntersection(holding)
            member.assigned.formIntersection(holding.union(member.revoking))
        }
        let target = targetAssignment[id] ?? []
        if !member.revoking.isEmpty {
            if let deadline = member.revocationDeadline, now > deadline {
                remove(id)
                return Answer(errorCode: .fencedMemberEpoch, errorMessage: "partitions not revoked in time")
            }
        } else {
            let revoke = member.assigned.subtracting(target)
            if !revoke.isEmpty {
                member.revoking = revoke
                member.revocationDeadline = now + Int64(max(member.rebalanceTimeoutMs, 1))
            } else {
                member.revocationDeadline = nil
                let heldByOthers = members.values.filter { $0.id != id }.reduce(into: Set<TopicPartition>()) {
                    $0.formUnion($1.assigned)
                }
                member.assigned = target.subtracting(heldByOthers)
                if member.memberEpoch != targetAssignmentEpoch {
                    member.previousMemberEpoch = member.memberEpoch
                    member.memberEpoch = targetAssignmentEpoch
                }
            }
        }
        let sending = member.assigned.subtracting(member.revoking)
        var answer = Answer(
            memberID: id,
            memberEpoch: member.memberEpoch,
            heartbeatIntervalMs: config.heartbeatIntervalMs
        )
        if sending != member.lastSent {
            answer.assignment = sending
            member.lastSent = sending
        }
        members[id] = member
        return answer
    }

    /// Recomputes the target assignment when the group epoch moved past it, or when a subscribed
    /// topic's partitions changed (which bumps the epoch).
    private mutating func refreshTargetAssignment(topics: [String: Int32]) {
        let subscribed = subscribedTopics(among: topics)
        let counts = topics.filter { subscribed.contains($0.key) }
        if counts != subscribedPartitionCounts {
            subscribedPartitionCounts = counts
            if !members.isEmpty { groupEpoch = max(groupEpoch, targetAssignmentEpoch + 1) }
        }
        guard groupEpoch > targetAssignmentEpoch || targetAssignment.isEmpty && !members.isEmpty else { return }
        let assignor = assignorInUse
        let inputs = members.values.map { member in
            ServerAssignor.Member(id: member.id, topics: topicsOf(member, among: topics))
        }
        targetAssignment = assignor.assign(members: inputs, partitionCounts: counts, current: targetAssignment)
        targetAssignmentEpoch = groupEpoch
    }

    /// The assignor the members ask for most (ties by name), or the broker's default when none asks.
    var assignorInUse: ServerAssignor {
        let votes = members.values.compactMap(\.assignor).reduce(into: [ServerAssignor: Int]()) {
            $0[$1, default: 0] += 1
        }
        return votes.max { ($0.value, $1.key.rawValue) < ($1.value, $0.key.rawValue) }?.key ?? config.assignors[0]
    }

    /// Whether any member subscribes to `topic`, by name or by its regex (OffsetDelete refuses those).
    func isSubscribed(to topic: String) -> Bool {
        members.values.contains { member in
            if member.subscribedTopics.contains(topic) { return true }
            guard let pattern = member.subscribedRegex, let regex = try? Regex(pattern) else { return false }
            return (try? regex.wholeMatch(in: topic)) != nil
        }
    }

    private func subscribedTopics(among topics: [String: Int32]) -> Set<String> {
        members.values.reduce(into: Set<String>()) { $0.formUnion(topicsOf($1, among: topics)) }
    }

    private func topicsOf(_ member: Member, among topics: [String: Int32]) -> Set<String> {
        var names = Set(member.subscribedTopics.filter { topics[$0] != nil })
        if let pattern = member.subscribedRegex, let regex = try? Regex(pattern) {
            names.formUnion(topics.keys.filter { (try? regex.wholeMatch(in: $0)) != nil })
        }
        return names
    }

    // MARK: - Offsets

    /// Whether an OffsetCommit may proceed (nil) or its error. Epoch -1 commits come from outside the
    /// group (admin tools, manual assignment) and need an empty group; a member commits at its current
    /// epoch, with OffsetCommit v9 or later (TxnOffsetCommit, `apiVersion` nil, at any version).
    func commitCheck(memberID: String, memberEpoch: Int32, apiVersion: Int16?) -> ErrorCode? {
        if memberEpoch < 0 && members.isEmpty { return nil }
        guard let member = members[memberID] else { return .unknownMemberID }
        if let apiVersion, apiVersion < 9 { return .unsupportedVersion }
        return Self.epochCheck(memberEpoch, expected: member.memberEpoch)
    }

    /// Whether an OffsetFetch (v9) may proceed: one without a member (admin tools) always may; a member
    /// fetches at its current epoch.
    func fetchCheck(memberID: String?, memberEpoch: Int32) -> ErrorCode? {
        guard let memberID, memberEpoch >= 0 || !memberID.isEmpty else { return nil }
        guard let member = members[memberID] else { return .unknownMemberID }
        return Self.epochCheck(memberEpoch, expected: member.memberEpoch)
    }

    /// A member ahead of the group was fenced; one behind has not yet heard of its new epoch and retries.
    private static func epochCheck(_ received: Int32, expected: Int32) -> ErrorCode? {
        if received > expected { return .fencedMemberEpoch }
        if received < expected { return .staleMemberEpoch }
        return nil
    }

    // MARK: - Timers

    /// Removes members whose session ended or who kept partitions past their rebalance timeout.
    /// Returns the ids removed.
    @discardableResult
    mutating func expire(now: Int64) -> [String] {
        let expired = members.values.filter {
            $0.sessionDeadline < now || ($0.revocationDeadline.map { now > $0 } ?? false)
        }.map(\.id)
        for id in expired { remove(id) }
        return expired.sorted()
    }

    /// The earliest time a member could expire (for the coordinator's timer).
    var nextDeadline: Int64? {
        members.values.flatMap { [$0.sessionDeadline] + ($0.revocationDeadline.map { [$0] } ?? []) }.min()
    }

    private mutating func remove(_ id: String) {
        guard members.removeValue(forKey: id) != nil else { return }
        targetAssignment[id] = nil
        groupEpoch += 1
    }
}
