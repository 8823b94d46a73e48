import Metrics

/// The log cleaner's measurements (the dirty ratio of each partition is a gauge the broker samples).
public struct CleanerMetrics: Sendable {
    /// Cleanings that compacted a partition.
    let runs: Counter
    /// Cleanings that failed; the partition is left alone for a while and tried again.
    let failures: Counter
    /// Bytes of log read and written by cleanings; what they freed is the difference.
    let bytesRead: Counter
    let bytesWritten: Counter
    let bytesReclaimed: Counter
    /// Records removed (older values, expired tombstones, keyless records).
    let recordsRemoved: Counter
    /// How long each cleaning of a partition took.
    let duration: Metrics.Timer
    /// When the last cleaning ended, in seconds since the epoch.
    let lastCleanTime: Gauge

    public init(factory: any MetricsFactory) {
        runs = Counter(label: "petrel_log_cleaner_runs_total", factory: factory)
        failures = Counter(label: "petrel_log_cleaner_failures_total", factory: factory)
        bytesRead = Counter(label: "petrel_log_cleaner_read_bytes_total", factory: factory)
        bytesWritten = Counter(label: "petrel_log_cleaner_written_bytes_total", factory: factory)
        bytesReclaimed = Counter(label: "petrel_log_cleaner_reclaimed_bytes_total", factory: factory)
        recordsRemoved = Counter(label: "petrel_log_cleaner_removed_records_total", factory: factory)
        duration = Metrics.Timer(label: "petrel_log_cleaner_duration_seconds", factory: factory)
        lastCleanTime = Gauge(label: "petrel_log_cleaner_last_clean_time_seconds", factory: factory)
    }

    public static let disabled = CleanerMetrics(factory: NOOPMetricsHandler.instance)

    func record(_ result: CleaningResult, duration elapsed: Duration, endedAtMs: Int64) {
        runs.increment()
        bytesRead.increment(by: Int64(result.bytesRead))
        bytesWritten.increment(by: Int64(result.bytesWritten))
        bytesReclaimed.increment(by: Int64(max(0, result.bytesRead - result.bytesWritten)))
        recordsRemoved.increment(by: Int64(result.recordsRemoved))
        duration.record(duration: elapsed)
        lastCleanTime.record(Double(endedAtMs) / 1000)
    }
}
