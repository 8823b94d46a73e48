import Metrics
import PetrelProtocol
import PetrelStorage
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Gauges that describe state rather than traffic: each partition's log start offset, log end offset,
/// size, distance to its last stable offset and (compacted ones) dirty ratio, the open transactions, and
/// each consumer group's members, committed offsets and lag. They are read from the logs and the
/// coordinators on every `sample()` (on a timer and before each scrape), so a series is never
/// older than one sampling interval. Series of deleted topics and groups are removed.
final class StateMetricsSampler: Sendable {
    /// One time series: a metric name and its label values, in a fixed label order per name.
    private struct Series: Hashable {
        var name: String
        var labels: [String]
    }

    private static let labelNames: [String: [String]] = [
        "petrel_log_start_offset": ["topic", "partition"],
        "petrel_log_end_offset": ["topic", "partition"],
        "petrel_log_size_bytes": ["topic", "partition"],
        "petrel_log_cleaner_dirty_ratio": ["topic", "partition"],
        "petrel_last_stable_offset_lag": ["topic", "partition"],
        "petrel_transactions_open": [],
        "petrel_data_dir_free_bytes": [],
        "petrel_data_dir_size_bytes": [],
        "petrel_consumer_group_members": ["group"],
        "petrel_consumer_group_epoch": ["group", "protocol"],
        "petrel_consumer_group_committed_offset": ["group", "topic", "partition"],
        "petrel_consumer_group_lag": ["group", "topic", "partition"],
    ]

    private let factory: any MetricsFactory
    private let logs: LogManager
    private let groups: GroupCoordinator
    private let transactions: TransactionCoordinator
    private let gauges = Mutex<[Series: Meter]>([:])

    init(factory: any MetricsFactory, logs: LogManager, groups: GroupCoordinator, transactions: TransactionCoordinator)
    {
        self.factory = factory
        self.logs = logs
        self.groups = groups
        self.transactions = transactions
    }

    func sample() {
        var values: [Series: Double] = [:]
        let now = wallClockMillis()
        var logEnds: [TopicPartition: Int64] = [:]
        for log in logs.allPartitions {
            let labels = [log.topic, "\(log.partition)"]
            let end = log.logEndOffset
            logEnds[TopicPartition(log.topic, log.partition)] = end
            values[Series(name: "petrel_log_start_offset", labels: labels)] = Double(log.logStartOffset)
            values[Series(name: "petrel_log_end_offset", labels: labels)] = Double(end)
            values[Series(name: "petrel_log_size_bytes", labels: labels)] = Double(log.sizeInBytes)
            // Records read_committed consumers cannot see yet: an open transaction holds them back.
            values[Series(name: "petrel_last_stable_offset_lag", labels: labels)] = Double(end - log.lastStableOffset)
            if let section = log.cleanableSection(now: now) {
                values[Series(name: "petrel_log_cleaner_dirty_ratio", labels: labels)] = section.dirtyRatio
            }
        }
        // The data directory's file system: writes fail with KAFKA_STORAGE_ERROR once it is full, and
        // succeed again as soon as space is freed (no restart needed).
        var space = statvfs()
        if statvfs(logs.directory, &space) == 0 {
            let blockSize = Double(space.f_frsize)
            values[Series(name: "petrel_data_dir_free_bytes", labels: [])] = Double(space.f_bavail) * blockSize
            values[Series(name: "petrel_data_dir_size_bytes", labels: [])] = Double(space.f_blocks) * blockSize
        }
        values[Series(name: "petrel_transactions_open", labels: [])] = Double(
            transactions.allTransactions.filter { $0.state == .ongoing }.count
        )
        for (group, members) in groups.memberCounts() {
            values[Series(name: "petrel_consumer_group_members", labels: [group])] = Double(members)
        }
        for (group, protocolName, epoch) in groups.epochs() {
            values[Series(name: "petrel_consumer_group_epoch", labels: [group, protocolName])] = Double(epoch)
        }
        // Lag exists wherever an offset is committed, whether or not the group has live members:
        // a group whose workers all died is exactly the one whose lag matters.
        for (group, committed) in groups.offsets.allCommitted {
            for (partition, position) in committed {
                guard let end = logEnds[partition] else { continue }  // the topic is being deleted
                let labels = [group, partition.topic, "\(partition.partition)"]
                values[Series(name: "petrel_consumer_group_committed_offset", labels: labels)] = Double(position.offset)
                values[Series(name: "petrel_consumer_group_lag", labels: labels)] = Double(
                    max(0, end - position.offset)
                )
            }
        }
        gauges.withLock { gauges in
            for (series, gauge) in gauges where values[series] == nil {
                gauge.destroy()
                gauges[series] = nil
            }
            for (series, value) in values {
                if let gauge = gauges[series] {
                    gauge.set(value)
                } else {
                    let names = Self.labelNames[series.name] ?? []
                    let gauge = Meter(
                        label: series.name,
                        dimensions: Array(zip(names, series.labels)),
                        factory: factory
                    )
                    gauge.set(value)
                    gauges[series] = gauge
                }
            }
        }
    }

    /// Samples every `intervalMs` until cancelled.
    func run(intervalMs: Int64) async {
        while !Task.isCancelled {
            sample()
            try? await Task.sleep(for: .milliseconds(intervalMs))
        }
    }
}
