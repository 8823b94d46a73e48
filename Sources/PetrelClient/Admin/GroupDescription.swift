import PetrelProtocol

/// A consumer group as `KafkaAdmin.describeGroup` reports it.
public struct GroupDescription: Sendable, Hashable {
    public struct Member: Sendable, Hashable {
        public var memberID: String
        public var instanceID: String?
        public var clientID: String
        public var host: String
        /// The partitions the group's leader assigned to this member (decoded from the consumer protocol).
        public var assignment: [TopicPartition]
    }

    public var groupID: String
    /// Kafka's state name: Empty, PreparingRebalance, CompletingRebalance, Stable or Dead.
    public var state: String
    public var protocolType: String
    /// The assignment strategy chosen (e.g. "range").
    public var protocolName: String
    public var members: [Member]
}

/// A group's committed offset and lag for one partition.
public struct PartitionLag: Sendable, Hashable {
    public var partition: TopicPartition
    /// Nil when the group has never committed for this partition.
    public var committed: Int64?
    public var logEndOffset: Int64
    /// How far the committed offset trails the log end; nil without a commit.
    public var lag: Int64? { committed.map { max(0, logEndOffset - $0) } }
}

/// A group as ListGroups reports it.
public struct GroupListing: Sendable, Hashable {
    public var groupID: String
    public var protocolType: String
    public var state: String
}
