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

    public init() {}

    /// The Kafka topic-config names this log understands.
    public static let topicConfigNames: Set<String> = [
        "segment.bytes", "segment.ms", "retention.ms", "retention.bytes", "segment.index.bytes",
        "index.interval.bytes", "flush.policy", "flush.ms", "max.message.bytes",
        "cleanup.policy", "compression.type", "message.timestamp.type",
    ]

    /// Applies topic-level overrides given as Kafka topic configs.
    public func applying(_ overrides: [String: String]) throws(LogConfigError) -> LogConfig {
        var config = self
        for (name, value) in overrides.sorted(by: { $0.key < $1.key }) {
            func integer(_ range: ClosedRange<Int64>) throws(LogConfigError) -> Int64 {
                guard let number = Int64(value), range.contains(number) else {
                    throw LogConfigError(name: name, value: value, reason: "must be a whole number in \(range)")
                }
                return number
            }
            switch name {
            case "segment.bytes": config.segmentBytes = Int(try integer(14...Int64(Int32.max)))
            case "segment.ms": config.segmentMs = try integer(1...Int64.max)
            case "retention.ms": config.retentionMs = try integer(-1...Int64.max)
            case "retention.bytes": config.retentionBytes = try integer(-1...Int64.max)
            case "index.interval.bytes": config.indexIntervalBytes = Int(try integer(0...Int64(Int32.max)))
            case "flush.ms": config.flushIntervalMs = try integer(1...Int64.max)
            case "max.message.bytes": config.maxMessageBytes = Int(try integer(0...Int64(Int32.max)))
            case "flush.policy":
                guard let policy = FlushPolicy(rawValue: value) else {
                    throw LogConfigError(name: name, value: value, reason: "must be always, interval or never")
                }
                config.flushPolicy = policy
            case "cleanup.policy":
                guard value == "delete" else {
                    throw LogConfigError(name: name, value: value, reason: "only delete is supported")
                }
            case "compression.type":
                guard value == "producer" else {
                    throw LogConfigError(
                        name: name,
                        value: value,
                        reason: "batches are stored as produced; only producer is supported"
                    )
                }
            case "message.timestamp.type":
                guard value == "CreateTime" else {
                    throw LogConfigError(name: name, value: value, reason: "only CreateTime is supported")
                }
            case "segment.index.bytes":
                _ = try integer(8...Int64(Int32.max))  // indexes grow as needed; accepted for compatibility
            default:
                throw LogConfigError(name: name, value: value, reason: "is not a known topic config")
            }
        }
        return config
    }
}

public struct LogConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var value: String
    public var reason: String

    public var description: String { "topic config \(name)=\(value) \(reason)" }
}
