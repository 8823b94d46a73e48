import Metrics

/// The transaction coordinator's measurements (open transactions and each partition's distance from
/// its last stable offset are state gauges read at each scrape).
struct TransactionMetrics: Sendable {
    let committed: Counter
    /// Aborts the producer asked for.
    let aborted: Counter
    /// Aborts the coordinator made: a transaction past its timeout.
    let timedOut: Counter
    /// Aborts the coordinator made: a new producer for the transactional id fenced the old one.
    let fenced: Counter

    init(factory: any MetricsFactory) {
        let ended = "petrel_transactions_ended_total"
        committed = Counter(label: ended, dimensions: [("result", "commit")], factory: factory)
        aborted = Counter(label: ended, dimensions: [("result", "abort")], factory: factory)
        timedOut = Counter(label: ended, dimensions: [("result", "timeout")], factory: factory)
        fenced = Counter(label: ended, dimensions: [("result", "fenced")], factory: factory)
    }

    static let disabled = TransactionMetrics(factory: NOOPMetricsHandler.instance)
}
