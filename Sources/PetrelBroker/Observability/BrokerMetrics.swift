import Metrics
import PetrelProtocol

/// What the broker measures about its traffic, reported through swift-metrics to the factory it was
/// given. Handles are made once, up front (per API ones by the router), so recording on the request
/// path is an atomic add or a histogram bucket update: no lookups by name, no allocation.
final class BrokerMetrics: Sendable {
    let factory: any MetricsFactory
    let receivedBytes: Counter
    let sentBytes: Counter
    let producedRecords: Counter
    let fetchedRecords: Counter
    let connections: Meter
    /// Connections closed on accept because max-connections were open.
    let rejectedConnections: Counter
    /// Connections closed after the idle timeout.
    let idleConnectionsClosed: Counter
    /// How long fetches that found too little data waited for more (long polls).
    let fetchWait: Metrics.Timer
    /// Fetch responses on plaintext connections whose records were read into memory because the
    /// sendfile allowance was spent (`SendfileAllowance`).
    let fetchesReadIntoMemory: Counter
    /// Topic config changes applied (AlterConfigs, IncrementalAlterConfigs; validate-only ones not).
    let configChanges: Counter

    init(factory: any MetricsFactory) {
        self.factory = factory
        receivedBytes = Counter(label: "petrel_received_bytes_total", factory: factory)
        sentBytes = Counter(label: "petrel_sent_bytes_total", factory: factory)
        producedRecords = Counter(label: "petrel_produced_records_total", factory: factory)
        fetchedRecords = Counter(label: "petrel_fetched_records_total", factory: factory)
        connections = Meter(label: "petrel_connections", factory: factory)
        rejectedConnections = Counter(label: "petrel_connections_rejected_total", factory: factory)
        idleConnectionsClosed = Counter(label: "petrel_connections_idle_closed_total", factory: factory)
        fetchWait = Metrics.Timer(label: "petrel_fetch_wait_duration_seconds", factory: factory)
        configChanges = Counter(label: "petrel_config_changes_total", factory: factory)
        fetchesReadIntoMemory = Counter(label: "petrel_fetch_read_into_memory_total", factory: factory)
    }

    /// Counts one SASL authentication by its result. Rare, so the labelled handle is made on use.
    func recordAuthentication(succeeded: Bool) {
        Counter(
            label: "petrel_authentications_total",
            dimensions: [("result", succeeded ? "success" : "failure")],
            factory: factory
        )
        .increment()
    }
}

/// Rate, errors and duration of one API's requests (the RED method), labelled `api="Produce"` etc.
final class APIMetrics: Sendable {
    let requests: Counter
    let duration: Metrics.Timer
    private let api: String
    private let factory: any MetricsFactory

    init(api key: APIKey, factory: any MetricsFactory) {
        api = key.name ?? "\(key.rawValue)"
        self.factory = factory
        requests = Counter(label: "petrel_requests_total", dimensions: [("api", api)], factory: factory)
        duration = Metrics.Timer(label: "petrel_request_duration_seconds", dimensions: [("api", api)], factory: factory)
    }

    /// Counts one request that failed: its response carried `code` (the first non-zero one), or it
    /// could not be answered and closed its connection (`code` nil). Failures are rare, so the labelled
    /// handle is looked up here rather than kept for all ~100 codes.
    func recordError(_ code: ErrorCode?) {
        let error = code.map(\.name) ?? "CONNECTION_CLOSED"
        Counter(label: "petrel_request_errors_total", dimensions: [("api", api), ("error", error)], factory: factory)
            .increment()
    }
}
