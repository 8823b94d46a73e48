import PetrelProtocol

/// The transaction coordinator's decisions (Kafka's TransactionCoordinator), as a value type: for each
/// request it checks the transactional id's producer id, epoch and state and answers with a `Step` —
/// respond at once, store new metadata then respond, or end the transaction. `TransactionCoordinator`
/// holds it behind one lock and carries the steps out. Time is a parameter, so tests drive it with a
/// fake clock.
///
/// While a step's writes are under way the id is in flight: other requests for it are answered
/// CONCURRENT_TRANSACTIONS (clients retry), so decisions never race their own writes.
struct TransactionStates: Sendable {
    enum Step: Hashable, Sendable {
        case respond(ErrorCode)
        /// Write `metadata` to the transaction log, apply it (`stored`), then answer.
        case store(TransactionMetadata, then: ErrorCode)
        /// Write the prepared state, write the markers (and commit the offsets), write the completed
        /// state, then answer.
        case end(TransactionEnd, then: ErrorCode)
    }

    /// One transaction's end, from its prepared state to its completed one.
    struct TransactionEnd: Hashable, Sendable {
        enum Cause: Hashable, Sendable {
            /// EndTxn.
            case requested
            /// The transaction outlived its timeout.
            case timedOut
            /// A new producer for the transactional id.
            case fenced
            /// An end a crash or a failed write interrupted, finished again.
            case resumed
        }

        var prepared: TransactionMetadata
        var completed: TransactionMetadata
        var cause: Cause
        var commit: Bool { prepared.state == .prepareCommit }
    }

    /// The longest transaction a producer may ask for (Kafka's transaction.max.timeout.ms).
    let maxTimeoutMs: Int32
    private(set) var transactions: [String: TransactionMetadata] = [:]
    private(set) var inFlight: Set<String> = []
    private var idsByProducer: [Int64: String] = [:]

    init(maxTimeoutMs: Int32, transactions: [TransactionMetadata] = []) {
        self.maxTimeoutMs = maxTimeoutMs
        for metadata in transactions { apply(metadata) }
    }

    // MARK: - Requests

    /// InitProducerId with a transactional id: a new producer id at epoch 0 the first time, else the
    /// same id at the next epoch, which fences every producer at an older one. An open transaction is
    /// aborted first (at a bumped epoch) and the client told to retry.
    mutating func initProducerID(
        _ id: String,
        timeoutMs: Int32,
        producerID: Int64 = -1,
        producerEpoch: Int16 = -1,
        now: Int64,
        newProducerID: () throws -> Int64
    ) rethrows -> Step {
        guard timeoutMs > 0, timeoutMs <= maxTimeoutMs else { return .respond(.invalidTransactionTimeout) }
        if inFlight.contains(id) { return .respond(.concurrentTransactions) }
        guard var metadata = transactions[id] else {
            let created = TransactionMetadata(
                transactionalID: id,
                producerID: try newProducerID(),
                producerEpoch: 0,
                timeoutMs: timeoutMs,
                state: .empty,
                lastUpdateTimestamp: now
            )
            inFlight.insert(id)
            return .store(created, then: .none)
        }
        // KIP-360: a producer that says who it is must be the current one (or the one just bumped).
        if producerID >= 0,
            producerID != metadata.producerID
                || (producerEpoch != metadata.producerEpoch && producerEpoch != metadata.lastProducerEpoch)
        {
            return .respond(.producerFenced)
        }
        switch metadata.state {
        case .prepareCommit, .prepareAbort, .prepareEpochFence:
            return .respond(.concurrentTransactions)
        case .ongoing:
            inFlight.insert(id)
            return .end(Self.end(metadata, commit: false, cause: .fenced, now: now), then: .concurrentTransactions)
        case .empty, .completeCommit, .completeAbort, .dead:
            if metadata.producerEpoch >= Int16.max - 1 {
                metadata.producerID = try newProducerID()
                metadata.producerEpoch = 0
                metadata.lastProducerEpoch = -1
            } else {
                metadata.lastProducerEpoch = metadata.producerEpoch
                metadata.producerEpoch += 1
            }
            metadata.timeoutMs = timeoutMs
            metadata.state = .empty
            metadata.lastUpdateTimestamp = now
            inFlight.insert(id)
            return .store(metadata, then: .none)
        }
    }

