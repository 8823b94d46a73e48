/// Kafka's configuration value types, as DescribeConfigs reports them (`config_type`).
public enum ConfigType: Int8, Sendable, Hashable {
    case unknown = 0
    case boolean = 1
    case string = 2
    case int = 3
    case short = 4
    case long = 5
    case double = 6
    case list = 7
    case `class` = 8
    case password = 9
}

/// One topic config as Kafka defines it: its type, the values it takes, its default, the broker setting
/// it falls back to, and whether Petrel acts on it. Configs that mean nothing on one broker (replication,
/// tiered storage, ...) are accepted, validated by type, stored and reported, but change nothing.
public struct TopicConfigDefinition: Sendable {
    public let name: String
    public let type: ConfigType
    public let documentation: String
    /// The broker config it defaults to, by its Kafka name (`log.retention.ms`), if Kafka has one.
    public let brokerSynonym: String?
    /// Whether setting it changes what Petrel does.
    public let isHonoured: Bool
    /// Why a value is refused, or nil if it is fine.
    let check: @Sendable (String) -> String?
    /// The value in force when a topic does not override it, given the broker's log defaults.
    let defaultValue: @Sendable (LogConfig) -> String
    /// How an override changes the log's settings (honoured configs only).
    let apply: (@Sendable (inout LogConfig, String) -> Void)?

    /// Why `value` is refused for this config, or nil.
    public func refusal(of value: String) -> String? { check(value) }

    /// The value in force without a topic override.
    public func value(defaultingTo broker: LogConfig) -> String { defaultValue(broker) }
}

/// Every topic config Kafka defines, plus Petrel's own `flush.policy`: the one model that CreateTopics,
/// DescribeConfigs, the alter APIs and the log share.
public enum TopicConfigs {
    public static let all: [TopicConfigDefinition] = honoured + storedOnly

    public static func named(_ name: String) -> TopicConfigDefinition? { byName[name] }

    private static let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    // MARK: - Honoured

