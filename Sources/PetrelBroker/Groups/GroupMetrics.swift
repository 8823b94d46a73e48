import Metrics

/// The group coordinator's counters, per group and protocol ("classic" or "consumer"). Members and
/// epochs are state gauges read from the coordinator at each scrape.
struct GroupMetrics: Sendable {
    private let factory: any MetricsFactory

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// A classic group completed a generation, or a consumer-protocol group computed a new target
    /// assignment.
    func rebalanced(group: String, protocol name: String) {
        counter("petrel_consumer_group_rebalances_total", group: group, protocol: name).increment()
    }

    /// Members were handed a changed assignment: every member of a completed classic generation, or one
    /// consumer-protocol member whose heartbeat carried a new assignment.
    func assignmentsChanged(group: String, protocol name: String, by count: Int = 1) {
        guard count > 0 else { return }
        counter("petrel_consumer_group_assignment_changes_total", group: group, protocol: name).increment(by: count)
    }

    private func counter(_ label: String, group: String, protocol name: String) -> Counter {
        Counter(label: label, dimensions: [("group", group), ("protocol", name)], factory: factory)
    }

    static let disabled = GroupMetrics(factory: NOOPMetricsHandler.instance)
}
