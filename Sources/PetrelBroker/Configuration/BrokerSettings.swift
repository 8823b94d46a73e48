import Logging
import PetrelSASL
import PetrelStorage

/// Every operator setting of `petrel broker`, with its default: the one table that the command line,
/// the environment, the config file and docs/configuration.md share. A value is taken from the first
/// of: flag, environment variable, config file, default.
public enum BrokerSettings {
    public static let all: [BrokerSetting] = [
        setting("data", "./petrel-data", "Data directory; created if missing.") { $0.broker.dataDirectory = $1 },
        setting("listen", "127.0.0.1:9092", "Address to listen on, HOST:PORT.") { settings, value in
            let (host, port) = try hostPort(value)
            settings.broker.host = host
            settings.broker.port = port
        },
        setting("advertise", "", "Address clients are told to connect to, HOST:PORT (empty: the listen address).") {
            settings,
            value in
            guard !value.isEmpty else { return }
            let (host, port) = try hostPort(value)
            settings.broker.advertisedHost = host
            settings.broker.advertisedPort = port
        },
        setting("node-id", "1", "This broker's node id.") { $0.broker.nodeID = try integer($1, 0...Int32.max) },
        setting(
            "auto-create-topics",
            "true",
            "Create topics that clients ask for and that do not exist: true or false."
        ) {
            $0.broker.autoCreateTopics = try boolean($1)
        },
        setting(
            "default-partitions",
            "1",
            "Partitions of auto-created topics and of topics created with -1 partitions."
        ) {
            $0.broker.defaultPartitions = try integer($1, 1...100_000)
        },
        setting(
            "offsets-topic-num-partitions",
            "16",
            "Partitions of __consumer_offsets, where committed offsets live; read only when the topic is created."
        ) {
            $0.broker.offsetsTopicPartitions = try integer($1, 1...1_000)
        },
        setting(
            "max-request-bytes",
            "104857600",
            "The largest request frame accepted; larger ones close the connection."
        ) {
            $0.broker.maxRequestBytes = try integer($1, 1024...Int(Int32.max))
        },
        setting(
            "max-connections",
            "0",
            "Open client connections at most; more are closed as they are accepted. 0: what the open-file limit leaves after segment files and a reserve, at most 4096."
        ) { $0.broker.maxConnections = try integer($1, 0...1_000_000) },
        setting(
            "fetch-max-bytes",
            "57671680",
            "Record bytes one fetch response carries at most, whatever the client asks for (a first batch larger than this still goes out whole)."
        ) { $0.broker.fetchMaxBytes = try integer($1, 1024...Int(Int32.max)) },
        setting(
            "max-in-flight-requests",
            "100",
            "Unanswered requests per connection before the broker stops reading that connection until it catches up (requests already in the same socket read, at most 256 KiB, are still taken)."
        ) { $0.broker.maxInFlightRequestsPerConnection = try integer($1, 1...100_000) },
        setting(
            "connections-max-idle-ms",
            "600000",
            "Close a connection that has sent nothing for this long (0: never)."
        ) {
            $0.broker.connectionsMaxIdleMs = try integer($1, 0...Int64.max)
        },
        setting(
            "security-protocol",
            "PLAINTEXT",
            "How the listener secures connections: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (users log in; see petrel users)."
        ) { settings, value in
            guard let value = ListenerSecurity.SecurityProtocol(rawValue: value.uppercased()) else {
                throw Reason("must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
            }
            settings.broker.security.securityProtocol = value
        },
        setting("tls-cert", "", "PEM certificate chain of an SSL or SASL_SSL listener.") { settings, value in
            settings.broker.security.tlsCertificatePath = value.isEmpty ? nil : value
        },
        setting("tls-key", "", "PEM private key of an SSL or SASL_SSL listener.") { settings, value in
            settings.broker.security.tlsPrivateKeyPath = value.isEmpty ? nil : value
        },
        setting(
            "sasl-mechanisms",
            "SCRAM-SHA-256,PLAIN",
            "SASL mechanisms offered, comma-separated: SCRAM-SHA-256, PLAIN."
        ) {
            settings,
            value in
            let names = value.split(separator: ",").map { String($0.filter { $0 != " " }).uppercased() }
            let mechanisms = names.compactMap(SaslMechanism.init(rawValue:))
            guard !names.isEmpty, mechanisms.count == names.count else {
                throw Reason("must list SCRAM-SHA-256 and/or PLAIN")
            }
            settings.broker.security.saslMechanisms = mechanisms
        },
        setting(
            "users-file",
            "",
            "The users of SASL listeners, as petrel users writes them (empty: users.json in the data directory)."
        ) {
            settings,
            value in
            settings.broker.security.usersFile = value.isEmpty ? nil : value
        },
        setting(
            "flush",
            "never",
            "When appended data is fsynced: always (before acks=1/-1 answers), interval, or never (page cache, like Kafka)."
        ) { settings, value in
            guard let policy = FlushPolicy(rawValue: value) else { throw Reason("must be always, interval or never") }
            settings.broker.log.flushPolicy = policy
        },
        setting("flush-interval-ms", "1000", "Milliseconds between fsyncs under --flush interval.") {
            $0.broker.log.flushIntervalMs = try integer($1, 1...Int64.max)
        },
        setting("segment-bytes", "1073741824", "Roll a new segment when the active one would exceed this many bytes.") {
            $0.broker.log.segmentBytes = try integer($1, 14...Int(Int32.max))
        },
        setting("segment-ms", "604800000", "Roll a new segment when the active one is this many milliseconds old.") {
            $0.broker.log.segmentMs = try integer($1, 1...Int64.max)
        },
        setting("index-interval-bytes", "4096", "Bytes of log between entries of the sparse offset and time indexes.") {
            $0.broker.log.indexIntervalBytes = try integer($1, 0...Int(Int32.max))
        },
        setting(
            "max-open-segment-files",
            "0",
            "Segment and index files kept open at once, across every partition; idle ones are closed and reopened when used. 0: half the process's open-file limit."
        ) { $0.broker.maxOpenSegmentFiles = try integer($1, 0...Int(Int32.max)) },
        setting(
            "retention-ms",
            "604800000",
            "Delete closed segments whose newest record is older than this (-1: never)."
        ) {
            $0.broker.log.retentionMs = try integer($1, -1...Int64.max)
        },
        setting(
            "retention-bytes",
            "-1",
            "Delete the oldest closed segments while a partition is larger than this (-1: no limit)."
        ) {
            $0.broker.log.retentionBytes = try integer($1, -1...Int64.max)
        },
        setting("retention-check-interval-ms", "300000", "Milliseconds between retention checks.") {
            $0.broker.retentionCheckIntervalMs = try integer($1, 1...Int64.max)
        },
        setting(
            "log-cleaner-enable",
            "true",
            "Compact topics with cleanup.policy=compact in the background: true or false."
        ) {
            $0.broker.logCleaner.isEnabled = try boolean($1)
        },
        setting("log-cleaner-threads", "1", "Compacted partitions cleaned at once, each on its own thread.") {
            $0.broker.logCleaner.threads = try integer($1, 1...64)
        },
        setting(
            "log-cleaner-backoff-ms",
            "15000",
            "Milliseconds the log cleaner sleeps when no compacted partition needs cleaning."
        ) {
            $0.broker.logCleaner.backoffMs = try integer($1, 1...Int64.max)
        },
        setting(
            "log-cleaner-dedupe-buffer-size",
            "134217728",
            "Bytes of memory for the cleaner's key maps, shared by its threads; a log with more keys is cleaned in passes."
        ) {
            $0.broker.logCleaner.dedupeBufferBytes = try integer($1, 1024...Int(Int32.max) * 8)
        },
        setting(
            "log-cleaner-io-max-bytes-per-second",
            "0",
            "The most each cleaner thread reads per second, in bytes, leaving the rest of the machine to produce and fetch (0: no limit)."
        ) {
            $0.broker.logCleaner.maxBytesPerSecond = Double(try integer($1, 0...Int64.max))
        },
        setting(
            "transaction-max-timeout-ms",
            "900000",
            "The longest transaction timeout a producer may ask for; longer ones get INVALID_TRANSACTION_TIMEOUT."
        ) {
            $0.broker.transactionMaxTimeoutMs = try integer($1, 1...Int32.max)
        },
        setting(
            "transaction-timeout-check-interval-ms",
            "10000",
            "Milliseconds between looks for transactions open longer than their timeout, which are then aborted."
        ) {
            $0.broker.transactionTimeoutCheckIntervalMs = try integer($1, 1...Int64.max)
        },
        setting("max-message-bytes", "1048588", "The largest record batch accepted, in bytes.") {
            $0.broker.log.maxMessageBytes = try integer($1, 0...Int(Int32.max))
        },
        setting(
            "group-initial-rebalance-delay-ms",
            "3000",
            "Milliseconds a consumer group leaving Empty waits for more members before its first rebalance."
        ) { $0.broker.groups.initialRebalanceDelayMs = try integer($1, 0...Int64.max) },
        setting("group-min-session-timeout-ms", "6000", "The smallest session timeout a consumer may ask for.") {
            $0.broker.groups.minSessionTimeoutMs = try integer($1, 1...Int32.max)
        },
        setting("group-max-session-timeout-ms", "1800000", "The largest session timeout a consumer may ask for.") {
            $0.broker.groups.maxSessionTimeoutMs = try integer($1, 1...Int32.max)
        },
        setting(
            "group-consumer-session-timeout-ms",
            "45000",
            "Milliseconds a member of a consumer-protocol group (KIP-848) may go without a heartbeat before its partitions are reassigned."
        ) { $0.broker.groups.consumerSessionTimeoutMs = try integer($1, 1...Int64(Int32.max)) },
        setting(
            "group-consumer-heartbeat-interval-ms",
            "5000",
            "Milliseconds between the heartbeats of consumer-protocol members; below the session timeout."
        ) { $0.broker.groups.consumerHeartbeatIntervalMs = try integer($1, 1...Int32.max) },
        setting(
            "group-consumer-assignors",
            "uniform,range",
            "The server-side assignors consumer-protocol groups may pick (group.remote.assignor), comma-separated; the first is the default."
        ) { settings, value in
            let names = value.split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }
            let assignors = names.compactMap(ServerAssignor.init(rawValue:))
            guard !names.isEmpty, assignors.count == names.count, Set(assignors).count == assignors.count else {
                throw Reason("must be uniform, range or both, comma-separated")
            }
            settings.broker.groups.consumerAssignors = assignors
        },
        BrokerSetting(
            name: "metrics",
            defaultValue: "127.0.0.1:9464",
            summary:
                "HTTP address of /metrics, /health and /ready, HOST:PORT, or off. If the default port is busy the broker warns and runs without it."
        ) { settings, value, isDefault in
            guard value != "off" else {
                settings.broker.metricsEndpoint = nil
                return
            }
            let (host, port) = try hostPort(value)
            // Only an address the operator chose is worth refusing to start over.
            settings.broker.metricsEndpoint = MetricsEndpointConfiguration(host: host, port: port, required: !isDefault)
        },
        setting("shutdown-timeout-ms", "10000", "How long a graceful shutdown lets in-flight requests finish.") {
            $0.broker.shutdownTimeoutMs = try integer($1, 0...Int64.max)
        },
        setting("event-loop-threads", "0", "Network threads; 0 means one per core.") {
            $0.broker.eventLoopThreads = try integer($1, 0...1024)
        },
        setting("log-level", "info", "trace, debug, info, notice, warning, error or critical.") { settings, value in
            guard let level = Logger.Level(rawValue: value) else {
                throw Reason("must be trace, debug, info, notice, warning, error or critical")
            }
            settings.logLevel = level
        },
        setting("log-format", "text", "text (human-readable) or json (one object per line).") { settings, value in
            guard let format = LogFormat(rawValue: value) else { throw Reason("must be text or json") }
            settings.logFormat = format
        },
    ]

