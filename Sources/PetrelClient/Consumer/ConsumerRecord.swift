import NIOCore
import PetrelProtocol

/// A record as the consumer hands it out.
public struct ConsumerRecord: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since the epoch.
    public var timestamp: Int64
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [RecordHeader]

    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
    public var keyString: String? { key.map { String(buffer: $0) } }
    public var valueString: String? { value.map { String(buffer: $0) } }
}

/// What happened to the consumer's share of a group.
public enum KafkaConsumerEvent: Sendable, Hashable {
    /// The partitions this member reads from now on (generation `generation`). With the consumer group
    /// protocol, only the partitions added, and `generation` is the member epoch.
    case assigned([TopicPartition], generation: Int32)
    /// The partitions taken away in a rebalance (their consumed offsets were committed first when
    /// auto-commit is on). With the consumer group protocol, only those that moved; also the partitions
    /// of a member the group fenced, which are dropped without a commit.
    case revoked([TopicPartition])
}
