import PetrelProtocol

/// The consumer protocol's membership and the fetch state it steers, changed together under the one
/// lock: what the membership says the consumer owns is always what the fetcher fetches.
extension ConsumerStateMachine {
    /// What a commit carries: the classic member id and generation, or the consumer protocol's member id
    /// and member epoch (the broker checks either).
    var commitIdentity: (memberID: String, generation: Int32) {
        if let membership { return (membership.memberID, membership.memberEpoch) }
        return (memberID, generation)
    }

    /// Partitions taken away: their records are dropped before anything is committed, so the reader can
    /// read no further in them than the commit says.
    mutating func revokeForMembership(_ partitions: Set<TopicPartition>) -> Wakeups<Void> {
        membership?.revoked(partitions)
        return remove(partitions)
    }

    /// New partitions, from their starting positions; returns those taken (the membership may have moved
    /// on meanwhile).
    mutating func assignForMembership(
        _ starts: [TopicPartition: Int64],
        committed offsets: [TopicPartition: Int64]
    ) -> (taken: Set<TopicPartition>, wakeups: Wakeups<Void>) {
        guard let taken = membership?.assigned(Set(starts.keys)), !taken.isEmpty else { return ([], Wakeups()) }
        for partition in taken {
            if let offset = offsets[partition] { committed[partition] = offset }
        }
        return (taken, add(starts.filter { taken.contains($0.key) }))
    }

    /// A fenced member's partitions go without a commit: they may be someone else's already.
    mutating func loseForMembership() -> (lost: Set<TopicPartition>, wakeups: Wakeups<Void>) {
        let lost = Set(positions.keys).union(membership?.owned ?? [])
        membership?.lost()
        forget(lost)
        return (lost, remove(lost))
    }

    mutating func heartbeatAnswered(
        _ response: ConsumerGroupHeartbeatResponse,
        now: Int64
    ) -> (ConsumerProtocolMembership.Outcome?, Wakeups<Void>) {
        let outcome = membership?.received(response, now: now)
        return (outcome, heartbeatAnswers.resumeAll())
    }

    mutating func heartbeatFailed(now: Int64) -> Wakeups<Void> {
        membership?.heartbeatFailed(now: now)
        return heartbeatAnswers.resumeAll()
    }
}
