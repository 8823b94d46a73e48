import Metrics

/// The storage engine's own measurements, reported through swift-metrics to whichever factory the
/// caller hands in (the broker's Prometheus registry, or nothing).
public struct StorageMetrics: Sendable {
    /// How long each fsync round takes (one round may make many appends durable).
    let flushDuration: Metrics.Timer
    /// Times a partition's log start moved forward, by what moved it.
    let logStartMovedByRetention: Counter
    let logStartMovedByDeleteRecords: Counter
    /// The segment file cache: lookups that found the file open, that opened it, and files closed to
    /// make room; and how many are open.
    let fileCacheHits: Counter
    let fileCacheMisses: Counter
    let fileCacheEvictions: Counter
    let openFiles: Gauge

    public init(factory: any MetricsFactory) {
        self.flushDuration = Metrics.Timer(label: "petrel_flush_duration_seconds", factory: factory)
        let moves = "petrel_log_start_moves_total"
        self.logStartMovedByRetention = Counter(label: moves, dimensions: [("cause", "retention")], factory: factory)
        self.logStartMovedByDeleteRecords = Counter(
            label: moves,
            dimensions: [("cause", "delete_records")],
            factory: factory
        )
        self.fileCacheHits = Counter(label: "petrel_file_cache_hits_total", factory: factory)
        self.fileCacheMisses = Counter(label: "petrel_file_cache_misses_total", factory: factory)
        self.fileCacheEvictions = Counter(label: "petrel_file_cache_evictions_total", factory: factory)
        self.openFiles = Gauge(label: "petrel_file_cache_open_files", factory: factory)
    }

    /// Measurements that go nowhere: for tools and tests that do not export metrics.
    public static let disabled = StorageMetrics(factory: NOOPMetricsHandler.instance)
}
