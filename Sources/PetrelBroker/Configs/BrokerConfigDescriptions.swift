import PetrelStorage

/// The broker's settings under their Kafka names, as DescribeConfigs reports them for the broker
/// resource. All are read-only: they are `petrel broker` settings (flags, variables, config file), or
/// what one broker fixes; changing them at run time (dynamic broker configs) is not supported.
enum BrokerConfigDescriptions {
    static func describe(
        _ configuration: BrokerConfiguration,
        advertised: (host: String, port: Int)
    ) -> [DescribedConfig] {
        let log = configuration.log
        let security = configuration.security
        let cleaner = configuration.logCleaner
        let listener = security.securityProtocol.rawValue
        var set: [(String, String, ConfigType, String)] = [
            ("node.id", "\(configuration.nodeID)", .int, "This broker's id (--node-id)."),
            ("broker.id", "\(configuration.nodeID)", .int, "This broker's id (--node-id)."),
            ("log.dirs", configuration.dataDirectory, .string, "The data directory (--data)."),
            (
                "listeners", "\(listener)://\(configuration.host):\(configuration.port)", .list,
                "Where it listens (--listen)."
            ),
            (
                "advertised.listeners", "\(listener)://\(advertised.host):\(advertised.port)", .list,
                "The address clients are told (--advertise)."
            ),
            ("auto.create.topics.enable", "\(configuration.autoCreateTopics)", .boolean, "--auto-create-topics."),
            (
                "num.partitions", "\(configuration.defaultPartitions)", .int,
                "Partitions of a new topic (--default-partitions)."
            ),
            (
                "socket.request.max.bytes", "\(configuration.maxRequestBytes)", .int,
                "The largest request (--max-request-bytes)."
            ),
            (
                "max.connections", "\(configuration.maxConnections)", .int,
                "Open connections at most (--max-connections)."
            ),
            ("connections.max.idle.ms", "\(configuration.connectionsMaxIdleMs)", .long, "--connections-max-idle-ms."),
            ("fetch.max.bytes", "\(configuration.fetchMaxBytes)", .int, "--fetch-max-bytes."),
            ("log.retention.ms", "\(log.retentionMs)", .long, "Topics' retention.ms (--retention-ms)."),
            ("log.retention.bytes", "\(log.retentionBytes)", .long, "Topics' retention.bytes (--retention-bytes)."),
            ("log.segment.bytes", "\(log.segmentBytes)", .int, "Topics' segment.bytes (--segment-bytes)."),
            ("log.roll.ms", "\(log.segmentMs)", .long, "Topics' segment.ms (--segment-ms)."),
            ("log.index.interval.bytes", "\(log.indexIntervalBytes)", .int, "--index-interval-bytes."),
            ("log.flush.interval.ms", "\(log.flushIntervalMs)", .long, "Topics' flush.ms (--flush-interval-ms)."),
            ("message.max.bytes", "\(log.maxMessageBytes)", .int, "Topics' max.message.bytes (--max-message-bytes)."),
            (
                "log.retention.check.interval.ms", "\(configuration.retentionCheckIntervalMs)", .long,
                "--retention-check-interval-ms."
            ),
            ("log.cleaner.enable", "\(cleaner.isEnabled)", .boolean, "--log-cleaner-enable."),
            ("log.cleaner.threads", "\(cleaner.threads)", .int, "--log-cleaner-threads."),
            ("log.cleaner.backoff.ms", "\(cleaner.backoffMs)", .long, "--log-cleaner-backoff-ms."),
            (
                "log.cleaner.io.max.bytes.per.second",
                cleaner.maxBytesPerSecond > 0 ? "\(cleaner.maxBytesPerSecond)" : "1.7976931348623157E308", .double,
                "--log-cleaner-io-max-bytes-per-second (0 there: no limit)."
            ),
            (
                "log.cleaner.dedupe.buffer.size", "\(cleaner.dedupeBufferBytes)", .long,
                "--log-cleaner-dedupe-buffer-size."
            ),
            ("log.cleaner.delete.retention.ms", "\(log.deleteRetentionMs)", .long, "Topics' delete.retention.ms."),
            ("log.cleaner.min.compaction.lag.ms", "\(log.minCompactionLagMs)", .long, "Topics' min.compaction.lag.ms."),
            ("log.cleaner.max.compaction.lag.ms", "\(log.maxCompactionLagMs)", .long, "Topics' max.compaction.lag.ms."),
            (
                "log.cleaner.min.cleanable.ratio", "\(log.minCleanableDirtyRatio)", .double,
                "Topics' min.cleanable.dirty.ratio."
            ),
            (
                "group.initial.rebalance.delay.ms", "\(configuration.groups.initialRebalanceDelayMs)", .int,
                "--group-initial-rebalance-delay-ms."
            ),
            (
                "group.min.session.timeout.ms", "\(configuration.groups.minSessionTimeoutMs)", .int,
                "--group-min-session-timeout-ms."
            ),
            (
                "group.max.session.timeout.ms", "\(configuration.groups.maxSessionTimeoutMs)", .int,
                "--group-max-session-timeout-ms."
            ),
            (
                "group.consumer.session.timeout.ms", "\(configuration.groups.consumerSessionTimeoutMs)", .int,
                "--group-consumer-session-timeout-ms."
            ),
            (
                "group.consumer.heartbeat.interval.ms", "\(configuration.groups.consumerHeartbeatIntervalMs)", .int,
                "--group-consumer-heartbeat-interval-ms."
            ),
            (
                "group.consumer.assignors",
                configuration.groups.consumerAssignors.map(\.rawValue).joined(separator: ","), .list,
                "--group-consumer-assignors."
            ),
        ]
        let fixed: [(String, String, ConfigType, String)] = [
            ("default.replication.factor", "1", .int, "One broker: one replica."),
            ("offsets.topic.replication.factor", "1", .short, "One broker: one replica."),
            ("min.insync.replicas", "1", .int, "One broker: one in-sync replica."),
            ("log.cleanup.policy", "delete", .list, "Topics' cleanup.policy: old segments go by retention."),
            ("compression.type", "producer", .string, "Batches are stored as produced."),
            ("log.message.timestamp.type", "CreateTime", .string, "Records keep their producer's timestamp."),
            ("unclean.leader.election.enable", "false", .boolean, "One broker has no out-of-sync replica."),
        ]
        if security.securityProtocol.usesSASL {
            set.append(
                (
                    "sasl.enabled.mechanisms", security.saslMechanisms.map(\.rawValue).joined(separator: ","), .list,
                    "SASL mechanisms of the listener (--sasl-mechanisms)."
                )
            )
        }
        let configs =
            set.map { ($0, $1, $2, $3, ConfigSource.staticBroker) } + fixed.map { ($0, $1, $2, $3, .defaultConfig) }
        return configs.map { name, value, type, documentation, source in
            DescribedConfig(
                name: name,
                value: value,
                source: source,
                readOnly: true,
                type: type,
                documentation: documentation,
                synonyms: [.init(name: name, value: value, source: source)]
            )
        }
    }
}
