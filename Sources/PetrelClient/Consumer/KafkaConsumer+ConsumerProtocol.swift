import PetrelProtocol

/// Group membership with the consumer group protocol (KIP-848): the I/O around
/// `ConsumerProtocolMembership`, which decides everything. One loop does its actions in turn: heartbeats
/// to the coordinator, topic id look-ups, giving up and taking partitions, leaving.
extension KafkaConsumer {
    func runConsumerProtocol(group: String, topics: [String]) async throws {
        let settings = ConsumerProtocolMembership.Settings(
            groupID: group,
            topics: topics,
            instanceID: configuration.groupInstanceID,
            serverAssignor: configuration.groupRemoteAssignor,
            rebalanceTimeoutMs: Int32(clamping: configuration.rebalanceTimeout.inMilliseconds),
            retryBackoffMs: max(1, configuration.retryBackoff.inMilliseconds)
        )
        // Kafka's Java client names itself the same way: a random UUID in URL-safe base64.
        let memberID = KafkaUUID.random().description
        machine.withLock { $0.membership = ConsumerProtocolMembership(settings: settings, clientMemberID: memberID) }
        // Monotonic milliseconds for the membership's timers.
        let origin = ContinuousClock.now
        let clock = { (ContinuousClock.now - origin).inMilliseconds }
        var waitingReported = false
        while !Task.isCancelled && !isStopping {
            let now = clock()
            switch machine.withLock({ $0.membership!.nextAction(now: now) }) {
            case .wait(let until):
                do { try await Task.sleep(for: .milliseconds(max(1, until - now))) } catch { return }
            case .heartbeat:
                // Told once per stretch of failures, as the classic protocol does.
                if let unreachable = try await heartbeat(group: group, now: clock) {
                    if !waitingReported { configuration.onWaitingForCluster?(unreachable) }
                    waitingReported = true
                } else {
                    waitingReported = false
                }
            case .resolveTopics(let ids):
                await learnTopics(topics, looking: ids)
            case .reconcile(let revoke, let assign):
                if !revoke.isEmpty { await give(up: revoke) }
                if !assign.isEmpty { await take(assign, group: group, now: clock) }
            case .lose:
                let (lost, wakeups) = machine.withLock { $0.loseForMembership() }
                wakeups.resume()
                logger.info("fenced by the group; partitions lost", metadata: ["partitions": "\(lost.count)"])
                if !lost.isEmpty { emit(.revoked(lost.sorted())) }
            case .fail(let error):
                logger.error("cannot be a member of the group", metadata: ["group": "\(group)", "error": "\(error)"])
                throw error
            }
        }
    }

    /// One heartbeat. Returns why no coordinator answered it, if none did and trying again may help.
    private func heartbeat(group: String, now clock: () -> Int64) async throws -> KafkaClientError? {
        let response: ConsumerGroupHeartbeatResponse
        do {
            let connection = try await coordinator(for: group).connection
            let version: Int16
            do {
                version = try connection.version(for: ConsumerGroupHeartbeatRequest.self)
            } catch {
                logger.error(
                    "the broker does not serve the consumer group protocol (KIP-848); use groupProtocol .classic",
                    metadata: ["group": "\(group)"]
                )
                throw error
            }
            let request = machine.withLock { $0.membership!.heartbeat(version: version) }
            response = try await connection.send(request, version: version)
        } catch let error as KafkaClientError where error.kind == .unsupportedVersion(.consumerGroupHeartbeat) {
            throw error
        } catch {
            logger.debug("heartbeat failed", metadata: ["group": "\(group)", "error": "\(error)"])
            machine.withLock {
                $0.coordinator = nil
                return $0.heartbeatFailed(now: clock())
            }.resume()
            return (error as? KafkaClientError).flatMap { $0.isRetriable ? $0 : nil }
        }
        let (outcome, wakeups) = machine.withLock { $0.heartbeatAnswered(response, now: clock()) }
        wakeups.resume()
        switch outcome {
        case .accepted?:
            let (member, epoch) = machine.withLock { $0.commitIdentity }
            logger.trace("heartbeat", metadata: ["member": "\(member)", "epoch": "\(epoch)"])
        case .fenced(let code)?:
            logger.info("fenced by the group; joining again", metadata: ["group": "\(group)", "error": "\(code)"])
        case .coordinatorLost(let code)?:
            logger.debug("coordinator moved", metadata: ["group": "\(group)", "error": "\(code)"])
            machine.withLock { $0.coordinator = nil }
            return .broker(code, message: "group \(group)")
        case .retrying(let code)?:
            logger.debug("heartbeat refused; retrying", metadata: ["group": "\(group)", "error": "\(code)"])
        case .fatal?, nil:
            break
        }
        return nil
    }

