import PetrelProtocol

/// When appended data is forced to stable storage.
public enum FlushPolicy: String, Sendable, Hashable, CaseIterable {
    /// fsync before an acks=1/-1 produce is answered; concurrent producers share one fsync (group commit).
    case always
    /// fsync every `flushIntervalMs`.
    case interval
    /// Leave it to the operating system's page cache, as Kafka does by default.
    case never
}

/// The settings of a partition log: broker defaults, overridden per topic by Kafka topic configs.
public struct LogConfig: Sendable, Hashable {
    public var segmentBytes: Int = 1 << 30
    public var segmentMs: Int64 = 7 * 24 * 3_600_000
    /// -1 keeps data forever.
    public var retentionMs: Int64 = 7 * 24 * 3_600_000
    /// -1 sets no size limit.
    public var retentionBytes: Int64 = -1
    public var indexIntervalBytes: Int = 4096
    public var flushPolicy: FlushPolicy = .never
    public var flushIntervalMs: Int64 = 1000
    /// The largest record batch accepted (Kafka's max.message.bytes).
    public var maxMessageBytes: Int = 1_048_588
    /// Replicas that must have a record before acks=all is answered (Kafka's min.insync.replicas); one
    /// broker has one, so above 1 every acks=all produce is refused with NOT_ENOUGH_REPLICAS.
    public var minInsyncReplicas: Int = 1
    /// CreateTime: records keep their producer's timestamps; LogAppendTime: the broker stamps each batch
    /// with its append time (Kafka's message.timestamp.type).
    public var timestampType: TimestampType = .createTime
    /// How far behind and ahead of the broker's clock a CreateTime timestamp may be
    /// (message.timestamp.before.max.ms and message.timestamp.after.max.ms).
    public var timestampBeforeMaxMs: Int64 = .max
    public var timestampAfterMaxMs: Int64 = .max

    // Log compaction (cleanup.policy and the cleaner's topic configs).
    /// Old segments are deleted by retention.ms and retention.bytes (`delete` in cleanup.policy).
    public var deletesByRetention = true
    /// The cleaner keeps only each key's latest record (`compact` in cleanup.policy).
    public var compacts = false
    /// How long a tombstone is kept after the cleaning that first saw it (delete.retention.ms).
    public var deleteRetentionMs: Int64 = 86_400_000
    /// Records younger than this are not cleaned (min.compaction.lag.ms).
    public var minCompactionLagMs: Int64 = 0
    /// A log holding a dirty record older than this is cleaned whatever its dirty ratio (max.compaction.lag.ms).
    public var maxCompactionLagMs: Int64 = .max
    /// The share of a log that must be dirty before it is cleaned (min.cleanable.dirty.ratio).
    public var minCleanableDirtyRatio: Double = 0.5

    /// Why a CreateTime batch's timestamps are refused at `now`, or nil. Checks the first and the
    /// largest timestamp of the batch, the two its header carries.
    public func timestampRefusal(baseTimestamp: Int64, maxTimestamp: Int64, now: Int64) -> String? {
        guard timestampType == .createTime else { return nil }
        for timestamp in [baseTimestamp, maxTimestamp] where timestamp >= 0 {
            if timestampBeforeMaxMs != .max, now - timestamp > timestampBeforeMaxMs {
                return
                    "timestamp \(timestamp) is more than message.timestamp.before.max.ms=\(timestampBeforeMaxMs) behind the broker's clock"
            }
            if timestampAfterMaxMs != .max, timestamp - now > timestampAfterMaxMs {
                return
                    "timestamp \(timestamp) is more than message.timestamp.after.max.ms=\(timestampAfterMaxMs) ahead of the broker's clock"
            }
        }
        return nil
    }

    public init() {}

    /// Applies topic-level overrides given as Kafka topic configs (`TopicConfigs`): each must be a
    /// config Kafka defines (or Petrel's flush.policy) with a valid value; those Petrel honours change
    /// the settings, the rest are only validated.
    public func applying(_ overrides: [String: String]) throws(LogConfigError) -> LogConfig {
        var config = self
        for (name, value) in overrides.sorted(by: { $0.key < $1.key }) {
            guard let definition = TopicConfigs.named(name) else {
                throw LogConfigError(name: name, value: value, reason: "Kafka defines no topic config of that name")
            }
            if let reason = definition.refusal(of: value) {
                throw LogConfigError(name: name, value: value, reason: reason)
            }
            definition.apply?(&config, value)
        }
        return config
    }
}

public struct LogConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var value: String
    public var reason: String

    public var description: String { "invalid topic config \(name)=\(value): \(reason)" }
}
