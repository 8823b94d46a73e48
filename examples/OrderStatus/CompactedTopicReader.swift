import PetrelClient
import PetrelProtocol

/// Reads a topic from its first record up to the end offsets it had when the read began: how a service
/// restores its state from a compacted topic at start-up. Each partition is read without a group (nothing
/// to join, nothing to commit), and is done once the consumer's position reaches its end offset, so
/// offsets compaction removed, at the end of a partition too, hold nothing up.
struct CompactedTopicReader: Sendable {
    var bootstrap: [BrokerAddress]
    var topic: String
    var clientID: String

    /// Hands every record below the end offsets to `body`, in offset order within each partition, and
    /// returns how many there were.
    func readToEnd(_ body: (ConsumerRecord) -> Void) async throws -> Int {
        let (starts, ends) = try await offsets()
        let unread = ends.filter { partition, end in end > starts[partition] ?? end }
        guard !unread.isEmpty else { return 0 }
        var configuration = KafkaConsumerConfiguration(
            bootstrap: bootstrap,
            source: .partitions(unread.mapValues { _ in .beginning })
        )
        configuration.clientID = clientID
        configuration.fetchMaxWait = .milliseconds(100)
        return try await KafkaConsumer.withConsumer(configuration) { consumer in
            var remaining = unread
            var read = 0
            while !remaining.isEmpty {
                let record = try await consumer.nextRecord(timeout: .milliseconds(200))
                if let record, let end = remaining[record.topicPartition], record.offset < end {
                    body(record)
                    read += 1
                    // Most partitions end with a record; only then, or when nothing comes, look further.
                    if record.offset < end - 1 { continue }
                }
                for (partition, end) in remaining where (consumer.position(of: partition) ?? -1) >= end {
                    remaining[partition] = nil
                    consumer.pause([partition])
                }
            }
            return read
        }
    }

    /// The first offset and the end offset (high watermark) of each partition of the topic.
    private func offsets() async throws -> (starts: [TopicPartition: Int64], ends: [TopicPartition: Int64]) {
        let admin = KafkaAdmin(bootstrap: bootstrap, clientID: clientID)
        do {
            let partitionCount = try await admin.describeTopic(topic).partitionCount
            let partitions = (0..<partitionCount).map { TopicPartition(topic, Int32($0)) }
            let offsets = (try await admin.startOffsets(partitions), try await admin.endOffsets(partitions))
            await admin.close()
            return offsets
        } catch {
            await admin.close()
            throw error
        }
    }
}