    /// AddPartitionsToTxn: the partitions join the transaction, which is open from then on.
    mutating func addPartitions(
        _ id: String,
        producerID: Int64,
        producerEpoch: Int16,
        partitions: Set<TopicPartition>,
        now: Int64
    ) -> Step {
        switch check(id, producerID: producerID, producerEpoch: producerEpoch) {
        case .refused(let code): return .respond(code)
        case .current(let metadata):
            if metadata.state == .ongoing && partitions.isSubset(of: metadata.partitions) { return .respond(.none) }
            var opened = Self.opened(metadata, now: now)
            opened.partitions.formUnion(partitions)
            inFlight.insert(id)
            return .store(opened, then: .none)
        }
    }

    /// AddOffsetsToTxn: the group's offsets will be committed with the transaction.
    mutating func addOffsets(
        _ id: String,
        producerID: Int64,
        producerEpoch: Int16,
        group: String,
        now: Int64
    )
        -> Step
    {
        switch check(id, producerID: producerID, producerEpoch: producerEpoch) {
        case .refused(let code): return .respond(code)
        case .current(let metadata):
            if metadata.state == .ongoing && metadata.groups.contains(group) { return .respond(.none) }
            var opened = Self.opened(metadata, now: now)
            opened.groups.insert(group)
            inFlight.insert(id)
            return .store(opened, then: .none)
        }
    }

    /// TxnOffsetCommit: offsets held with the transaction until it ends.
    mutating func commitOffsets(
        _ id: String,
        producerID: Int64,
        producerEpoch: Int16,
        group: String,
        offsets: [TopicPartition: CommittedOffset],
        now: Int64
    ) -> Step {
        switch check(id, producerID: producerID, producerEpoch: producerEpoch) {
        case .refused(let code): return .respond(code)
        case .current(var metadata):
            guard metadata.state == .ongoing, metadata.groups.contains(group) else {
                return .respond(.invalidTransactionState)
            }
            metadata.pendingOffsets[group, default: [:]].merge(offsets) { $1 }
            metadata.lastUpdateTimestamp = now
            inFlight.insert(id)
            return .store(metadata, then: .none)
        }
    }

    /// EndTxn: commit or abort the open transaction. Asking again for what is already done is answered
    /// as done (a retry); asking for the other outcome is INVALID_TXN_STATE.
    mutating func end(_ id: String, producerID: Int64, producerEpoch: Int16, commit: Bool, now: Int64) -> Step {
        if let metadata = transactions[id], !inFlight.contains(id), metadata.producerID == producerID,
            producerEpoch == metadata.lastProducerEpoch, metadata.state == .completeAbort, !commit
        {
            // The coordinator aborted it (a timeout) and bumped the epoch; the producer aborts too.
            return .respond(.none)
        }
        switch check(id, producerID: producerID, producerEpoch: producerEpoch) {
        case .refused(let code): return .respond(code)
        case .current(let metadata):
            switch metadata.state {
            case .ongoing:
                inFlight.insert(id)
                return .end(Self.end(metadata, commit: commit, cause: .requested, now: now), then: .none)
            case .completeCommit: return .respond(commit ? .none : .invalidTransactionState)
            case .completeAbort: return .respond(commit ? .invalidTransactionState : .none)
            case .prepareCommit, .prepareAbort, .prepareEpochFence: return .respond(.concurrentTransactions)
            case .empty, .dead: return .respond(.invalidTransactionState)
            }
        }
    }

    // MARK: - Timers and recovery

    /// Open transactions older than their timeout, aborted at a bumped epoch so that the producer, if
    /// it is still alive, is fenced.
    mutating func expired(now: Int64) -> [TransactionEnd] {
        let late = transactions.values.filter {
            $0.state == .ongoing && !inFlight.contains($0.transactionalID)
                && now - $0.startTimestamp > Int64($0.timeoutMs)
        }
        return late.sorted { $0.transactionalID < $1.transactionalID }.map { metadata in
            inFlight.insert(metadata.transactionalID)
            return Self.end(metadata, commit: false, cause: .timedOut, now: now)
        }
    }

    /// Transactions whose end was durable but not finished (a crash, a failed write): finished again.
    mutating func interruptedEnds(now: Int64) -> [TransactionEnd] {
        let stuck = transactions.values.filter { $0.state.isEnding && !inFlight.contains($0.transactionalID) }
        return stuck.sorted { $0.transactionalID < $1.transactionalID }.map { prepared in
            inFlight.insert(prepared.transactionalID)
            return TransactionEnd(prepared: prepared, completed: Self.completed(prepared, now: now), cause: .resumed)
        }
    }

