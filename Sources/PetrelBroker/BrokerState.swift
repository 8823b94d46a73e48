import Logging
import Metrics
import NIOPosix
import PetrelProtocol
import PetrelStorage
import Synchronization

/// What the handlers share: storage, identity and the broker's own address. Thread-safe.
final class BrokerState: Sendable {
    let configuration: BrokerConfiguration
    /// Held from before the first read of the data directory until the logs are closed.
    let directoryLock: DataDirectoryLock
    let logs: LogManager
    let identity: BrokerIdentity
    let producerIDs: ProducerIDAllocator
    let appendNotifier = AppendNotifier()
    let groups: GroupCoordinator
    let transactions: TransactionCoordinator
    let cleaner: LogCleaner
    let connections = ConnectionRegistry()
    /// Reads segment files for responses that cannot be sent with sendfile (TLS, or the allowance is
    /// spent), NIO's pool for blocking I/O: neither an event loop nor the concurrency pool waits on the disk.
    let threadPool = NIOThreadPool.singleton
    /// Descriptors fetch responses may hold for sendfile at once: half the descriptor budget's reserve.
    let sendfileAllowance: SendfileAllowance
    let metrics: BrokerMetrics
    let logger: Logger
    private let advertisedAddress: Mutex<(host: String, port: Int)>

    init(configuration: BrokerConfiguration, logger: Logger, metricsFactory: any MetricsFactory) throws {
        self.configuration = configuration
        self.logger = logger
        self.metrics = BrokerMetrics(factory: metricsFactory)
        let storageMetrics = StorageMetrics(factory: metricsFactory)
        self.directoryLock = try DataDirectoryLock(directory: configuration.dataDirectory)
        self.identity = try BrokerIdentity.loadOrCreate(
            directory: configuration.dataDirectory,
            nodeID: configuration.nodeID
        )
        // `Broker` has sized it from the open-file limit (DescriptorBudget) when it was left unset.
        let files = FileCache(capacity: configuration.maxOpenSegmentFiles, metrics: storageMetrics)
        self.sendfileAllowance = SendfileAllowance(
            capacity: configuration.maxSendfileDescriptors > 0
                ? configuration.maxSendfileDescriptors
                : DescriptorBudget(
                    openFileLimit: FileCache.openFileLimit,
                    segmentFiles: configuration.maxOpenSegmentFiles,
                    connections: configuration.maxConnections
                ).sendfileDescriptors
        )
        self.logs = try LogManager(
            directory: configuration.dataDirectory,
            defaults: configuration.log,
            logger: logger,
            metrics: storageMetrics,
            files: files
        )
        self.cleaner = LogCleaner(
            logs: logs,
            configuration: configuration.logCleaner,
            metrics: CleanerMetrics(factory: metricsFactory),
            logger: logger
        )
        self.producerIDs = try ProducerIDAllocator(directory: configuration.dataDirectory)
        let offsets = try OffsetStore(
            logs: logs,
            partitionCount: configuration.offsetsTopicPartitions,
            logger: logger
        )
        self.groups = GroupCoordinator(
            config: configuration.groups,
            offsets: offsets,
            logger: logger,
            metrics: GroupMetrics(factory: metricsFactory),
            clock: wallClockMillis
        )
        self.transactions = try TransactionCoordinator(
            log: try TransactionLog(
                dataDirectory: configuration.dataDirectory,
                config: configuration.log,
                cleanShutdown: logs.startedClean,
                logger: logger,
                files: files
            ),
            logs: logs,
            offsets: offsets,
            appendNotifier: appendNotifier,
            producerIDs: producerIDs,
            maxTimeoutMs: configuration.transactionMaxTimeoutMs,
            logger: logger,
            metrics: TransactionMetrics(factory: metricsFactory),
            clock: wallClockMillis
        )
        self.advertisedAddress = Mutex(
            (configuration.advertisedHost ?? configuration.host, configuration.advertisedPort ?? configuration.port)
        )
    }

    /// The host and port clients are told to connect to.
    var advertised: (host: String, port: Int) { advertisedAddress.withLock { $0 } }

    /// Called once the listener is bound: fills in what the configuration left to the bound address.
    func listenerBound(host: String, port: Int) {
        let wildcard = ["0.0.0.0", "::", "[::]", ""]
        let advertisedHost = configuration.advertisedHost ?? (wildcard.contains(host) ? "127.0.0.1" : host)
        advertisedAddress.withLock { $0 = (advertisedHost, configuration.advertisedPort ?? port) }
    }
}
