import ArgumentParser
import Logging
import NIOCore
import PetrelBroker
import PetrelStorage
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `petrel broker`: every setting is a flag, a `PETREL_*` environment variable and a config-file key
/// (docs/configuration.md lists them); flags win over the environment, which wins over the file.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run a broker (stops cleanly on SIGINT or SIGTERM).",
        discussion: """
            Every setting can also come from the environment (PETREL_ and the name in capitals with \
            underscores, e.g. PETREL_SEGMENT_BYTES) or from a config file (--config, lines of NAME = VALUE). \
            A flag wins over the environment, which wins over the file.
            """
    )

    @Option(help: "A config file of NAME = VALUE lines (also PETREL_CONFIG).")
    var config: String?

    @Flag(help: "Print every setting's value and where it came from, then exit.")
    var printSettings = false

    @Option(help: help("data")) var data: String?
    @Option(help: help("listen")) var listen: String?
    @Option(help: help("advertise")) var advertise: String?
    @Option(name: .customLong("node-id"), help: help("node-id")) var nodeID: String?
    @Option(help: help("auto-create-topics")) var autoCreateTopics: String?
    @Option(help: help("default-partitions")) var defaultPartitions: String?
    @Option(help: help("offsets-topic-num-partitions")) var offsetsTopicNumPartitions: String?
    @Option(help: help("max-request-bytes")) var maxRequestBytes: String?
    @Option(help: help("max-connections")) var maxConnections: String?
    @Option(help: help("fetch-max-bytes")) var fetchMaxBytes: String?
    @Option(help: help("max-in-flight-requests")) var maxInFlightRequests: String?
    @Option(help: help("connections-max-idle-ms")) var connectionsMaxIdleMs: String?
    @Option(help: help("security-protocol")) var securityProtocol: String?
    @Option(help: help("tls-cert")) var tlsCert: String?
    @Option(help: help("tls-key")) var tlsKey: String?
    @Option(help: help("sasl-mechanisms")) var saslMechanisms: String?
    @Option(help: help("users-file")) var usersFile: String?
    @Option(help: help("flush")) var flush: String?
    @Option(help: help("flush-interval-ms")) var flushIntervalMs: String?
    @Option(help: help("segment-bytes")) var segmentBytes: String?
    @Option(help: help("segment-ms")) var segmentMs: String?
    @Option(help: help("index-interval-bytes")) var indexIntervalBytes: String?
    @Option(help: help("max-open-segment-files")) var maxOpenSegmentFiles: String?
    @Option(help: help("retention-ms")) var retentionMs: String?
    @Option(help: help("retention-bytes")) var retentionBytes: String?
    @Option(help: help("retention-check-interval-ms")) var retentionCheckIntervalMs: String?
    @Option(help: help("log-cleaner-enable")) var logCleanerEnable: String?
    @Option(help: help("log-cleaner-threads")) var logCleanerThreads: String?
    @Option(help: help("log-cleaner-backoff-ms")) var logCleanerBackoffMs: String?
    @Option(help: help("log-cleaner-dedupe-buffer-size")) var logCleanerDedupeBufferSize: String?
    @Option(help: help("log-cleaner-io-max-bytes-per-second")) var logCleanerIoMaxBytesPerSecond: String?
    @Option(help: help("transaction-max-timeout-ms")) var transactionMaxTimeoutMs: String?
    @Option(help: help("transaction-timeout-check-interval-ms")) var transactionTimeoutCheckIntervalMs: String?
    @Option(help: help("max-message-bytes")) var maxMessageBytes: String?
    @Option(help: help("group-initial-rebalance-delay-ms")) var groupInitialRebalanceDelayMs: String?
    @Option(help: help("group-min-session-timeout-ms")) var groupMinSessionTimeoutMs: String?
    @Option(help: help("group-max-session-timeout-ms")) var groupMaxSessionTimeoutMs: String?
    @Option(help: help("group-consumer-session-timeout-ms")) var groupConsumerSessionTimeoutMs: String?
    @Option(help: help("group-consumer-heartbeat-interval-ms")) var groupConsumerHeartbeatIntervalMs: String?
    @Option(help: help("group-consumer-assignors")) var groupConsumerAssignors: String?
    @Option(help: help("metrics")) var metrics: String?
    @Option(help: help("shutdown-timeout-ms")) var shutdownTimeoutMs: String?
    @Option(help: help("event-loop-threads")) var eventLoopThreads: String?
    @Option(help: help("log-level")) var logLevel: String?
    @Option(help: help("log-format")) var logFormat: String?

    static func help(_ name: String) -> ArgumentHelp {
        let setting = BrokerSettings.named(name)!
        let shown = setting.defaultValue.isEmpty ? "none" : setting.defaultValue
        return ArgumentHelp("\(setting.summary) (default: \(shown))", valueName: "value")
    }

    /// The flags given on the command line, by setting name.
    private var flags: [String: String] {
        let given: [(String, String?)] = [
            ("data", data), ("listen", listen), ("advertise", advertise), ("node-id", nodeID),
            ("auto-create-topics", autoCreateTopics), ("default-partitions", defaultPartitions),
            ("offsets-topic-num-partitions", offsetsTopicNumPartitions),
            ("max-request-bytes", maxRequestBytes), ("max-connections", maxConnections),
            ("fetch-max-bytes", fetchMaxBytes),
            ("max-in-flight-requests", maxInFlightRequests), ("connections-max-idle-ms", connectionsMaxIdleMs),
            ("security-protocol", securityProtocol), ("tls-cert", tlsCert), ("tls-key", tlsKey),
            ("sasl-mechanisms", saslMechanisms), ("users-file", usersFile), ("flush", flush),
            ("flush-interval-ms", flushIntervalMs),
            ("segment-bytes", segmentBytes), ("segment-ms", segmentMs), ("index-interval-bytes", indexIntervalBytes),
            ("max-open-segment-files", maxOpenSegmentFiles),
            ("retention-ms", retentionMs), ("retention-bytes", retentionBytes),
            ("retention-check-interval-ms", retentionCheckIntervalMs), ("max-message-bytes", maxMessageBytes),
            ("log-cleaner-enable", logCleanerEnable), ("log-cleaner-threads", logCleanerThreads),
            ("log-cleaner-backoff-ms", logCleanerBackoffMs),
            ("log-cleaner-dedupe-buffer-size", logCleanerDedupeBufferSize),
            ("log-cleaner-io-max-bytes-per-second", logCleanerIoMaxBytesPerSecond),
            ("transaction-max-timeout-ms", transactionMaxTimeoutMs),
            ("transaction-timeout-check-interval-ms", transactionTimeoutCheckIntervalMs),
            ("group-initial-rebalance-delay-ms", groupInitialRebalanceDelayMs),
            ("group-min-session-timeout-ms", groupMinSessionTimeoutMs),
            ("group-max-session-timeout-ms", groupMaxSessionTimeoutMs),
            ("group-consumer-session-timeout-ms", groupConsumerSessionTimeoutMs),
            ("group-consumer-heartbeat-interval-ms", groupConsumerHeartbeatIntervalMs),
            ("group-consumer-assignors", groupConsumerAssignors), ("metrics", metrics),
            ("shutdown-timeout-ms", shutdownTimeoutMs),
            ("event-loop-threads", eventLoopThreads), ("log-level", logLevel), ("log-format", logFormat),
        ]
        // Every setting has its flag: a setting added to the table without one is a bug caught here.
        assert(Set(given.map(\.0)) == Set(BrokerSettings.all.map(\.name)), "a broker setting has no flag")
        return Dictionary(uniqueKeysWithValues: given.compactMap { name, value in value.map { (name, $0) } })
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var file: ConfigFile?
        if let path = config ?? environment["PETREL_CONFIG"] {
            do {
                let text = try String(contentsOfFile: path, encoding: .utf8)
                file = try ConfigFile(path: path, text: text)
            } catch let error as ConfigFile.SyntaxError {
                throw fail("\(reason(error))")
            } catch {
                throw fail("cannot read the config file \(path)")
            }
        }
        let settings: ResolvedBrokerSettings
        do {
            settings = try BrokerSettings.resolve(flags: flags, environment: environment, file: file)
        } catch {
            throw fail("\(reason(error))")
        }
        if printSettings {
            printResolved(environment: environment, file: file)
            return
        }

        let level = settings.logLevel
        let format = settings.logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                return JSONLogHandler(label: label, logLevel: level)
            }
        }
        let logger = Logger(label: "petrel.broker")
        let configuration = settings.broker
        let broker: Broker
        do {
            broker = try Broker(configuration: configuration, logger: logger)
        } catch let error as DataDirectoryError {
            throw fail("\(reason(error))")
        } catch {
            throw fail("cannot open the data directory \(configuration.dataDirectory): \(reason(error))")
        }
        let group = ServiceGroup(
            services: [broker],
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger
        )
        do {
            try await group.run()
        } catch {
            throw fail("the broker stopped: \(describe(error, configuration))")
        }
    }

    private func printResolved(environment: [String: String], file: ConfigFile?) {
        var table = Table("SETTING", "VALUE", "FROM")
        for (setting, value, source) in BrokerSettings.sources(flags: flags, environment: environment, file: file) {
            table.add([setting.name, value, source])
        }
        print(table.rendered)
    }

    private func describe(_ error: any Error, _ configuration: BrokerConfiguration) -> String {
        if let error = error as? ServiceGroupError { return "\(error)" }
        if let error = error as? MetricsEndpointUnavailable { return "\(error)" }
        if let error = error as? IOError, error.errnoCode == EADDRINUSE {
            return "cannot listen on \(configuration.host):\(configuration.port): the address is already in use"
        }
        return reason(error)
    }
}