    // MARK: - Writes done

    /// A write of `metadata` is durable: it is the id's state now. The id stays in flight while its
    /// transaction is ending.
    mutating func stored(_ metadata: TransactionMetadata) {
        apply(metadata)
        if !metadata.state.isEnding { inFlight.remove(metadata.transactionalID) }
    }

    /// A write failed: the id is free again, in its last durable state.
    mutating func failed(_ id: String) {
        inFlight.remove(id)
    }

    // MARK: - Questions from other parts of the broker

    /// Why a transactional batch cannot be appended, or nil: its producer's transaction must be open,
    /// at its epoch, and include the partition.
    func produceRefusal(producerID: Int64, producerEpoch: Int16, partition: TopicPartition) -> ErrorCode? {
        guard let id = idsByProducer[producerID], let metadata = transactions[id] else {
            return .invalidProducerIDMapping
        }
        if producerEpoch < metadata.producerEpoch { return .invalidProducerEpoch }
        guard metadata.state == .ongoing, metadata.partitions.contains(partition) else {
            return .invalidTransactionState
        }
        return nil
    }

    /// Whether an open transaction holds offsets for the group's partition (OffsetFetch require_stable).
    func hasPendingOffsets(group: String, partition: TopicPartition) -> Bool {
        transactions.values.contains { $0.state != .completeCommit && $0.pendingOffsets[group]?[partition] != nil }
    }

    // MARK: - Helpers

    private mutating func apply(_ metadata: TransactionMetadata) {
        if let previous = transactions[metadata.transactionalID], previous.producerID != metadata.producerID {
            idsByProducer[previous.producerID] = nil
        }
        transactions[metadata.transactionalID] = metadata
        idsByProducer[metadata.producerID] = metadata.transactionalID
    }

    /// A request's transactional id, producer id and epoch, checked against what the coordinator knows.
    private enum Checked {
        case current(TransactionMetadata)
        case refused(ErrorCode)
    }

    private func check(_ id: String, producerID: Int64, producerEpoch: Int16) -> Checked {
        guard let metadata = transactions[id] else { return .refused(.invalidProducerIDMapping) }
        if inFlight.contains(id) || metadata.state.isEnding { return .refused(.concurrentTransactions) }
        guard metadata.producerID == producerID else { return .refused(.invalidProducerIDMapping) }
        guard metadata.producerEpoch == producerEpoch else { return .refused(.producerFenced) }
        return .current(metadata)
    }

    /// The metadata with a transaction open: a new one (empty sets, started now) unless one already is.
    private static func opened(_ metadata: TransactionMetadata, now: Int64) -> TransactionMetadata {
        var opened = metadata
        if metadata.state != .ongoing {
            opened.partitions = []
            opened.groups = []
            opened.pendingOffsets = [:]
            opened.startTimestamp = now
            opened.state = .ongoing
        }
        opened.lastUpdateTimestamp = now
        return opened
    }

    /// The end of `metadata`'s open transaction. When the coordinator ends it (a timeout, a new producer
    /// for the id) the epoch is bumped, and the markers carry the new epoch: the old producer is fenced.
    private static func end(
        _ metadata: TransactionMetadata,
        commit: Bool,
        cause: TransactionEnd.Cause,
        now: Int64
    ) -> TransactionEnd {
        var prepared = metadata
        prepared.state = commit ? .prepareCommit : .prepareAbort
        prepared.lastUpdateTimestamp = now
        if cause != .requested && metadata.producerEpoch < Int16.max - 1 {
            prepared.lastProducerEpoch = metadata.producerEpoch
            prepared.producerEpoch = metadata.producerEpoch + 1
        }
        return TransactionEnd(prepared: prepared, completed: completed(prepared, now: now), cause: cause)
    }

    private static func completed(_ prepared: TransactionMetadata, now: Int64) -> TransactionMetadata {
        var completed = prepared
        completed.state = prepared.state == .prepareCommit ? .completeCommit : .completeAbort
        completed.partitions = []
        completed.groups = []
        completed.pendingOffsets = [:]
        completed.startTimestamp = -1
        completed.lastUpdateTimestamp = now
        return completed
    }
}