    private static let honoured: [TopicConfigDefinition] = [
        number(
            "retention.ms",
            .long,
            "How long a segment is kept after its newest record; -1 keeps data forever.",
            synonym: "log.retention.ms",
            range: -1...Int64.max,
            field: \.retentionMs
        ),
        number(
            "retention.bytes",
            .long,
            "The size a partition may grow to before its oldest segments are deleted; -1 sets no limit.",
            synonym: "log.retention.bytes",
            range: -1...Int64.max,
            field: \.retentionBytes
        ),
        number(
            "segment.bytes",
            .int,
            "A new segment is rolled when the active one would grow past this many bytes.",
            synonym: "log.segment.bytes",
            range: 14...Int64(Int32.max),
            field: \.segmentBytes
        ),
        number(
            "segment.ms",
            .long,
            "A new segment is rolled once the active one is this old, so retention can delete old data.",
            synonym: "log.roll.ms",
            range: 1...Int64.max,
            field: \.segmentMs
        ),
        number(
            "index.interval.bytes",
            .int,
            "Bytes of log between entries of the sparse offset and time indexes.",
            synonym: "log.index.interval.bytes",
            range: 0...Int64(Int32.max),
            field: \.indexIntervalBytes
        ),
        number(
            "max.message.bytes",
            .int,
            "The largest record batch the topic accepts, in bytes.",
            synonym: "message.max.bytes",
            range: 0...Int64(Int32.max),
            field: \.maxMessageBytes
        ),
        number(
            "flush.ms",
            .long,
            "Under flush.policy=interval, the milliseconds between fsyncs of the partition.",
            synonym: "log.flush.interval.ms",
            range: 1...Int64.max,
            field: \.flushIntervalMs
        ),
        TopicConfigDefinition(
            name: "flush.policy",
            type: .string,
            documentation:
                "Petrel's own: when appended data is fsynced. always (before acks=1/all are answered), interval "
                + "(every flush.ms) or never (the page cache, as Kafka by default).",
            brokerSynonym: nil,
            isHonoured: true,
            check: { FlushPolicy(rawValue: $0) == nil ? "must be always, interval or never" : nil },
            defaultValue: { $0.flushPolicy.rawValue },
            apply: { $0.flushPolicy = FlushPolicy(rawValue: $1)! }
        ),
        number(
            "min.insync.replicas",
            .int,
            "The replicas that must have a record before acks=all is answered. One broker is one replica: "
                + "above 1, acks=all produces fail with NOT_ENOUGH_REPLICAS, as on a one-replica Kafka topic.",
            synonym: "min.insync.replicas",
            range: 1...Int64(Int32.max),
            field: \.minInsyncReplicas
        ),
        TopicConfigDefinition(
            name: "cleanup.policy",
            type: .list,
            documentation:
                "delete: old segments go by retention.ms and retention.bytes. compact: the log cleaner keeps "
                + "each key's latest record (records need keys). compact,delete: both.",
            brokerSynonym: "log.cleanup.policy",
            isHonoured: true,
            check: { cleanupPolicies($0) == nil ? "must be delete, compact or both" : nil },
            defaultValue: { cleanupPolicyValue($0) },
            apply: { config, value in
                let policies = cleanupPolicies(value) ?? ["delete"]
                config.deletesByRetention = policies.contains("delete")
                config.compacts = policies.contains("compact")
            }
        ),
        number(
            "delete.retention.ms",
            .long,
            "How long a tombstone (a record with a null value) is kept after the cleaning that first saw it, "
                + "so that slow consumers still see the delete.",
            synonym: "log.cleaner.delete.retention.ms",
            range: 0...Int64.max,
            field: \.deleteRetentionMs
        ),
        number(
            "min.compaction.lag.ms",
            .long,
            "Records younger than this stay uncleaned: consumers see every update of that age.",
            synonym: "log.cleaner.min.compaction.lag.ms",
            range: 0...Int64.max,
            field: \.minCompactionLagMs
        ),
        number(
            "max.compaction.lag.ms",
            .long,
            "A log with a dirty record older than this is cleaned whatever its dirty ratio.",
            synonym: "log.cleaner.max.compaction.lag.ms",
            range: 1...Int64.max,
            field: \.maxCompactionLagMs
        ),
        TopicConfigDefinition(
            name: "min.cleanable.dirty.ratio",
            type: .double,
            documentation:
                "The share of the log (bytes not yet cleaned over all cleanable bytes) above which the cleaner "
                + "compacts it.",
            brokerSynonym: "log.cleaner.min.cleanable.ratio",
            isHonoured: true,
            check: { value in
                guard let number = Double(value), (0...1).contains(number) else {
                    return "must be a number from 0 to 1"
                }
                return nil
            },
            defaultValue: { "\($0.minCleanableDirtyRatio)" },
            apply: { $0.minCleanableDirtyRatio = Double($1)! }
        ),
        TopicConfigDefinition(
            name: "compression.type",
            type: .string,
            documentation: "producer: batches are stored compressed as the producer sent them.",
            brokerSynonym: "compression.type",
            isHonoured: true,
            check: { value in
                let kafkaValues = ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]
                guard kafkaValues.contains(value) else {
                    return "must be one of \(kafkaValues.joined(separator: ", "))"
                }
                return value == "producer" ? nil : "batches are stored as produced; only producer is supported"
            },
            defaultValue: { _ in "producer" },
            apply: { _, _ in }
        ),
        TopicConfigDefinition(
            name: "message.timestamp.type",
            type: .string,
            documentation:
                "CreateTime: records keep the timestamp their producer gave them. LogAppendTime: the broker "
                + "stamps every batch with the time it appends it.",
            brokerSynonym: "log.message.timestamp.type",
            isHonoured: true,
            check: { value in
                value == "CreateTime" || value == "LogAppendTime" ? nil : "must be CreateTime or LogAppendTime"
            },
            defaultValue: { $0.timestampType == .createTime ? "CreateTime" : "LogAppendTime" },
            apply: { $0.timestampType = $1 == "LogAppendTime" ? .logAppendTime : .createTime }
        ),
        number(
            "message.timestamp.before.max.ms",
            .long,
            "Under CreateTime, how far behind the broker's clock a timestamp may be; older batches get "
                + "INVALID_TIMESTAMP.",
            synonym: "log.message.timestamp.before.max.ms",
            range: 0...Int64.max,
            field: \.timestampBeforeMaxMs
        ),
        number(
            "message.timestamp.after.max.ms",
            .long,
            "Under CreateTime, how far ahead of the broker's clock a timestamp may be; later batches get "
                + "INVALID_TIMESTAMP.",
            synonym: "log.message.timestamp.after.max.ms",
            range: 0...Int64.max,
            field: \.timestampAfterMaxMs
        ),
    ]

    // MARK: - Stored and reported only

    private static let longMax = String(Int64.max)

    private static let storedOnly: [TopicConfigDefinition] = [
        long(
            "file.delete.delay.ms",
            "How long a deleted segment's file lingers.",
            "log.segment.delete.delay.ms",
            0,
            "60000"
        ),
        long(
            "flush.messages",
            "Kafka's fsync every N messages; Petrel uses flush.policy.",
            "log.flush.interval.messages",
            1,
            longMax
        ),
        long("segment.jitter.ms", "Random jitter subtracted from segment.ms.", "log.roll.jitter.ms", 0, "0"),
        int(
            "segment.index.bytes",
            "The largest an offset index may grow (Petrel's indexes grow as needed).",
            "log.index.size.max.bytes",
            8,
            "10485760"
        ),
        int("compression.gzip.level", "The gzip level when the broker compresses.", "compression.gzip.level", -1, "-1"),
        int("compression.lz4.level", "The lz4 level when the broker compresses.", "compression.lz4.level", 1, "9"),
        int(
            "compression.zstd.level",
            "The zstd level when the broker compresses.",
            "compression.zstd.level",
            -131072,
            "3"
        ),
        boolean("preallocate", "Preallocate segment files.", "log.preallocate", "false"),
        boolean(
            "unclean.leader.election.enable",
            "Allow an out-of-sync replica to lead (one broker has none).",
            "unclean.leader.election.enable",
            "false"
        ),
        boolean(
            "message.downconversion.enable",
            "Down-convert batches for old consumers.",
            "log.message.downconversion.enable",
            "true"
        ),
        boolean("remote.storage.enable", "Tiered storage.", nil, "false"),
        boolean("remote.log.copy.disable", "Tiered storage: stop copying segments.", nil, "false"),
        boolean("remote.log.delete.on.disable", "Tiered storage: delete remote data when disabled.", nil, "false"),
        long(
            "local.retention.ms",
            "Tiered storage: local retention; -2 follows retention.ms.",
            "log.local.retention.ms",
            -2,
            "-2"
        ),
        long(
            "local.retention.bytes",
            "Tiered storage: local retention; -2 follows retention.bytes.",
            "log.local.retention.bytes",
            -2,
            "-2"
        ),
        list(
            "leader.replication.throttled.replicas",
            "Replicas throttled on the leader side.",
            "leader.replication.throttled.replicas"
        ),
        list(
            "follower.replication.throttled.replicas",
            "Replicas throttled on the follower side.",
            "follower.replication.throttled.replicas"
        ),
    ]

    // MARK: - Builders

    /// A whole-number config that sets `field` of the log's settings, and defaults to it.
    private static func number<Value: FixedWidthInteger & Sendable>(
        _ name: String,
        _ type: ConfigType,
        _ documentation: String,
        synonym: String?,
        range: ClosedRange<Int64>,
        field: any WritableKeyPath<LogConfig, Value> & Sendable
    ) -> TopicConfigDefinition {
        TopicConfigDefinition(
            name: name,
            type: type,
            documentation: documentation,
            brokerSynonym: synonym,
            isHonoured: true,
            check: { wholeNumber($0, in: range) },
            defaultValue: { "\($0[keyPath: field])" },
            apply: { $0[keyPath: field] = Value(Int64($1)!) }
        )
    }

    private static func stored(
        _ name: String,
        _ type: ConfigType,
        _ documentation: String,
        _ synonym: String?,
        _ defaultValue: String,
        check: @escaping @Sendable (String) -> String?
    ) -> TopicConfigDefinition {
        TopicConfigDefinition(
            name: name,
            type: type,
            documentation: documentation + " Stored and reported; it changes nothing on one Petrel broker.",
            brokerSynonym: synonym,
            isHonoured: false,
            check: check,
            defaultValue: { _ in defaultValue },
            apply: nil
        )
    }

    private static func long(
        _ name: String,
        _ documentation: String,
        _ synonym: String?,
        _ minimum: Int64,
        _ defaultValue: String
    ) -> TopicConfigDefinition {
        stored(name, .long, documentation, synonym, defaultValue) { wholeNumber($0, in: minimum...Int64.max) }
    }

    private static func int(
        _ name: String,
        _ documentation: String,
        _ synonym: String?,
        _ minimum: Int64,
        _ defaultValue: String
    ) -> TopicConfigDefinition {
        stored(name, .int, documentation, synonym, defaultValue) { wholeNumber($0, in: minimum...Int64(Int32.max)) }
    }

    private static func boolean(
        _ name: String,
        _ documentation: String,
        _ synonym: String?,
        _ defaultValue: String
    ) -> TopicConfigDefinition {
        stored(name, .boolean, documentation, synonym, defaultValue) { value in
            ["true", "false"].contains(value.lowercased()) ? nil : "must be true or false"
        }
    }

    private static func list(_ name: String, _ documentation: String, _ synonym: String?) -> TopicConfigDefinition {
        stored(name, .list, documentation, synonym, "") { _ in nil }
    }

    /// The policies of a cleanup.policy value ("compact, delete" → [compact, delete]), nil if invalid.
    static func cleanupPolicies(_ value: String) -> Set<String>? {
        let policies = value.split(separator: ",").map { String($0.filter { $0 != " " }) }
        guard !policies.isEmpty, policies.allSatisfy({ $0 == "delete" || $0 == "compact" }) else { return nil }
        return Set(policies)
    }

    static func cleanupPolicyValue(_ config: LogConfig) -> String {
        [config.compacts ? "compact" : nil, config.deletesByRetention ? "delete" : nil].compactMap { $0 }
            .joined(separator: ",")
    }

    private static func wholeNumber(_ value: String, in range: ClosedRange<Int64>) -> String? {
        guard let number = Int64(value), range.contains(number) else {
            return "must be a whole number from \(range.lowerBound) to \(range.upperBound)"
        }
        return nil
    }
}
