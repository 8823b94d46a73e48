import PetrelProtocol

/// A partition assignment strategy, computed by the group leader for every member (the broker never
/// looks inside). The names are the ones every Kafka client uses, so mixed groups agree.
public enum AssignmentStrategy: String, Sendable, Hashable, CaseIterable {
    case range
    case roundRobin = "roundrobin"

    /// Assigns the partitions of the topics each member subscribed to.
    /// - Parameters:
    ///   - subscriptions: member id → subscribed topics.
    ///   - partitionCounts: topic → number of partitions.
    /// - Returns: member id → assigned partitions.
    public func assign(subscriptions: [String: [String]], partitionCounts: [String: Int]) -> [String: [TopicPartition]]
    {
        var result = Dictionary(uniqueKeysWithValues: subscriptions.keys.map { ($0, [TopicPartition]()) })
        switch self {
        case .range:
            // Per topic: the partitions in order, split into contiguous ranges over the members that
            // subscribe to it (sorted by member id); the first ones get one extra.
            let topics = Set(subscriptions.values.flatMap { $0 }).sorted()
            for topic in topics {
                let count = partitionCounts[topic] ?? 0
                let members = subscriptions.filter { $0.value.contains(topic) }.keys.sorted()
                guard !members.isEmpty, count > 0 else { continue }
                let share = count / members.count
                let extra = count % members.count
                var next = 0
                for (index, member) in members.enumerated() {
                    let size = share + (index < extra ? 1 : 0)
                    result[member]! += (next..<next + size).map { TopicPartition(topic, Int32($0)) }
                    next += size
                }
            }
        case .roundRobin:
            // Every subscribed partition, sorted by topic and partition, dealt in turn to the members
            // (sorted by id), skipping members not subscribed to that topic.
            let members = subscriptions.keys.sorted()
            let partitions = Set(subscriptions.values.flatMap { $0 }).sorted().flatMap { topic in
                (0..<(partitionCounts[topic] ?? 0)).map { TopicPartition(topic, Int32($0)) }
            }
            var turn = 0
            for partition in partitions {
                for _ in 0..<members.count {
                    let member = members[turn % members.count]
                    turn += 1
                    if subscriptions[member]!.contains(partition.topic) {
                        result[member]!.append(partition)
                        break
                    }
                }
            }
        }
        return result
    }
}
