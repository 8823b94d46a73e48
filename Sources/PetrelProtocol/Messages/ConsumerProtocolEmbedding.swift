import NIOCore

extension Sequence where Element == TopicPartition {
    /// The partitions grouped by topic, topics and partition numbers in order: the shape every request
    /// and response that lists partitions uses.
    public func groupedByTopic() -> [(topic: String, partitions: [Int32])] {
        let byTopic = Dictionary(grouping: self, by: \.topic)
        return byTopic.keys.sorted().map { topic in (topic, byTopic[topic]!.map(\.partition).sorted()) }
    }
}

extension ConsumerProtocolAssignment {
    public init(partitions: some Sequence<PetrelProtocol.TopicPartition>) {
        self.init(
            assignedPartitions: partitions.groupedByTopic().map { .init(topic: $0.topic, partitions: $0.partitions) }
        )
    }

    /// Every assigned partition, in order.
    public var partitions: [PetrelProtocol.TopicPartition] {
        assignedPartitions.flatMap { topic in topic.partitions.map { PetrelProtocol.TopicPartition(topic.topic, $0) } }
            .sorted()
    }
}

/// The consumer protocol's subscription and assignment travel inside group requests as bytes: an int16
/// version, then the struct at that version (JoinGroup metadata, SyncGroup assignments, DescribeGroups).
public protocol ConsumerProtocolEmbedded: KafkaVersionedData {}

extension ConsumerProtocolEmbedded {
    /// The embedded form, at version 0 (what every client reads).
    public var embedded: ByteBuffer {
        var bytes = ByteBuffer()
        bytes.writeInteger(Int16(0))
        write(to: &bytes, version: 0)
        return bytes
    }

    /// Reads the embedded form (a newer version than known is read as the newest known); nil if the bytes
    /// are not this struct.
    public init?(embedded: ByteBuffer) {
        var bytes = embedded
        guard let version = try? bytes.readKafkaInteger(as: Int16.self), version >= 0,
            let value = try? Self(from: &bytes, version: min(version, Self.validVersions.upperBound))
        else { return nil }
        self = value
    }
}

extension ConsumerProtocolAssignment: ConsumerProtocolEmbedded {}
extension ConsumerProtocolSubscription: ConsumerProtocolEmbedded {}
