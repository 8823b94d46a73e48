import NIOCore
import PetrelProtocol

/// The fetcher: long-polling Fetch requests to each leader of the assigned partitions, records into the
/// buffer, positions forward.
extension KafkaConsumer {
    func runFetcher() async {
        var backoff = configuration.retryBackoff.inMilliseconds
        while !Task.isCancelled && !isStopping {
            let (positions, epoch) = machine.withLock { $0.fetchable }
            if positions.isEmpty {
                _ = await machine.park(\.fetcher, until: .now + .seconds(1)) { $0.takeFetcherWork() }
                continue
            }
            var byLeader: [Int32: [(TopicPartition, Int64)]] = [:]
            var missingLeader = false
            for (partition, offset) in positions {
                do {
                    byLeader[try await cluster.leader(of: partition).node, default: []].append((partition, offset))
                } catch {
                    cluster.invalidate(topic: partition.topic)
                    missingLeader = true
                }
            }
            let healthy = await withTaskGroup(of: Bool.self) { group in
                for (node, partitions) in byLeader {
                    group.addTask { await self.fetch(from: node, partitions, epoch: epoch) }
                }
                return await group.reduce(true) { $0 && $1 }
            }
            if healthy && !missingLeader {
                backoff = configuration.retryBackoff.inMilliseconds
            } else {
                try? await Task.sleep(for: .milliseconds(backoff))
                backoff = min(backoff * 2, 5_000)
            }
        }
    }

    /// One Fetch to one broker. Returns false if it failed in a way worth backing off for.
    private func fetch(from node: Int32, _ partitions: [(TopicPartition, Int64)], epoch: UInt64) async -> Bool {
        let byTopic = Dictionary(grouping: partitions, by: \.0.topic)
        let request = FetchRequest(
            replicaId: -1,
            maxWaitMs: Int32(clamping: configuration.fetchMaxWait.inMilliseconds),
            minBytes: configuration.fetchMinBytes,
            maxBytes: configuration.fetchMaxBytes,
            isolationLevel: configuration.isolationLevel.rawValue,
            sessionId: 0,
            sessionEpoch: -1,
            topics: byTopic.keys.sorted().map { topic in
                .init(
                    topic: topic,
                    partitions: byTopic[topic]!.map {
                        .init(
                            partition: $0.0.partition,
                            currentLeaderEpoch: -1,
                            fetchOffset: $0.1,
                            logStartOffset: -1,
                            partitionMaxBytes: configuration.partitionMaxBytes
                        )
                    }
                )
            }
        )
        let response: FetchResponse
        do {
            let connection = try await cluster.node(node)
            // v12 is the last to name topics; v4 the first with record batches.
            let version = try connection.version(for: FetchRequest.self, maximum: 12)
            guard version >= 4 else { throw KafkaClientError.unsupportedVersion(.fetch) }
            response = try await connection.send(
                request,
                version: version,
                timeout: (configuration.requestTimeout + configuration.fetchMaxWait).timeAmount
            )
        } catch {
            logger.debug("fetch failed", metadata: ["node": "\(node)", "error": "\(error)"])
            for topic in byTopic.keys { cluster.invalidate(topic: topic) }
            return false
        }
        if response.errorCode != ErrorCode.none {
            logger.debug("fetch refused", metadata: ["error": "\(response.errorCode)"])
            return false
        }
        let requested = Dictionary(uniqueKeysWithValues: partitions.map { ($0.0, $0.1) })
        var healthy = true
        for topic in response.responses {
            for data in topic.partitions {
                let partition = TopicPartition(topic.topic, data.partitionIndex)
                guard let from = requested[partition] else { continue }
                switch data.errorCode {
                case .none:
                    let aborted = (data.abortedTransactions ?? []).map { ($0.producerId, $0.firstOffset) }
                    if !(await accept(
                        data.records ?? ByteBuffer(),
                        of: partition,
                        from: from,
                        aborted: aborted,
                        epoch: epoch
                    )) {
                        healthy = false
                    }
                case .offsetOutOfRange:
                    await resetOutOfRange(partition, from: from, epoch: epoch)
                case let code:
                    logger.debug("fetch error", metadata: ["partition": "\(partition)", "error": "\(code)"])
                    cluster.invalidate(topic: partition.topic)
                    healthy = false
                }
            }
        }
        return healthy
    }

    /// Hands a partition's records to the buffer (without control records, and for read_committed
    /// without aborted transactions' records) and moves its position past them.
    private func accept(
        _ bytes: ByteBuffer,
        of partition: TopicPartition,
        from: Int64,
        aborted: [(Int64, Int64)],
        epoch: UInt64
    ) async -> Bool {
        guard bytes.readableBytes > 0 else { return true }
        let batches: [RecordBatch]
        do {
            batches = try RecordBatchDecoder.decodeBatches(bytes)
        } catch {
            logger.warning("undecodable records", metadata: ["partition": "\(partition)", "error": "\(error)"])
            return false
        }
        guard let last = batches.last else { return true }
        var filter = AbortedTransactionFilter(aborted.map { (producerID: $0.0, firstOffset: $0.1) })
        let records = batches.filter { filter.keeps($0) }.flatMap { batch in
            batch.records.lazy.filter { $0.offset >= from }.map { record in
                ConsumerRecord(
                    topic: partition.topic,
                    partition: partition.partition,
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key,
                    value: record.value,
                    headers: record.headers
                )
            }
        }
        _ = await machine.push(records, of: partition, from: from, next: last.header.nextOffset, epoch: epoch)
        return true
    }

    /// The position fell outside the log (retention deleted it, or it never existed): start again where
    /// the reset policy says.
    private func resetOutOfRange(_ partition: TopicPartition, from: Int64, epoch: UInt64) async {
        let start: KafkaConsumerConfiguration.StartOffset = configuration.offsetReset == .earliest ? .beginning : .end
        guard let offset = try? await resolve([partition: start])[partition] else { return }
        logger.info(
            "offset out of range; reset",
            metadata: ["partition": "\(partition)", "from": "\(from)", "to": "\(offset)"]
        )
        machine.withLock { $0.reset(partition, from: from, to: offset, epoch: epoch) }
    }
}
