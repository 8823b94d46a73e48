import PetrelProtocol

/// A KIP-848 server-side assignor: from the members' subscriptions, the topics' partition counts and the
/// current target assignment, the next target assignment. Both assignors Kafka ships are sticky: a
/// partition stays with its member unless balance needs it moved.
enum ServerAssignor: String, Sendable, CaseIterable {
    /// Kafka's `uniform`: as even as the subscriptions allow, moving as few partitions as possible.
    case uniform
    /// Kafka's `range`: each topic's partitions in contiguous ranges over its subscribers, in member order,
    /// so members subscribed to co-partitioned topics get the same partition numbers of each.
    case range

    struct Member: Hashable, Sendable {
        var id: String
        var topics: Set<String>
    }

    func assign(
        members: [Member],
        partitionCounts: [String: Int32],
        current: [String: Set<TopicPartition>]
    ) -> [String: Set<TopicPartition>] {
        switch self {
        case .uniform: Self.uniform(members: members, partitionCounts: partitionCounts, current: current)
        case .range: Self.range(members: members, partitionCounts: partitionCounts, current: current)
        }
    }

    private static func uniform(
        members: [Member],
        partitionCounts: [String: Int32],
        current: [String: Set<TopicPartition>]
    ) -> [String: Set<TopicPartition>] {
        let byID = Dictionary(uniqueKeysWithValues: members.map { ($0.id, $0) })
        func eligible(_ member: String, _ partition: TopicPartition) -> Bool {
            byID[member]?.topics.contains(partition.topic) == true
                && partition.partition < (partitionCounts[partition.topic] ?? 0)
        }
        var assignment: [String: Set<TopicPartition>] = [:]
        var owned = Set<TopicPartition>()
        // Keep what each member has and may still have.
        for member in members.sorted(by: { $0.id < $1.id }) {
            let kept = (current[member.id] ?? []).filter { eligible(member.id, $0) && !owned.contains($0) }
            assignment[member.id] = kept
            owned.formUnion(kept)
        }
        // Give every free partition to the eligible member with the fewest.
        let all = partitionCounts.keys.sorted().flatMap { topic in
            (0..<(partitionCounts[topic] ?? 0)).map { TopicPartition(topic, $0) }
        }
        for partition in all where !owned.contains(partition) {
            let candidates = members.filter { $0.topics.contains(partition.topic) }
            guard
                let taker = candidates.min(by: {
                    (assignment[$0.id]?.count ?? 0, $0.id) < (assignment[$1.id]?.count ?? 0, $1.id)
                })
            else { continue }
            assignment[taker.id, default: []].insert(partition)
            owned.insert(partition)
        }
        // Even out: move one partition at a time from the fullest member to the emptiest that may take it.
        for _ in 0..<all.count {
            var moved = false
            let order = members.map(\.id).sorted {
                ((assignment[$0]?.count ?? 0), $1) > ((assignment[$1]?.count ?? 0), $0)
            }
            search: for giver in order {
                let giving = assignment[giver]?.count ?? 0
                for taker in order.reversed() where (assignment[taker]?.count ?? 0) + 1 < giving {
                    if let partition = assignment[giver]?.sorted(by: >).first(where: { eligible(taker, $0) }) {
                        assignment[giver]?.remove(partition)
                        assignment[taker, default: []].insert(partition)
                        moved = true
                        break search
                    }
                }
            }
            if !moved { break }
        }
        return assignment
    }

    private static func range(
        members: [Member],
        partitionCounts: [String: Int32],
        current: [String: Set<TopicPartition>]
    ) -> [String: Set<TopicPartition>] {
        var assignment = Dictionary(uniqueKeysWithValues: members.map { ($0.id, Set<TopicPartition>()) })
        for topic in partitionCounts.keys.sorted() {
            let subscribers = members.filter { $0.topics.contains(topic) }.map(\.id).sorted()
            guard !subscribers.isEmpty, let count = partitionCounts[topic] else { continue }
            let share = Int(count) / subscribers.count
            let extra = Int(count) % subscribers.count
            var next: Int32 = 0
            for (index, member) in subscribers.enumerated() {
                let size = share + (index < extra ? 1 : 0)
                for partition in next..<(next + Int32(size)) {
                    assignment[member]?.insert(TopicPartition(topic, partition))
                }
                next += Int32(size)
            }
        }
        return assignment
    }
}
