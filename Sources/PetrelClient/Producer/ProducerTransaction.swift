import PetrelProtocol

/// A transactional producer's side of the protocol (KIP-98), as a value type held in the producer's
/// state machine: which calls are allowed when, which partitions and groups the coordinator already
/// knows for the open transaction, and whether a failure makes the transaction abort-only or the
/// producer unusable.
struct ProducerTransaction: Sendable {
    enum Phase: Equatable, Sendable {
        /// `initTransactions` has not succeeded yet.
        case uninitialized
        /// No transaction open: `beginTransaction` may start one.
        case ready
        case inTransaction
        /// A record of the open transaction failed: it can only be aborted.
        case abortable(KafkaClientError)
        /// The producer was fenced (another producer took its transactional id) or hit an error it
        /// cannot recover from: every later call fails with this.
        case fatal(KafkaClientError)
    }

    let transactionalID: String
    private(set) var phase: Phase = .uninitialized
    /// Partitions the coordinator has been told about in the open transaction.
    private(set) var partitions: Set<TopicPartition> = []
    private(set) var groups: Set<String> = []

    init(transactionalID: String) {
        self.transactionalID = transactionalID
    }

    mutating func initialized() {
        if case .fatal = phase { return }
        phase = .ready
    }

    mutating func begin() throws(KafkaClientError) {
        switch phase {
        case .ready:
            phase = .inTransaction
            partitions = []
            groups = []
        case .uninitialized: throw .invalidArgument("call initTransactions() before beginTransaction()")
        case .inTransaction, .abortable: throw .invalidArgument("a transaction is already open")
        case .fatal(let error): throw error
        }
    }

    /// Checks that a record may be sent now; returns whether its partition must first be added.
    func checkSend(to partition: TopicPartition) throws(KafkaClientError) -> Bool {
        switch phase {
        case .inTransaction: return !partitions.contains(partition)
        case .abortable(let error): throw error
        case .fatal(let error): throw error
        case .uninitialized, .ready: throw .invalidArgument("a transactional producer sends only inside a transaction")
        }
    }

    mutating func added(_ partition: TopicPartition) {
        partitions.insert(partition)
    }

    func checkSendOffsets(group: String) throws(KafkaClientError) -> Bool {
        _ = try checkSend(to: TopicPartition("", -1))
        return !groups.contains(group)
    }

    mutating func addedGroup(_ group: String) {
        groups.insert(group)
    }

    /// Whether the open transaction may be committed (every record was delivered).
    func checkCommit() throws(KafkaClientError) {
        switch phase {
        case .inTransaction: return
        case .abortable(let error): throw .invalidArgument("the transaction must be aborted: \(error)")
        case .fatal(let error): throw error
        case .uninitialized, .ready: throw .invalidArgument("no transaction is open")
        }
    }

    func checkAbort() throws(KafkaClientError) {
        switch phase {
        case .inTransaction, .abortable: return
        case .fatal(let error): throw error
        case .uninitialized, .ready: throw .invalidArgument("no transaction is open")
        }
    }

    /// The transaction ended (committed or aborted): the next may begin.
    mutating func ended() {
        if case .fatal = phase { return }
        phase = .ready
        partitions = []
        groups = []
    }

    /// A record of the open transaction could not be delivered, or a request failed: fencing errors
    /// end the producer, others only the transaction.
    mutating func failed(_ error: KafkaClientError) {
        if case .fatal = phase { return }
        if Self.isFatal(error) {
            phase = .fatal(error)
        } else if case .inTransaction = phase {
            phase = .abortable(error)
        }
    }

    static func isFatal(_ error: KafkaClientError) -> Bool {
        guard let code = error.errorCode else { return false }
        return [.producerFenced, .invalidProducerEpoch, .transactionalIDAuthorizationFailed, .invalidProducerIDMapping]
            .contains(code)
    }
}