    /// The setting called `name`, if there is one.
    public static func named(_ name: String) -> BrokerSetting? { all.first { $0.name == name } }

    /// Each setting's value and where it comes from ("--flag", "PETREL_VARIABLE", "FILE line N" or
    /// "default"): the first of `flags` (name → value, as typed), `environment` (only `PETREL_*` names
    /// are looked at), the config file, the default.
    public static func sources(
        flags: [String: String],
        environment: [String: String],
        file: ConfigFile? = nil
    ) -> [(setting: BrokerSetting, value: String, source: String)] {
        all.map { setting in
            if let flag = flags[setting.name] { return (setting, flag, setting.flag) }
            if let variable = environment[setting.environmentVariable] {
                return (setting, variable, setting.environmentVariable)
            }
            if let file, let entry = file.entries.last(where: { $0.key == setting.name }) {
                return (setting, entry.value, "\(file.path) line \(entry.line)")
            }
            return (setting, setting.defaultValue, "default")
        }
    }

    /// Resolves every setting (see `sources`). A config-file key that is not a setting is an error, so
    /// a typo does not go unnoticed; so is any value a setting cannot take.
    public static func resolve(
        flags: [String: String],
        environment: [String: String],
        file: ConfigFile? = nil
    ) throws(BrokerSettingError) -> ResolvedBrokerSettings {
        if let file {
            for entry in file.entries where named(entry.key) == nil {
                throw BrokerSettingError(
                    setting: entry.key,
                    value: entry.value,
                    reason: "is not a setting (see docs/configuration.md)",
                    source: "\(file.path) line \(entry.line)"
                )
            }
        }
        var settings = ResolvedBrokerSettings()
        for (setting, value, source) in sources(flags: flags, environment: environment, file: file) {
            do {
                try setting.apply(&settings, value, source == "default")
            } catch {
                let reason = (error as? Reason)?.text ?? "\(error)"
                throw BrokerSettingError(setting: setting.name, value: value, reason: reason, source: source)
            }
        }
        let groups = settings.broker.groups
        guard groups.minSessionTimeoutMs <= groups.maxSessionTimeoutMs else {
            throw BrokerSettingError(
                setting: "group-min-session-timeout-ms",
                value: "\(groups.minSessionTimeoutMs)",
                reason: "must be at most group-max-session-timeout-ms (\(groups.maxSessionTimeoutMs))",
                source: "settings"
            )
        }
        guard Int64(groups.consumerHeartbeatIntervalMs) < groups.consumerSessionTimeoutMs else {
            throw BrokerSettingError(
                setting: "group-consumer-heartbeat-interval-ms",
                value: "\(groups.consumerHeartbeatIntervalMs)",
                reason: "must be below group-consumer-session-timeout-ms (\(groups.consumerSessionTimeoutMs))",
                source: "settings"
            )
        }
        return settings
    }

