import PetrelProtocol

/// How a `KafkaConsumer` reads.
public struct KafkaConsumerConfiguration: Sendable {
    /// What the consumer reads: a group's share of topics, or partitions it picks itself.
    public enum Source: Sendable, Hashable {
        /// Joins consumer group `id`; the group leader assigns the topics' partitions among members,
        /// and committed offsets say where to resume.
        case group(id: String, topics: [String])
        /// Reads the given partitions from the given starting points, without a group.
        case partitions([TopicPartition: StartOffset])
    }

    public enum StartOffset: Sendable, Hashable {
        case beginning
        case end
        case offset(Int64)
        /// The first record at or after this time (ms since the epoch), or the end if there is none.
        case timestamp(Int64)
    }

    /// Where to start a partition that has no committed offset (or whose offset is out of range).
    public enum OffsetReset: Sendable, Hashable {
        case earliest
        case latest
    }

    /// What a consumer reads of transactional records (Kafka's isolation.level).
    public enum IsolationLevel: Int8, Sendable, Hashable {
        /// Every record, aborted transactions' too, up to the log end.
        case readUncommitted = 0
        /// Only records of committed transactions (and non-transactional ones), up to the last stable
        /// offset: an open transaction holds the reader back until it ends.
        case readCommitted = 1
    }

    /// How a group member gets its partitions (Kafka's group.protocol).
    public enum GroupProtocol: String, Sendable, Hashable {
        /// JoinGroup and SyncGroup: the group leader assigns with `assignmentStrategies`, and every
        /// rebalance revokes the whole assignment first.
        case classic
        /// The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat): the broker assigns, and
        /// members give up or take only the partitions that move while reading the rest. Needs a broker
        /// that serves it (Petrel, Kafka 4.0+).
        case consumer
    }

    public var bootstrap: [BrokerAddress]
    public var source: Source
    public var clientID: String = "petrel-consumer"
    /// TLS and SASL for secured listeners (Kafka's security.protocol and sasl.* settings).
    public var security: KafkaClientSecurity = .plaintext
    public var offsetReset: OffsetReset = .latest
    public var isolationLevel: IsolationLevel = .readUncommitted
    /// Commit the offsets of records handed out every `autoCommitInterval`, at rebalances and at close
    /// (Kafka's enable.auto.commit and auto.commit.interval.ms).
    public var autoCommit: Bool = true
    public var autoCommitInterval: Duration = .seconds(5)
    /// How long the group waits for a heartbeat before it drops the member (Kafka's session.timeout.ms).
    /// With the consumer protocol the broker sets it (group.consumer.session.timeout.ms).
    public var sessionTimeout: Duration = .seconds(45)
    /// Kafka's heartbeat.interval.ms. With the consumer protocol the broker sets it, in every answer.
    public var heartbeatInterval: Duration = .seconds(3)
    /// How long the group waits for members to rejoin in a rebalance, or with the consumer protocol to
    /// give up revoked partitions (Kafka's max.poll.interval.ms).
    public var rebalanceTimeout: Duration = .seconds(300)
    /// Kafka's group.protocol: `.classic` (the default) or `.consumer` (KIP-848).
    public var groupProtocol: GroupProtocol = .classic
    /// With the consumer protocol, the broker's assignor to use: "uniform" or "range" (Kafka's
    /// group.remote.assignor); nil lets the broker choose.
    public var groupRemoteAssignor: String?
    /// With the classic protocol, in order of preference; the group picks the first every member supports.
    public var assignmentStrategies: [AssignmentStrategy] = [.range, .roundRobin]
    /// Static membership (KIP-345): a restart within the session timeout keeps the assignment.
    public var groupInstanceID: String?
    /// How long a fetch waits at the broker for `fetchMinBytes` (Kafka's fetch.max.wait.ms).
    public var fetchMaxWait: Duration = .milliseconds(500)
    public var fetchMinBytes: Int32 = 1
    public var fetchMaxBytes: Int32 = 50 * 1024 * 1024
    public var partitionMaxBytes: Int32 = 1024 * 1024
    /// Records fetched ahead of the reader; fetching pauses while this many are waiting.
    public var bufferedRecords: Int = 10_000
    /// How long to wait for a broker's answer (Kafka's request.timeout.ms).
    public var requestTimeout: Duration = .seconds(30)
    /// The first backoff after a failure; it doubles up to 5 s (Kafka's retry.backoff.ms).
    public var retryBackoff: Duration = .milliseconds(100)
    /// Called when a group member cannot reach its group (no broker reachable, no coordinator yet), once
    /// per stretch of failures, with the first; the consumer goes on retrying, as Kafka's does. For
    /// telling a person what is happening: the petrel CLI prints it at once.
    public var onWaitingForCluster: (@Sendable (KafkaClientError) -> Void)?

    public init(bootstrap: [BrokerAddress], source: Source) {
        self.bootstrap = bootstrap
        self.source = source
    }
}
