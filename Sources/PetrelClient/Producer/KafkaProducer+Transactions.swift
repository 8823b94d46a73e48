import PetrelProtocol

/// Transactions (KIP-98): with `transactionalID` set, records are sent inside transactions that commit
/// or abort atomically, together with consumer offsets added by `sendOffsets` — the exactly-once
/// consume-transform-produce loop:
///
///     try await producer.initTransactions()
///     for try await batch in orders {
///         try await producer.withTransaction { producer in
///             for order in batch { try await producer.send(notification(for: order)) }
///             try await producer.sendOffsets(positions(after: batch), group: "notifiers")
///         }
///     }
///
/// Consumers with `isolationLevel: .readCommitted` then see each transaction's records only once it
/// committed, and never an aborted one's.
extension KafkaProducer {
    /// Registers the transactional id with its coordinator and takes its producer id and epoch, which
    /// fences any older producer with the same id and aborts the transaction it left open.
    public func initTransactions() async throws {
        let id = try transactionalID()
        let timeoutMs = Int32(clamping: configuration.transactionTimeout.inMilliseconds)
        let response = try await transactionRequest("InitProducerId") {
            InitProducerIdRequest(transactionalId: id, transactionTimeoutMs: timeoutMs)
        } code: {
            $0.errorCode
        }
        machine.withLock { state in
            state.accumulator.producerID = response.producerId
            state.accumulator.producerEpoch = response.producerEpoch
            state.accumulator.isTransactional = true
            state.transaction?.initialized()
        }
        logger.debug(
            "transactions initialised",
            metadata: ["transactionalID": "\(id)", "producerID": "\(response.producerId)"]
        )
    }

    /// Opens a transaction: the records sent until `commitTransaction` or `abortTransaction` belong to it.
    public func beginTransaction() throws {
        _ = try transactionalID()
        try machine.withLock { state throws(KafkaClientError) in try state.transaction?.begin() }
    }

    /// Adds consumer offsets to the open transaction: committed for `group` if it commits, dropped if
    /// it aborts. `offsets` are the positions to resume from (the offset after the last record read).
    public func sendOffsets(_ offsets: [TopicPartition: Int64], group: String) async throws {
        let id = try transactionalID()
        let mustAdd = try machine.withLock { state throws(KafkaClientError) in
            try state.transaction?.checkSendOffsets(group: group) ?? false
        }
        let (producerID, epoch) = machine.withLock { ($0.accumulator.producerID, $0.accumulator.producerEpoch) }
        if mustAdd {
            _ = try await transactionRequest("AddOffsetsToTxn") {
                AddOffsetsToTxnRequest(
                    transactionalId: id,
                    producerId: producerID,
                    producerEpoch: epoch,
                    groupId: group
                )
            } code: {
                $0.errorCode
            }
            machine.withLock { $0.transaction?.addedGroup(group) }
        }
        let byTopic = Dictionary(grouping: offsets, by: \.key.topic)
        let request = TxnOffsetCommitRequest(
            transactionalId: id,
            groupId: group,
            producerId: producerID,
            producerEpoch: epoch,
            generationId: -1,
            memberId: "",
            groupInstanceId: nil,
            topics: byTopic.keys.sorted().map { topic in
                .init(
                    name: topic,
                    partitions: byTopic[topic]!.sorted { $0.key < $1.key }.map {
                        .init(partitionIndex: $0.key.partition, committedOffset: $0.value, committedLeaderEpoch: -1)
                    }
                )
            }
        )
        let response = try await cluster.node(try await cluster.findCoordinator(key: group, keyType: 0))
            .send(request, maximumVersion: 3)
        if let failed = response.topics.flatMap(\.partitions).first(where: { $0.errorCode != .none }) {
            let error = KafkaClientError.broker(failed.errorCode, message: "TxnOffsetCommit")
            machine.withLock { $0.transaction?.failed(error) }
            throw error
        }
    }

    /// Delivers the transaction's records, then commits it: its records become visible to
    /// read_committed consumers and its offsets are committed. If a record could not be delivered the
    /// transaction cannot commit: this throws, and it must be aborted.
    public func commitTransaction() async throws {
        try machine.withLock { state throws(KafkaClientError) in try state.transaction?.checkCommit() }
        await flush()
        try machine.withLock { state throws(KafkaClientError) in try state.transaction?.checkCommit() }
        try await endTransaction(commit: true)
    }

