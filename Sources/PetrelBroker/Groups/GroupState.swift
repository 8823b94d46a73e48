/// The states of a classic consumer group, named as Kafka names them (DescribeGroups, ListGroups).
public enum GroupState: String, Sendable, Hashable, CaseIterable {
    /// No members; committed offsets may exist.
    case empty = "Empty"
    /// Collecting JoinGroup requests for a new generation.
    case preparingRebalance = "PreparingRebalance"
    /// Generation chosen; waiting for the leader's assignment in SyncGroup.
    case completingRebalance = "CompletingRebalance"
    case stable = "Stable"
    /// Being removed.
    case dead = "Dead"
}

/// Coordinator settings, Kafka's group.* broker configs.
public struct GroupCoordinatorConfig: Sendable, Hashable {
    /// group.initial.rebalance.delay.ms: how long a group leaving Empty waits for more members.
    public var initialRebalanceDelayMs: Int64 = 3000
    public var minSessionTimeoutMs: Int32 = 6000
    public var maxSessionTimeoutMs: Int32 = 1_800_000
    /// group.max.size; 0 means no limit.
    public var maxGroupSize: Int = 0
    /// group.consumer.session.timeout.ms: a consumer-protocol member silent this long is removed.
    public var consumerSessionTimeoutMs: Int64 = 45_000
    /// group.consumer.heartbeat.interval.ms: how often consumer-protocol members heartbeat.
    public var consumerHeartbeatIntervalMs: Int32 = 5_000
    /// group.consumer.assignors: the server assignors members may ask for; the first is the default.
    var consumerAssignors: [ServerAssignor] = [.uniform, .range]
    public var consumerAssignorNames: [String] { consumerAssignors.map(\.rawValue) }

    /// The consumer protocol's settings, as its groups take them.
    var consumerGroup: ConsumerGroup.Config {
        var config = ConsumerGroup.Config()
        config.sessionTimeoutMs = consumerSessionTimeoutMs
        config.heartbeatIntervalMs = consumerHeartbeatIntervalMs
        config.assignors = consumerAssignors
        if maxGroupSize > 0 { config.maxSize = maxGroupSize }
        return config
    }

    public init() {}
}

/// A request parked at the coordinator, answered later (when the join phase or the sync completes).
typealias WaiterID = UInt64
