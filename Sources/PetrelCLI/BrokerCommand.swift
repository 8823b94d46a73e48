import ArgumentParser
import Logging
import PetrelBroker
import PetrelStorage
import ServiceLifecycle

struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run a broker (stops cleanly on SIGINT or SIGTERM)."
    )

    @Option(help: "Data directory; created if missing.")
    var data: String = "./petrel-data"

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen: HostPort = HostPort(argument: "127.0.0.1:9092")!

    @Option(help: "Address clients are told to connect to, HOST:PORT (default: the listen address).")
    var advertise: HostPort?

    @Option(help: "This broker's node id.")
    var nodeID: Int32 = 1

    @Option(help: "Create topics that clients ask for and that do not exist: true or false.")
    var autoCreateTopics: Bool = true

    @Option(help: "Partitions of auto-created topics and of topics created with -1 partitions.")
    var defaultPartitions: Int = 1

    @Option(help: "When appended data is fsynced: always (before acks=1/-1 answers), interval, or never (page cache, like Kafka).")
    var flush: FlushPolicyArgument = .init(.never)

    @Option(help: "Milliseconds between fsyncs under --flush interval.")
    var flushIntervalMs: Int64 = 1000

    @Option(help: "Roll a new segment when the active one would exceed this many bytes.")
    var segmentBytes: Int = 1 << 30

    @Option(help: "Roll a new segment when the active one is this many milliseconds old.")
    var segmentMs: Int64 = 7 * 24 * 3_600_000

    @Option(help: "Delete closed segments whose newest record is older than this many milliseconds (-1: never).")
    var retentionMs: Int64 = 7 * 24 * 3_600_000

    @Option(help: "Delete the oldest closed segments while a partition is larger than this many bytes (-1: no limit).")
    var retentionBytes: Int64 = -1

    @Option(help: "Milliseconds between retention checks.")
    var retentionCheckIntervalMs: Int64 = 300_000

    @Option(help: "The largest record batch accepted, in bytes.")
    var maxMessageBytes: Int = 1_048_588

    @Option(help: "Milliseconds a consumer group leaving Empty waits for more members before its first rebalance.")
    var groupInitialRebalanceDelayMs: Int64 = 3000

    @Option(help: "The smallest session timeout a consumer may ask for, in milliseconds.")
    var groupMinSessionTimeoutMs: Int32 = 6000

    @Option(help: "The largest session timeout a consumer may ask for, in milliseconds.")
    var groupMaxSessionTimeoutMs: Int32 = 1_800_000

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard segmentBytes >= 14, segmentBytes <= Int(Int32.max) else {
            throw ValidationError("--segment-bytes must be between 14 and \(Int32.max).")
        }
        guard segmentMs > 0 else { throw ValidationError("--segment-ms must be positive.") }
        guard flushIntervalMs > 0 else { throw ValidationError("--flush-interval-ms must be positive.") }
        guard retentionMs >= -1, retentionBytes >= -1 else { throw ValidationError("retention limits must be -1 or more.") }
        guard retentionCheckIntervalMs > 0 else { throw ValidationError("--retention-check-interval-ms must be positive.") }
        guard groupInitialRebalanceDelayMs >= 0 else { throw ValidationError("--group-initial-rebalance-delay-ms must be 0 or more.") }
        guard groupMinSessionTimeoutMs > 0, groupMinSessionTimeoutMs <= groupMaxSessionTimeoutMs else {
            throw ValidationError("group session timeout bounds must be positive, minimum at most maximum.")
        }
        guard defaultPartitions > 0 else { throw ValidationError("--default-partitions must be at least 1.") }
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "petrel.broker")

        var configuration = BrokerConfiguration()
        configuration.host = listen.host
        configuration.port = listen.port
        configuration.advertisedHost = advertise?.host
        configuration.advertisedPort = advertise?.port
        configuration.dataDirectory = data
        configuration.nodeID = nodeID
        configuration.autoCreateTopics = autoCreateTopics
        configuration.defaultPartitions = defaultPartitions
        configuration.log.flushPolicy = flush.policy
        configuration.log.flushIntervalMs = flushIntervalMs
        configuration.log.segmentBytes = segmentBytes
        configuration.log.segmentMs = segmentMs
        configuration.log.retentionMs = retentionMs
        configuration.log.retentionBytes = retentionBytes
        configuration.log.maxMessageBytes = maxMessageBytes
        configuration.retentionCheckIntervalMs = retentionCheckIntervalMs
        configuration.groups.initialRebalanceDelayMs = groupInitialRebalanceDelayMs
        configuration.groups.minSessionTimeoutMs = groupMinSessionTimeoutMs
        configuration.groups.maxSessionTimeoutMs = groupMaxSessionTimeoutMs

        let broker: Broker
        do {
            broker = try Broker(configuration: configuration, logger: logger)
        } catch {
            throw fail("cannot open the data directory \(data): \(error)")
        }
        let group = ServiceGroup(
            services: [broker], gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        do {
            try await group.run()
        } catch {
            throw fail("the broker stopped: \(describe(error))")
        }
    }

    private func describe(_ error: any Error) -> String {
        if let error = error as? ServiceGroupError { return "\(error)" }
        let text = "\(error)"
        if text.contains("Address already in use") { return "cannot listen on \(listen): the address is already in use" }
        return text
    }
}

struct FlushPolicyArgument: ExpressibleByArgument, Sendable {
    var policy: FlushPolicy

    init(_ policy: FlushPolicy) { self.policy = policy }

    init?(argument: String) {
        guard let policy = FlushPolicy(rawValue: argument) else { return nil }
        self.policy = policy
    }

    var defaultValueDescription: String { policy.rawValue }
    static var allValueStrings: [String] { FlushPolicy.allCases.map(\.rawValue) }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
