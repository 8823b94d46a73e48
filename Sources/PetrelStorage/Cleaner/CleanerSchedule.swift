import PetrelProtocol

/// Which compacted partitions the log cleaner works on, and when (Kafka's LogCleanerManager), as a value
/// type: `LogCleaner` holds it behind one lock, tells it what the logs look like and what time it is,
/// and carries out the actions it returns. Time is a parameter, so tests drive it with a fake clock.
struct CleanerSchedule: Sendable {
    enum Action: Hashable, Sendable {
        /// Clean this partition on a cleaner thread, then report with `finished`.
        case clean(TopicPartition)
        /// Nothing to start: look again at this time (ms).
        case sleep(untilMs: Int64)
    }

    enum Outcome: Hashable, Sendable {
        case cleaned
        /// The log had nothing to clean after all, or changed under the cleaner.
        case nothingDone
        case failed
    }

    /// A compacted partition and what the cleaner would find in it now.
    struct Candidate: Hashable, Sendable {
        var partition: TopicPartition
        var section: CleanableSection
    }

    /// Cleanings that may run at once (Kafka's log.cleaner.threads).
    let threads: Int
    /// How long the cleaner sleeps when nothing needs cleaning (log.cleaner.backoff.ms).
    let backoffMs: Int64
    /// How long a partition whose cleaning failed is left alone before it is tried again.
    let failureBackoffMs: Int64

    private(set) var inProgress: Set<TopicPartition> = []
    /// Partitions whose last cleaning failed, until when they are skipped.
    private(set) var failedUntil: [TopicPartition: Int64] = [:]

    init(threads: Int, backoffMs: Int64, failureBackoffMs: Int64? = nil) {
        self.threads = max(1, threads)
        self.backoffMs = backoffMs
        self.failureBackoffMs = failureBackoffMs ?? max(backoffMs, 60_000)
    }

    /// The cleanings to start now: the partitions that need it, overdue ones (max.compaction.lag.ms)
    /// first and then the dirtiest, as many as there are free threads. If none starts and none runs, a
    /// sleep of `backoffMs`.
    mutating func next(candidates: [Candidate], now: Int64) -> [Action] {
        failedUntil = failedUntil.filter { $0.value > now }
        let free = threads - inProgress.count
        let picks =
            free <= 0
            ? []
            : candidates.filter {
                $0.section.needsCleaning && !inProgress.contains($0.partition) && failedUntil[$0.partition] == nil
            }
            .sorted { a, b in
                if a.section.isOverdue != b.section.isOverdue { return a.section.isOverdue }
                if a.section.dirtyRatio != b.section.dirtyRatio { return a.section.dirtyRatio > b.section.dirtyRatio }
                return a.partition < b.partition
            }
            .prefix(free)
        for pick in picks { inProgress.insert(pick.partition) }
        if picks.isEmpty && inProgress.isEmpty { return [.sleep(untilMs: now + backoffMs)] }
        return picks.map { .clean($0.partition) }
    }

    /// A cleaning ended. A failure keeps the partition out for `failureBackoffMs`, so one broken log does
    /// not keep the cleaner from the others.
    mutating func finished(_ partition: TopicPartition, outcome: Outcome, now: Int64) {
        inProgress.remove(partition)
        if outcome == .failed { failedUntil[partition] = now + failureBackoffMs }
    }
}
