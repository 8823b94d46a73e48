import PetrelProtocol

/// What the client knows of a topic's partitions: how many, and which broker leads each.
public struct TopicLayout: Sendable, Hashable {
    public var name: String
    public var id: KafkaUUID
    /// Leader node id by partition; -1 while a partition has no leader.
    public var leaders: [Int32]

    public var partitionCount: Int { leaders.count }
}