    /// Learns the ids of the subscribed topics (an assignment names topics by id).
    private func learnTopics(_ topics: [String], looking ids: Set<KafkaUUID>) async {
        do {
            let response = try await cluster.metadata(topics: topics)
            var learned: [String: KafkaUUID] = [:]
            for topic in response.topics where topic.errorCode == ErrorCode.none {
                if let name = topic.name { learned[name] = topic.topicId }
            }
            machine.withLock { $0.membership!.learn(learned) }
        } catch {
            logger.debug("cannot look up topic ids", metadata: ["ids": "\(ids)", "error": "\(error)"])
        }
    }

    /// Gives up partitions: drops them, commits what was read (with auto-commit), tells `events`. A failed
    /// commit does not keep them: the assignment has moved on.
    private func give(up partitions: Set<TopicPartition>) async {
        machine.withLock { $0.revokeForMembership(partitions) }.resume()
        if configuration.autoCommit {
            let pending = machine.withLock { $0.uncommitted(including: partitions) }
            do {
                try await commit(pending, waitingOutStaleEpochs: false)
            } catch {
                logger.warning("commit before giving up partitions failed", metadata: ["error": "\(error)"])
            }
        }
        machine.withLock { $0.forget(partitions) }
        emit(.revoked(partitions.sorted()))
    }

    /// Takes new partitions from their committed offsets (or `offsetReset`); on failure they are tried
    /// again after a backoff.
    private func take(_ partitions: Set<TopicPartition>, group: String, now clock: () -> Int64) async {
        do {
            let list = partitions.sorted()
            let committed = try await committedOffsets(group: group, partitions: list)
            let reset: KafkaConsumerConfiguration.StartOffset =
                configuration.offsetReset == .earliest ? .beginning : .end
            var starts: [TopicPartition: KafkaConsumerConfiguration.StartOffset] = [:]
            for partition in list { starts[partition] = committed[partition].map { .offset($0) } ?? reset }
            let positions = try await resolve(starts)
            let (taken, wakeups, epoch) = machine.withLock { state in
                let (taken, wakeups) = state.assignForMembership(positions, committed: committed)
                return (taken, wakeups, state.commitIdentity.generation)
            }
            wakeups.resume()
            logger.debug(
                "partitions assigned",
                metadata: ["group": "\(group)", "epoch": "\(epoch)", "count": "\(taken.count)"]
            )
            if !taken.isEmpty { emit(.assigned(taken.sorted(), generation: epoch)) }
        } catch {
            logger.debug("cannot take partitions yet", metadata: ["group": "\(group)", "error": "\(error)"])
            machine.withLock {
                $0.coordinator = nil
                $0.membership!.assignmentFailed(now: clock())
            }
        }
    }

    /// Leaves the group (epoch -1, or -2 for a static member, whose partitions wait for it).
    func leaveConsumerGroup() async {
        guard let group = groupID, let request = machine.withLock({ $0.membership?.leaveRequest() }),
            let connection = try? await coordinator(for: group).connection,
            let version = try? connection.version(for: ConsumerGroupHeartbeatRequest.self)
        else { return }
        let response = try? await connection.send(request, version: version)
        logger.debug(
            "left the group",
            metadata: ["group": "\(group)", "error": "\(response.map { "\($0.errorCode)" } ?? "no answer")"]
        )
        machine.withLock { $0.membership?.left() }
    }
}
