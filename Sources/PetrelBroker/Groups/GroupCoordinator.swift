import Logging
import NIOCore
import PetrelProtocol
import Synchronization

/// Runs every classic consumer group on this broker: the state machines (`ClassicGroup`), the requests
/// parked in them, their timers, and the committed offsets. Thread-safe.
final class GroupCoordinator: Sendable {
    let config: GroupCoordinatorConfig
    let offsets: OffsetStore
    private let clock: @Sendable () -> Int64
    private let logger: Logger
    private let metrics: GroupMetrics
    private let state = Mutex(State())

    private struct State {
        var groups: [String: ClassicGroup] = [:]
        /// Groups of the consumer protocol (KIP-848). A group id is in one map or the other.
        var consumerGroups: [String: ConsumerGroup] = [:]
        var parkedJoins: [WaiterID: CheckedContinuation<JoinGroupResponse, Never>] = [:]
        var parkedSyncs: [WaiterID: CheckedContinuation<SyncGroupResponse, Never>] = [:]
        var nextWaiter: WaiterID = 1

        mutating func newWaiter() -> WaiterID {
            defer { nextWaiter += 1 }
            return nextWaiter
        }
    }

    init(
        config: GroupCoordinatorConfig,
        offsets: OffsetStore,
        logger: Logger,
        metrics: GroupMetrics = .disabled,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.config = config
        self.offsets = offsets
        self.logger = logger
        self.metrics = metrics
        self.clock = clock
    }

    // MARK: - Join and sync (parked until the group moves on)

