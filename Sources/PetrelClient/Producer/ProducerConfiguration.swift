import PetrelProtocol

/// How a `KafkaProducer` behaves. Every setting has the default of Kafka's Java client unless noted.
public struct KafkaProducerConfiguration: Sendable {
    public enum Acks: Int16, Sendable {
        /// No answer is awaited: fastest, nothing known of the outcome.
        case none = 0
        /// The leader has appended the record.
        case leader = 1
        /// Every in-sync replica has it (on one broker, the same as leader).
        case all = -1
    }

    public var bootstrap: [BrokerAddress]
    public var clientID: String = "petrel-producer"
    /// TLS and SASL for secured listeners (Kafka's security.protocol and sasl.* settings).
    public var security: KafkaClientSecurity = .plaintext
    public var acks: Acks = .all
    /// Broker-side deduplication of retries (KIP-98): on by default, as in Kafka 3.0+; needs acks=all.
    public var idempotence: Bool = true
    public var compression: CompressionCodec = .none
    /// How long a batch waits for more records before it is sent (Kafka's linger.ms).
    public var linger: Duration = .milliseconds(5)
    /// A batch is sent once its records reach this many bytes.
    public var batchBytes: Int = 16 * 1024
    /// How long a record may take from send to acknowledgement, retries included (Kafka's
    /// delivery.timeout.ms).
    public var deliveryTimeout: Duration = .seconds(120)
    /// The first retry backoff (Kafka's retry.backoff.ms); it doubles up to `maxRetryBackoff`
    /// (retry.backoff.max.ms).
    public var retryBackoff: Duration = .milliseconds(100)
    public var maxRetryBackoff: Duration = .seconds(1)
    /// How long to wait for a broker's answer (Kafka's request.timeout.ms).
    public var requestTimeout: Duration = .seconds(30)
    /// How long `send` may wait for topic metadata (a broker restarting, a topic being created) before
    /// it fails (Kafka's max.block.ms).
    public var maxBlock: Duration = .seconds(60)
    /// Called when `send` starts waiting for the cluster (no broker reachable yet, a topic without a
    /// leader yet), once per wait, with the first failure; the wait goes on for up to `maxBlock`. For
    /// telling a person what is happening: the petrel CLI prints it at once.
    public var onWaitingForCluster: (@Sendable (KafkaClientError) -> Void)?
    /// Create topics that do not exist yet through Metadata (if the broker allows it).
    public var autoCreateTopics: Bool = true
    /// Records (bytes of keys and values) that may wait unsent before `send` waits for room.
    public var bufferBytes: Int = 32 * 1024 * 1024
    /// Makes the producer transactional (Kafka's transactional.id): records are sent inside
    /// transactions (`withTransaction`, or `beginTransaction` / `commitTransaction`) that commit or
    /// abort atomically, with consumer offsets if `sendOffsets` adds them. Needs idempotence and
    /// acks=all. A second producer with the same id fences this one.
    public var transactionalID: String?
    /// How long a transaction may stay open before the broker aborts it (transaction.timeout.ms).
    public var transactionTimeout: Duration = .seconds(60)

    public init(bootstrap: [BrokerAddress]) {
        self.bootstrap = bootstrap
    }
}
