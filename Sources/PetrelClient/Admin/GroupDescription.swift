import PetrelProtocol

/// A consumer group as `KafkaAdmin.describeGroup` reports it.
public struct GroupDescription: Sendable, Hashable {
    public struct Member: Sendable, Hashable {
        public var memberID: String
        public var instanceID: String?
        public var clientID: String
        public var host: String
        /// The partitions the member holds: assigned by the group's leader (classic protocol), or by the
        /// broker and acknowledged by the member (consumer protocol).
        public var assignment: [TopicPartition]
        /// Consumer protocol only: the member's epoch.
        public var memberEpoch: Int32? = nil
        /// Consumer protocol only: what the member is being moved to (equal to `assignment` once settled).
        public var targetAssignment: [TopicPartition]? = nil
    }

    public var groupID: String
    /// Kafka's state name: Empty, PreparingRebalance, CompletingRebalance, Stable or Dead (classic);
    /// Empty, Assigning, Reconciling or Stable (consumer protocol).
    public var state: String
    public var protocolType: String
    /// The assignment strategy chosen (e.g. "range"), or the server assignor of a consumer-protocol group.
    public var protocolName: String
    public var members: [Member]
    /// The group protocol: "classic" (JoinGroup/SyncGroup) or "consumer" (KIP-848).
    public var groupProtocol: String = "classic"
    /// Consumer protocol only: the group epoch and the epoch of its target assignment.
    public var groupEpoch: Int32? = nil
    public var assignmentEpoch: Int32? = nil
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
