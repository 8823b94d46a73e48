import NIOCore
import PetrelProtocol

/// Group membership: join, sync (the leader assigns), heartbeat, rebalance, leave. Eager protocol:
/// every rebalance revokes the whole assignment first (committing what was read, with auto-commit).
extension KafkaConsumer {
    enum RejoinReason: Error {
        case rebalance
        case unknownMember
        case coordinatorLost
    }

    func runMembership(group: String, topics: [String]) async throws {
        var backoff = configuration.retryBackoff.inMilliseconds
        var waitingReported = false
        while !Task.isCancelled && !isStopping {
            do {
                try await joinAndSync(group: group, topics: topics)
                backoff = configuration.retryBackoff.inMilliseconds
                waitingReported = false
                try await heartbeatUntilRebalance(group: group)
            } catch is CancellationError {
                return
            } catch let reason as RejoinReason {
                switch reason {
                case .rebalance: break
                case .unknownMember: machine.withLock { $0.memberID = "" }
                case .coordinatorLost: machine.withLock { $0.coordinator = nil }
                }
            } catch {
                if let error = error as? KafkaClientError, let code = error.errorCode, !code.isRetriable,
                    [.invalidGroupID, .groupMaxSizeReached, .inconsistentGroupProtocol, .invalidSessionTimeout]
                        .contains(code)
                {
                    logger.error("cannot join the group", metadata: ["group": "\(group)", "error": "\(error)"])
                    throw error
                }
                logger.debug("group membership interrupted", metadata: ["group": "\(group)", "error": "\(error)"])
                if !waitingReported, let failure = error as? KafkaClientError, failure.isRetriable {
                    waitingReported = true
                    configuration.onWaitingForCluster?(failure)
                }
                machine.withLock { $0.coordinator = nil }
                try? await Task.sleep(for: .milliseconds(backoff))
                backoff = min(backoff * 2, 5_000)
            }
        }
    }

    /// Gives up the current assignment before a rejoin (the eager protocol).
    private func revokeAll() async {
        let revoked = assignment
        guard !revoked.isEmpty else { return }
        if configuration.autoCommit { try? await commit() }
        install([:])
        machine.withLock { $0.forget(Set(revoked)) }
        emit(.revoked(revoked))
    }

    private func joinAndSync(group: String, topics: [String]) async throws {
        await revokeAll()
        let (_, connection) = try await coordinator(for: group)
        let metadata = ConsumerProtocolSubscription(topics: topics.sorted()).embedded

        var joined: JoinGroupResponse
        while true {
            let memberID = machine.withLock { $0.memberID }
            let request = JoinGroupRequest(
                groupId: group,
                sessionTimeoutMs: Int32(clamping: configuration.sessionTimeout.inMilliseconds),
                rebalanceTimeoutMs: Int32(clamping: configuration.rebalanceTimeout.inMilliseconds),
                memberId: memberID,
                groupInstanceId: configuration.groupInstanceID,
                protocolType: "consumer",
                protocols: configuration.assignmentStrategies.map { .init(name: $0.rawValue, metadata: metadata) }
            )
            // The join phase may wait for the other members as long as the rebalance timeout.
            joined = try await connection.send(
                request,
                maximumVersion: 7,
                timeout: (configuration.rebalanceTimeout + configuration.requestTimeout).timeAmount
            )
            let code = joined.errorCode
            if code == .memberIDRequired {
                machine.withLock { $0.memberID = joined.memberId }
                continue
            }
            try check(code)
            break
        }
        machine.withLock {
            $0.memberID = joined.memberId
            $0.generation = joined.generationId
        }

        var assignments: [SyncGroupRequest.SyncGroupRequestAssignment] = []
        if joined.leader == joined.memberId {
            assignments = try await assign(members: joined.members, protocolName: joined.protocolName ?? "range")
        }
        let synced = try await connection.send(
            SyncGroupRequest(
                groupId: group,
                generationId: joined.generationId,
                memberId: joined.memberId,
                groupInstanceId: configuration.groupInstanceID,
                protocolType: "consumer",
                protocolName: joined.protocolName,
                assignments: assignments
            ),
            maximumVersion: 5,
            timeout: (configuration.rebalanceTimeout + configuration.requestTimeout).timeAmount
        )
        try check(synced.errorCode)
        let mine = ConsumerProtocolAssignment(embedded: synced.assignment)?.partitions ?? []
        let committed = mine.isEmpty ? [:] : try await committedOffsets(group: group, partitions: mine)
        let reset: KafkaConsumerConfiguration.StartOffset = configuration.offsetReset == .earliest ? .beginning : .end
        var starts: [TopicPartition: KafkaConsumerConfiguration.StartOffset] = [:]
        for partition in mine { starts[partition] = committed[partition].map { .offset($0) } ?? reset }
        let positions = try await resolve(starts)
        machine.withLock { state in for (partition, offset) in committed { state.committed[partition] = offset } }
        install(positions)
        logger.debug(
            "joined group",
            metadata: ["group": "\(group)", "generation": "\(joined.generationId)", "partitions": "\(mine.count)"]
        )
        emit(.assigned(mine, generation: joined.generationId))
    }

