import NIOCore
import PetrelProtocol

/// Positions: resolving start points, committing, and reading committed offsets.
extension KafkaConsumer {
    /// Turns start points into offsets (ListOffsets on each partition's leader). A timestamp with no
    /// record at or after it resolves to the end.
    func resolve(
        _ starts: [TopicPartition: KafkaConsumerConfiguration.StartOffset]
    ) async throws -> [TopicPartition: Int64] {
        var resolved: [TopicPartition: Int64] = [:]
        var lookups: [TopicPartition: Int64] = [:]
        for (partition, start) in starts {
            switch start {
            case .offset(let offset): resolved[partition] = offset
            case .beginning: lookups[partition] = -2
            case .end: lookups[partition] = -1
            case .timestamp(let time): lookups[partition] = time
            }
        }
        if lookups.isEmpty { return resolved }
        var byLeader: [Int32: [TopicPartition]] = [:]
        for partition in lookups.keys {
            byLeader[try await cluster.leader(of: partition).node, default: []].append(partition)
        }
        var unresolved: [TopicPartition] = []
        for (node, partitions) in byLeader {
            let request = ListOffsetsRequest(
                replicaId: -1,
                isolationLevel: configuration.isolationLevel.rawValue,
                topics: partitions.groupedByTopic().map { topic, indexes in
                    .init(
                        name: topic,
                        partitions: indexes.map {
                            .init(
                                partitionIndex: $0,
                                timestamp: lookups[TopicPartition(topic, $0)]!,
                                maxNumOffsets: 1
                            )
                        }
                    )
                }
            )
            let response = try await cluster.node(node).send(request, maximumVersion: 7)
            for topic in response.topics {
                for partition in topic.partitions {
                    let key = TopicPartition(topic.name, partition.partitionIndex)
                    guard partition.errorCode == ErrorCode.none else {
                        throw KafkaClientError.broker(partition.errorCode, message: "ListOffsets for \(key)")
                    }
                    if partition.offset >= 0 { resolved[key] = partition.offset } else { unresolved.append(key) }
                }
            }
        }
        // Past the last record: start at the end.
        if !unresolved.isEmpty {
            for (key, offset) in try await resolve(Dictionary(uniqueKeysWithValues: unresolved.map { ($0, .end) })) {
                resolved[key] = offset
            }
        }
        return resolved
    }

    /// Commits the offsets after the records handed out so far (synchronously: returns once stored).
    public func commit() async throws {
        try await commit(machine.withLock { $0.uncommitted() })
    }

    /// Commits the given offsets (each the offset of the next record to read) for the group.
    public func commit(_ offsets: [TopicPartition: Int64]) async throws {
        try await commit(offsets, waitingOutStaleEpochs: true)
    }

    /// With the consumer protocol, a commit refused for a stale member epoch (the epoch moved on a
    /// heartbeat not yet answered) is tried again after the next heartbeat, a few times, when
    /// `waitingOutStaleEpochs`; the membership loop itself cannot wait for its own heartbeat.
    func commit(_ offsets: [TopicPartition: Int64], waitingOutStaleEpochs: Bool) async throws {
        var attempts = 0
        while true {
            let (heartbeats, interval) = machine.withLock {
                ($0.membership?.heartbeatsCompleted, $0.membership?.heartbeatIntervalMs ?? 0)
            }
            do {
                return try await commitOnce(offsets)
            } catch {
                // One plain catch: a typed `catch let … as KafkaClientError where …` that rethrows crashes
                // the Swift 6.3 optimizer (release builds) in this async function.
                attempts += 1
                guard Self.isStaleEpoch(error), waitingOutStaleEpochs, let heartbeats, attempts < 4 else { throw error }
                let deadline = ContinuousClock.now + .milliseconds(interval) + configuration.requestTimeout
                let outcome = await machine.park(\.heartbeatAnswers, until: deadline) { state in
                    state.isStopping || state.membership?.heartbeatsCompleted != heartbeats ? () : nil
                }
                if case .cancelled = outcome { throw CancellationError() }
                if isStopping { throw error }
            }
        }
    }

    private static func isStaleEpoch(_ error: any Error) -> Bool {
        (error as? KafkaClientError)?.errorCode == .staleMemberEpoch
    }

    private func commitOnce(_ offsets: [TopicPartition: Int64]) async throws {
        guard !offsets.isEmpty else { return }
        guard let group = groupID else {
            throw KafkaClientError.invalidArgument("a consumer without a group has nowhere to commit")
        }
        let (member, generation) = machine.withLock { $0.commitIdentity }
        let connection = try await coordinator(for: group).connection
        let byTopic = Dictionary(grouping: offsets, by: \.key.topic)
        let request = OffsetCommitRequest(
            groupId: group,
            generationIdOrMemberEpoch: generation,
            memberId: member,
            groupInstanceId: configuration.groupInstanceID,
            topics: byTopic.keys.sorted().map { topic in
                .init(
                    name: topic,
                    partitions: byTopic[topic]!.map {
                        .init(partitionIndex: $0.key.partition, committedOffset: $0.value)
                    }
                )
            }
        )
        // v9 is the first Kafka takes from consumer-protocol members; the same fields as v8.
        let response = try await connection.send(request, maximumVersion: 9)
        for topic in response.topics {
            for partition in topic.partitions where partition.errorCode != ErrorCode.none {
                throw KafkaClientError.broker(
                    partition.errorCode,
                    message: "committing \(topic.name)-\(partition.partitionIndex)"
                )
            }
        }
        machine.withLock { state in for (partition, offset) in offsets { state.committed[partition] = offset } }
    }

    /// The group's committed offsets for these partitions (absent: never committed).
    func committedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        try await OffsetFetching.committed(
            group: group,
            partitions: partitions,
            on: try await coordinator(for: group).connection
        )
    }

    /// The group's coordinator, remembered until it fails.
    func coordinator(for group: String) async throws -> (node: Int32, connection: KafkaConnection) {
        if let node = machine.withLock({ $0.coordinator }) { return (node, try await cluster.node(node)) }
        let node = try await cluster.findCoordinator(key: group, keyType: 0)
        machine.withLock { $0.coordinator = node }
        return (node, try await cluster.node(node))
    }

    /// Commits what was read, every `autoCommitInterval`, until cancelled.
    func runAutoCommit() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.autoCommitInterval)
            if Task.isCancelled { return }
            do {
                try await commit()
            } catch {
                logger.debug("auto-commit failed; the next one retries", metadata: ["error": "\(error)"])
            }
        }
    }
}
