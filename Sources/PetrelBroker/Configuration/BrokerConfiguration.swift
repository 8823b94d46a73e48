import PetrelStorage

/// Everything a broker is started with. Every setting has a default, so `BrokerConfiguration()` is a
/// working single broker on 127.0.0.1:9092 storing under ./petrel-data.
public struct BrokerConfiguration: Sendable {
    /// Where to listen. Port 0 picks a free port (tests).
    public var host: String = "127.0.0.1"
    public var port: Int = 9092
    /// The address clients are told to connect to (Metadata, FindCoordinator). Defaults to the bound
    /// address, with 0.0.0.0 / :: replaced by 127.0.0.1, since clients cannot connect to those.
    public var advertisedHost: String?
    public var advertisedPort: Int?
    public var dataDirectory: String = "./petrel-data"
    public var nodeID: Int32 = 1
    /// Create unknown topics named in Metadata requests (Kafka's auto.create.topics.enable).
    public var autoCreateTopics: Bool = true
    /// Partitions of auto-created topics and of CreateTopics with -1 (Kafka's num.partitions).
    public var defaultPartitions: Int = 1
    /// Partitions of `__consumer_offsets` (Kafka's offsets.topic.num.partitions, 50 there): a group's
    /// records go to one of them by its id's hash. One broker gains nothing from Kafka's 50, which would
    /// only cost start-up time and files, so 16. Read when the topic is created; it keeps its count.
    public var offsetsTopicPartitions: Int = 16
    /// The largest request frame accepted; a larger length prefix closes the connection before anything
    /// is allocated (Kafka's socket.request.max.bytes).
    public var maxRequestBytes: Int = 100 * 1024 * 1024
    /// Open client connections at most; one more is closed as it is accepted (Kafka's
    /// max.connections). 0: sized from the open-file limit at start (`DescriptorBudget`).
    public var maxConnections: Int = 0
    /// The most record bytes one fetch response carries, whatever the client asks for (Kafka's
    /// fetch.max.bytes); the first batch goes out whole even if larger, so consumers always progress.
    public var fetchMaxBytes: Int = 57_671_680
    /// Requests read from one connection and not yet answered before the broker stops reading that
    /// socket until it catches up, so a client that pipelines without limit waits in its own buffers
    /// rather than the broker's memory (Kafka's queued.max.requests, per connection). The check runs
    /// between socket reads: frames already in the bytes of one read cycle (NIO reads at most four
    /// buffers of up to 64 KiB per wake-up) are still taken, so the bound is this many requests plus
    /// 256 KiB.
    public var maxInFlightRequestsPerConnection: Int = 100
    /// A connection that sends nothing for this long, and has no request being served, is closed
    /// (Kafka's connections.max.idle.ms); 0 never closes one.
    public var connectionsMaxIdleMs: Int64 = 600_000
    /// TLS and SASL on the client listener; plaintext without authentication by default.
    public var security: ListenerSecurity = ListenerSecurity()
    /// Defaults for every partition log; topics override them with configs.
    public var log: LogConfig = LogConfig()
    /// Segment and index files open at once (the `FileCache`'s capacity); 0: half the open-file limit,
    /// at start (`DescriptorBudget`).
    public var maxOpenSegmentFiles: Int = 0
    /// Descriptors fetch responses may hold at once to send records with sendfile; a response that
    /// finds them taken reads its records into memory instead. 0: half the descriptor reserve, at
    /// start (`DescriptorBudget`). Not a setting of its own: tests lower it.
    public var maxSendfileDescriptors: Int = 0
    /// Consumer-group coordinator settings (initial rebalance delay, session timeout bounds).
    public var groups: GroupCoordinatorConfig = GroupCoordinatorConfig()
    /// How often retention is enforced (Kafka's log.retention.check.interval.ms).
    public var retentionCheckIntervalMs: Int64 = 300_000
    /// The longest transaction timeout a producer may ask for (Kafka's transaction.max.timeout.ms).
    public var transactionMaxTimeoutMs: Int32 = 900_000
    /// How often transactions past their timeout are looked for and aborted (Kafka's
    /// transaction.abort.timed.out.transaction.cleanup.interval.ms).
    public var transactionTimeoutCheckIntervalMs: Int64 = 10_000
    /// Background compaction of topics with cleanup.policy=compact.
    public var logCleaner: LogCleanerConfiguration = LogCleanerConfiguration()
    /// Event-loop threads; 0 means one per core.
    public var eventLoopThreads: Int = 0
    /// Where to serve `/metrics`, `/health` and `/ready` over HTTP; nil serves nothing. Metrics are
    /// recorded either way, in `Broker.metricsRegistry`.
    public var metricsEndpoint: MetricsEndpointConfiguration?
    /// How long a graceful shutdown lets in-flight requests finish before it cancels them.
    public var shutdownTimeoutMs: Int64 = 10_000

    public init() {}
}

/// The operations HTTP listener.
public struct MetricsEndpointConfiguration: Sendable, Hashable {
    public var host: String
    /// Port 0 picks a free port (tests).
    public var port: Int
    /// If false, a port already in use is logged as a warning and the broker runs without the
    /// endpoint (the command line's default endpoint); if true, the broker fails to start.
    public var required: Bool

    public init(host: String = "127.0.0.1", port: Int = 9464, required: Bool = true) {
        self.host = host
        self.port = port
        self.required = required
    }
}