    func join(groupID: String, _ input: ClassicGroup.JoinInput) async -> JoinGroupResponse {
        guard !groupID.isEmpty else { return ClassicGroup.joinError(.invalidGroupID, memberID: input.memberID) }
        // A consumer-protocol group with members is not migrated to the classic protocol; an empty one is.
        let consumerGroupIsLive = state.withLock { state in
            if state.consumerGroups[groupID]?.isEmpty == true { state.consumerGroups[groupID] = nil }
            return state.consumerGroups[groupID] != nil
        }
        if consumerGroupIsLive { return ClassicGroup.joinError(.inconsistentGroupProtocol, memberID: input.memberID) }
        let waiter = state.withLock { $0.newWaiter() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<JoinGroupResponse, Never>) in
                let (immediate, effects) = state.withLock { state -> (JoinGroupResponse?, GroupEffects) in
                    var group = state.groups[groupID] ?? ClassicGroup(groupID: groupID, config: config)
                    var effects = GroupEffects()
                    let outcome = group.join(input, waiter: waiter, now: clock(), effects: &effects)
                    state.groups[groupID] = group
                    if case .respond(let response) = outcome { return (response, effects) }
                    state.parkedJoins[waiter] = continuation
                    return (nil, effects)
                }
                if let immediate { continuation.resume(returning: immediate) }
                deliver(effects, group: groupID)
            }
        } onCancel: {
            // The connection went away. The member is no longer waiting, so its session timeout runs
            // again: a client that died mid-rebalance is evicted instead of holding the group until
            // the rebalance timeout.
            let parked = state.withLock { state in
                state.groups[groupID]?.abandonWaiter(waiter)
                return state.parkedJoins.removeValue(forKey: waiter)
            }
            parked?.resume(returning: ClassicGroup.joinError(.rebalanceInProgress, memberID: input.memberID))
        }
    }

    func sync(groupID: String, _ input: ClassicGroup.SyncInput) async -> SyncGroupResponse {
        guard !groupID.isEmpty else { return SyncGroupResponse(errorCode: ErrorCode.invalidGroupID) }
        let waiter = state.withLock { $0.newWaiter() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<SyncGroupResponse, Never>) in
                let (immediate, effects) = state.withLock { state -> (SyncGroupResponse?, GroupEffects) in
                    guard var group = state.groups[groupID] else {
                        return (SyncGroupResponse(errorCode: ErrorCode.unknownMemberID), GroupEffects())
                    }
                    var effects = GroupEffects()
                    let outcome = group.sync(input, waiter: waiter, now: clock(), effects: &effects)
                    state.groups[groupID] = group
                    if case .respond(let response) = outcome { return (response, effects) }
                    state.parkedSyncs[waiter] = continuation
                    return (nil, effects)
                }
                if let immediate { continuation.resume(returning: immediate) }
                deliver(effects, group: groupID)
            }
        } onCancel: {
            let parked = state.withLock { state in
                state.groups[groupID]?.abandonWaiter(waiter)
                return state.parkedSyncs.removeValue(forKey: waiter)
            }
            parked?.resume(returning: SyncGroupResponse(errorCode: ErrorCode.rebalanceInProgress))
        }
    }

    /// Answers every parked join and sync with COORDINATOR_NOT_AVAILABLE (the broker is shutting down):
    /// clients look for the coordinator again instead of waiting out a rebalance timeout.
    func releaseParkedRequests() {
        let (joins, syncs) = state.withLock { state in
            defer {
                state.parkedJoins.removeAll()
                state.parkedSyncs.removeAll()
            }
            return (Array(state.parkedJoins.values), Array(state.parkedSyncs.values))
        }
        for join in joins { join.resume(returning: ClassicGroup.joinError(.coordinatorNotAvailable, memberID: "")) }
        for sync in syncs { sync.resume(returning: SyncGroupResponse(errorCode: ErrorCode.coordinatorNotAvailable)) }
    }

    /// Answers the parked requests a state change released.
    private func deliver(_ effects: GroupEffects, group: String) {
        if effects.joins.isEmpty && effects.syncs.isEmpty && !effects.generationCompleted
            && !effects.assignmentCompleted
        {
            return
        }
        let (joins, syncs) = state.withLock { state in
            (
                effects.joins.compactMap { id, response in
                    state.parkedJoins.removeValue(forKey: id).map { ($0, response) }
                },
                effects.syncs.compactMap { id, response in
                    state.parkedSyncs.removeValue(forKey: id).map { ($0, response) }
                }
            )
        }
        for (continuation, response) in joins { continuation.resume(returning: response) }
        for (continuation, response) in syncs { continuation.resume(returning: response) }
        if effects.generationCompleted {
            let (summary, members) = state.withLock { state in
                (
                    state.groups[group].map {
                        "\($0.state.rawValue) generation \($0.generation) with \($0.members.count) members"
                    }, state.groups[group]?.members.count ?? 0
                )
            }
            metrics.rebalanced(group: group, protocol: "classic")
            metrics.assignmentsChanged(group: group, protocol: "classic", by: members)
            logger.info("group rebalanced", metadata: ["group": "\(group)", "now": "\(summary ?? "gone")"])
        }
        // As Kafka: the group's record in __consumer_offsets once it is Stable with an assignment, and
        // once it has emptied. Taken under the lock, so records of successive generations stay in order.
        if effects.assignmentCompleted || effects.generationCompleted {
            state.withLock { state in
                guard let classic = state.groups[group],
                    effects.assignmentCompleted ? classic.state == .stable : classic.isEmpty
                else { return }
                offsets.storeGroup(group, classic.metadataRecord(now: clock()))
            }
        }
    }

    // MARK: - The consumer protocol (KIP-848)

    /// One ConsumerGroupHeartbeat. A non-empty classic group of that id refuses it
    /// (INCONSISTENT_GROUP_PROTOCOL: live groups are not migrated); an empty one is taken over.
    func consumerHeartbeat(
        groupID: String,
        _ input: ConsumerGroup.Heartbeat,
        topics: [String: Int32]
    )
        -> ConsumerGroup.Answer
    {
        guard !groupID.isEmpty else { return ConsumerGroup.Answer(errorCode: .invalidGroupID) }
        let (answer, summary) = state.withLock { state -> (ConsumerGroup.Answer, String?) in
            if let classic = state.groups[groupID] {
                guard classic.isEmpty else {
                    return (
                        ConsumerGroup.Answer(
                            errorCode: .inconsistentGroupProtocol,
                            errorMessage: "group \(groupID) is a classic group with members"
                        ), nil
                    )
                }
                state.groups[groupID] = nil
            }
            let before = state.consumerGroups[groupID]
            var group = before ?? ConsumerGroup(groupID: groupID, config: config.consumerGroup)
            let epochBefore = group.groupEpoch
            let assignmentEpochBefore = group.targetAssignmentEpoch
            let answer = group.heartbeat(input, topics: topics, now: clock())
            state.consumerGroups[groupID] = group
            // Under the lock, so that successive states' records stay in order.
            offsets.storeConsumerGroup(groupID, before: before, after: group)
            if group.targetAssignmentEpoch != assignmentEpochBefore {
                metrics.rebalanced(group: groupID, protocol: "consumer")
            }
            let summary =
                group.groupEpoch != epochBefore
                ? "epoch \(group.groupEpoch), \(group.members.count) members" : nil
            return (answer, summary)
        }
        if answer.assignment != nil { metrics.assignmentsChanged(group: groupID, protocol: "consumer") }
        if let summary {
            logger.info("consumer group changed", metadata: ["group": "\(groupID)", "now": "\(summary)"])
        }
        return answer
    }

    func describeConsumerGroup(_ groupID: String) -> ConsumerGroup? {
        state.withLock { $0.consumerGroups[groupID] }
    }

    /// Whether `groupID` is a consumer-protocol group with members (a classic JoinGroup is refused).
    func isLiveConsumerGroup(_ groupID: String) -> Bool {
        state.withLock { $0.consumerGroups[groupID]?.isEmpty == false }
    }

    // MARK: - Heartbeat and leave

    func heartbeat(groupID: String, memberID: String, instanceID: String?, generation: Int32) -> ErrorCode {
        guard !groupID.isEmpty else { return .invalidGroupID }
        return state.withLock { state in
            guard var group = state.groups[groupID] else { return ErrorCode.unknownMemberID }
            let result = group.heartbeat(
                memberID: memberID,
                instanceID: instanceID,
                generation: generation,
                now: clock()
            )
            state.groups[groupID] = group
            return result
        }
    }

    func leave(groupID: String, members: [(memberID: String, instanceID: String?)]) -> [ErrorCode] {
        guard !groupID.isEmpty else { return members.map { _ in .invalidGroupID } }
        let (results, effects) = state.withLock { state -> ([ErrorCode], GroupEffects) in
            guard var group = state.groups[groupID] else {
                return (members.map { _ in .unknownMemberID }, GroupEffects())
            }
            var effects = GroupEffects()
            let results = group.leave(members, now: clock(), effects: &effects)
            state.groups[groupID] = group
            return (results, effects)
        }
        deliver(effects, group: groupID)
        return results
    }

    // MARK: - Timers

    /// Applies the timeouts due now to every group.
    func tick() {
        let now = clock()
        let released = state.withLock { state -> [(String, GroupEffects)] in
            var released: [(String, GroupEffects)] = []
            for id in Array(state.groups.keys) {
                var effects = GroupEffects()
                state.groups[id]!.tick(now: now, effects: &effects)
                released.append((id, effects))
            }
            for id in Array(state.consumerGroups.keys) {
                let removed = state.consumerGroups[id]!.expire(now: now)
                if !removed.isEmpty {
                    offsets.storeConsumerGroupDepartures(id, removed, epoch: state.consumerGroups[id]!.groupEpoch)
                    logger.info(
                        "consumer group members timed out",
                        metadata: ["group": "\(id)", "members": "\(removed.joined(separator: ","))"]
                    )
                }
            }
            return released
        }
        for (group, effects) in released { deliver(effects, group: group) }
        forgetIdleGroups()
    }

    /// Runs the timers until cancelled.
    func runTimers(intervalMs: Int64 = 100) async {
        while !Task.isCancelled {
            tick()
            try? await Task.sleep(for: .milliseconds(intervalMs))
        }
    }

    /// Empty groups without committed offsets have nothing left to remember.
    private func forgetIdleGroups() {
        let withOffsets = Set(offsets.groups)
        state.withLock { state in
            state.groups = state.groups.filter { id, group in
                !(group.state == .empty && group.pendingMembers.isEmpty && !withOffsets.contains(id))
            }
            state.consumerGroups = state.consumerGroups.filter { id, group in !group.isEmpty || withOffsets.contains(id)
            }
        }
    }

    // MARK: - Offsets

    /// Checks a commit against the group's state; nil if it may proceed. `apiVersion` is OffsetCommit's
    /// (nil for TxnOffsetCommit).
    func commitCheck(
        groupID: String,
        memberID: String,
        instanceID: String?,
        generation: Int32,
        apiVersion: Int16? = nil
    ) -> ErrorCode? {
        guard !groupID.isEmpty else { return .invalidGroupID }
        return state.withLock { state in
            if let consumer = state.consumerGroups[groupID] {
                return consumer.commitCheck(memberID: memberID, memberEpoch: generation, apiVersion: apiVersion)
            }
            guard var group = state.groups[groupID] else {
                // No live group: only commits from outside a group (generation -1) make sense.
                return generation < 0 ? nil : (memberID.isEmpty ? .illegalGeneration : .unknownMemberID)
            }
            let error = group.commitCheck(memberID: memberID, instanceID: instanceID, generation: generation)
            if error == nil { group.touch(memberID: memberID, now: clock()) }
            state.groups[groupID] = group
            return error
        }
    }

    /// Checks an OffsetFetch's member against a consumer-protocol group (v9); classic groups do not
    /// check fetches. Nil if it may proceed.
    func fetchCheck(groupID: String, memberID: String?, memberEpoch: Int32) -> ErrorCode? {
        state.withLock { state in
            state.consumerGroups[groupID]?.fetchCheck(memberID: memberID, memberEpoch: memberEpoch)
        }
    }

    // MARK: - Admin

    struct GroupSummary: Sendable {
        var groupID: String
        var protocolType: String
        /// Kafka's state name.
        var state: String
        /// "classic" or "consumer".
        var type: String = "classic"
    }

    /// Every group with members or committed offsets.
    func listGroups() -> [GroupSummary] {
        let live = state.withLock { state in
            state.groups.values.map {
                GroupSummary(groupID: $0.groupID, protocolType: $0.protocolType ?? "", state: $0.state.rawValue)
            }
                + state.consumerGroups.values.map {
                    GroupSummary(groupID: $0.groupID, protocolType: "consumer", state: $0.stateName, type: "consumer")
                }
        }
        let known = Set(live.map(\.groupID))
        let offsetsOnly = offsets.groups.filter { !known.contains($0) }.map {
            GroupSummary(groupID: $0, protocolType: "", state: GroupState.empty.rawValue)
        }
        return (live + offsetsOnly).sorted { $0.groupID < $1.groupID }
    }

    /// Live members per group, for every group the coordinator holds in memory.
    func memberCounts() -> [String: Int] {
        state.withLock { state in
            state.groups.mapValues(\.members.count).merging(state.consumerGroups.mapValues(\.members.count)) { $1 }
        }
    }

    /// Each group's epoch and protocol: a classic group's generation, a consumer-protocol group's group
    /// epoch.
    func epochs() -> [(group: String, protocol: String, epoch: Int32)] {
        state.withLock { state in
            state.groups.values.map { ($0.groupID, "classic", $0.generation) }
                + state.consumerGroups.values.map { ($0.groupID, "consumer", $0.groupEpoch) }
        }
    }

    func describe(groupID: String) -> ClassicGroup? {
        state.withLock { $0.groups[groupID] }
    }

    /// OffsetDelete: drops a group's committed offsets for `partitions`, except those of topics a live
    /// member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC; when a member's subscription cannot be read, as
    /// for a protocol other than Kafka's consumer protocol, every topic counts as subscribed, as in
    /// Kafka). Returns the group's error, or each partition's.
    func deleteOffsets(
        groupID: String,
        partitions: [TopicPartition]
    ) async -> (group: ErrorCode, partitions: [TopicPartition: ErrorCode]) {
        let subscribed: Set<String>?? = state.withLock { state in
            if let consumer = state.consumerGroups[groupID], !consumer.isEmpty {
                return .some(Set(partitions.map(\.topic).filter(consumer.isSubscribed(to:))))
            }
            guard let group = state.groups[groupID], !group.isEmpty, group.state != .dead else {
                return offsets.hasOffsets(group: groupID) ? .some(Set()) : .none
            }
            var topics = Set<String>()
            for member in group.members.values {
                guard let memberTopics = member.subscribedTopics(protocolName: group.protocolName) else {
                    return .some(nil)
                }
                topics.formUnion(memberTopics)
            }
            return .some(topics)
        }
        guard let subscribed else { return (.groupIDNotFound, [:]) }
        var results: [TopicPartition: ErrorCode] = [:]
        var deletable: [TopicPartition] = []
        for partition in partitions {
            if subscribed?.contains(partition.topic) ?? true {
                results[partition] = .groupSubscribedToTopic
            } else {
                results[partition] = ErrorCode.none
                deletable.append(partition)
            }
        }
        do {
            try await offsets.deleteOffsets(group: groupID, deletable)
        } catch {
            logger.error("deleting offsets failed", metadata: ["group": "\(groupID)", "error": "\(error)"])
            for partition in deletable { results[partition] = .kafkaStorageError }
        }
        return (ErrorCode.none, results)
    }

    /// DeleteGroups: only a group without members can go; its offsets go with it.
    func delete(groupID: String) async -> ErrorCode {
        let (verdict, kind) = state.withLock { state -> (ErrorCode, OffsetStore.GroupKind?) in
            if let consumer = state.consumerGroups[groupID] {
                guard consumer.isEmpty else { return (.nonEmptyGroup, nil) }
                state.consumerGroups[groupID] = nil
                return (.none, .consumer)
            }
            if let group = state.groups[groupID] {
                guard group.isEmpty && group.state != .dead else { return (.nonEmptyGroup, nil) }
                state.groups[groupID]?.markDead()
                return (.none, .classic)
            }
            return (offsets.hasOffsets(group: groupID) ? .none : .groupIDNotFound, nil)
        }
        guard verdict == .none else { return verdict }
        do {
            try await offsets.deleteGroup(groupID, kind: kind)
        } catch {
            logger.error("deleting a group's offsets failed", metadata: ["group": "\(groupID)", "error": "\(error)"])
            return .kafkaStorageError
        }
        state.withLock { _ = $0.groups.removeValue(forKey: groupID) }
        return .none
    }
}