    /// Aborts the open transaction: read_committed consumers never see its records, its offsets are
    /// dropped.
    public func abortTransaction() async throws {
        try machine.withLock { state throws(KafkaClientError) in try state.transaction?.checkAbort() }
        await flush()
        try await endTransaction(commit: false)
    }

    /// Runs `body` in a transaction: commits it if `body` returns, aborts it (and rethrows) if it throws.
    public func withTransaction<Result: Sendable>(
        _ body: (KafkaProducer) async throws -> Result
    ) async throws
        -> Result
    {
        try beginTransaction()
        do {
            let result = try await body(self)
            try await commitTransaction()
            return result
        } catch {
            if machine.withLock({ state in (try? state.transaction?.checkAbort()) != nil }) {
                try? await abortTransaction()
            }
            throw error
        }
    }

    // MARK: - Inside the producer

    /// Before a record goes to a partition the open transaction has not written yet, the coordinator
    /// is told (AddPartitionsToTxn); no-op for producers without a transactional id.
    func joinTransaction(_ partition: TopicPartition) async throws {
        guard let id = configuration.transactionalID else { return }
        let mustAdd = try machine.withLock { state throws(KafkaClientError) in
            try state.transaction?.checkSend(to: partition) ?? false
        }
        guard mustAdd else { return }
        let (producerID, epoch) = machine.withLock { ($0.accumulator.producerID, $0.accumulator.producerEpoch) }
        let response = try await transactionRequest("AddPartitionsToTxn") {
            AddPartitionsToTxnRequest(
                v3AndBelowTransactionalId: id,
                v3AndBelowProducerId: producerID,
                v3AndBelowProducerEpoch: epoch,
                v3AndBelowTopics: [.init(name: partition.topic, partitions: [partition.partition])]
            )
        } code: { response in
            response.resultsByTopicV3AndBelow.flatMap(\.resultsByPartition).map(\.partitionErrorCode)
                .first { $0 != .none } ?? response.errorCode
        }
        _ = response
        machine.withLock { $0.transaction?.added(partition) }
    }

    /// A record of the open transaction failed: the transaction can now only abort (or, if the
    /// producer was fenced, nothing more can be done with it).
    func transactionFailed(_ error: KafkaClientError) {
        machine.withLock { $0.transaction?.failed(error) }
    }

    private func endTransaction(commit: Bool) async throws {
        let id = try transactionalID()
        let (producerID, epoch) = machine.withLock { ($0.accumulator.producerID, $0.accumulator.producerEpoch) }
        _ = try await transactionRequest("EndTxn") {
            EndTxnRequest(transactionalId: id, producerId: producerID, producerEpoch: epoch, committed: commit)
        } code: {
            $0.errorCode
        }
        machine.withLock { $0.transaction?.ended() }
    }

    private func transactionalID() throws(KafkaClientError) -> String {
        guard let id = configuration.transactionalID else {
            throw .invalidArgument("the producer has no transactionalID")
        }
        return id
    }

    /// Sends a request to the transaction coordinator, retrying what Kafka retries (the coordinator
    /// moving or loading, CONCURRENT_TRANSACTIONS while an earlier end completes) for up to `maxBlock`.
    /// Any other error is thrown; fencing ones make the producer unusable.
    private func transactionRequest<Request: KafkaRequest>(
        _ what: String,
        _ makeRequest: () -> Request,
        code: (Request.Response) -> ErrorCode
    ) async throws -> Request.Response {
        let id = try transactionalID()
        let deadline = wallClockMillis() + configuration.maxBlock.inMilliseconds
        var backoff = configuration.retryBackoff.inMilliseconds
        while true {
            let failure: KafkaClientError
            do {
                let coordinator = try await cluster.findCoordinator(key: id, keyType: 1)
                let response = try await cluster.node(coordinator).send(makeRequest(), maximumVersion: 3)
                let answer = code(response)
                if answer == .none { return response }
                failure = .broker(answer, message: what)
            } catch let error as KafkaClientError {
                failure = error
            }
            guard failure.isRetriable, wallClockMillis() < deadline else {
                machine.withLock { $0.transaction?.failed(failure) }
                throw failure
            }
            try await Task.sleep(for: .milliseconds(backoff))
            backoff = min(backoff * 2, configuration.maxRetryBackoff.inMilliseconds)
        }
    }

}