    /// The leader's work: every member's subscription, split with the chosen strategy.
    private func assign(
        members: [JoinGroupResponse.JoinGroupResponseMember],
        protocolName: String
    ) async throws -> [SyncGroupRequest.SyncGroupRequestAssignment] {
        var subscriptions: [String: [String]] = [:]
        for member in members {
            guard let subscription = ConsumerProtocolSubscription(embedded: member.metadata) else {
                throw KafkaClientError.unexpectedResponse("member \(member.memberId) sent no consumer subscription")
            }
            subscriptions[member.memberId] = subscription.topics
        }
        var counts: [String: Int] = [:]
        for topic in Set(subscriptions.values.flatMap { $0 }) {
            counts[topic] = (try? await cluster.layout(of: topic, refresh: true))?.partitionCount ?? 0
        }
        let strategy = AssignmentStrategy(rawValue: protocolName) ?? .range
        let plan = strategy.assign(subscriptions: subscriptions, partitionCounts: counts)
        return plan.map { member, partitions in
            .init(memberId: member, assignment: ConsumerProtocolAssignment(partitions: partitions).embedded)
        }
    }

    private func heartbeatUntilRebalance(group: String) async throws {
        while !Task.isCancelled && !isStopping {
            try await Task.sleep(for: configuration.heartbeatInterval)
            let (memberID, generation) = machine.withLock { ($0.memberID, $0.generation) }
            let connection = try await coordinator(for: group).connection
            let response = try await connection.send(
                HeartbeatRequest(
                    groupId: group,
                    generationId: generation,
                    memberId: memberID,
                    groupInstanceId: configuration.groupInstanceID
                ),
                maximumVersion: 4
            )
            try check(response.errorCode)
        }
    }

    /// Maps a group error to what the member must do next.
    private func check(_ code: ErrorCode) throws {
        switch code {
        case .none: return
        case .rebalanceInProgress, .illegalGeneration: throw RejoinReason.rebalance
        case .unknownMemberID, .fencedInstanceID: throw RejoinReason.unknownMember
        case .notCoordinator, .coordinatorNotAvailable, .coordinatorLoadInProgress: throw RejoinReason.coordinatorLost
        default: throw KafkaClientError.broker(code, message: "group request")
        }
    }

    /// Leaves the group so the others rebalance at once (static members stay: they are expected back).
    func leaveGroup() async {
        if configuration.groupProtocol == .consumer { return await leaveConsumerGroup() }
        guard let group = groupID, configuration.groupInstanceID == nil else { return }
        let memberID = machine.withLock { $0.memberID }
        guard !memberID.isEmpty, let connection = try? await coordinator(for: group).connection else { return }
        let version = (try? connection.version(for: LeaveGroupRequest.self, maximum: 5)) ?? 0
        let request =
            version >= 3
            ? LeaveGroupRequest(groupId: group, members: [.init(memberId: memberID, groupInstanceId: nil)])
            : LeaveGroupRequest(groupId: group, memberId: memberID)
        _ = try? await connection.send(request, version: version)
        machine.withLock {
            $0.memberID = ""
            $0.generation = -1
        }
    }
}