    // MARK: - Parsing values

    /// Why a value was refused; the caller adds the setting and the source.
    struct Reason: Error {
        var text: String
        init(_ text: String) { self.text = text }
    }

    private static func setting(
        _ name: String,
        _ defaultValue: String,
        _ summary: String,
        _ apply: @escaping @Sendable (inout ResolvedBrokerSettings, String) throws -> Void
    ) -> BrokerSetting {
        BrokerSetting(name: name, defaultValue: defaultValue, summary: summary) { settings, value, _ in
            try apply(&settings, value)
        }
    }

    static func integer<Number: FixedWidthInteger>(_ text: String, _ range: ClosedRange<Number>) throws -> Number {
        guard let number = Number(text), range.contains(number) else {
            throw Reason(
                range.upperBound == .max
                    ? "must be a whole number of at least \(range.lowerBound)"
                    : "must be a whole number from \(range.lowerBound) to \(range.upperBound)"
            )
        }
        return number
    }

    static func boolean(_ text: String) throws -> Bool {
        switch text {
        case "true": return true
        case "false": return false
        default: throw Reason("must be true or false")
        }
    }

    /// "HOST:PORT", also "[::1]:9092" for IPv6 literals.
    static func hostPort(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { throw Reason("must be HOST:PORT") }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw Reason("must be HOST:PORT") }
        return (host, port)
    }
}
