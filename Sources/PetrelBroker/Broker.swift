import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import PetrelProtocol
import PetrelStorage
import Prometheus
import ServiceLifecycle
import Synchronization

/// A Kafka-protocol broker: a TCP listener serving each connection's requests in order, over the
/// partition logs of one data directory, plus an optional HTTP endpoint for metrics and health.
/// Run it directly or inside a swift-service-lifecycle `ServiceGroup`. Graceful shutdown stops
/// accepting, lets in-flight requests finish (up to `shutdownTimeoutMs`), then flushes and closes the
/// logs and writes the clean-shutdown marker, so the next start skips recovery.
public final class Broker: Service, Sendable {
    public let configuration: BrokerConfiguration
    /// Everything the broker measures, in Prometheus form (what `/metrics` serves).
    public let metricsRegistry: PrometheusCollectorRegistry
    let state: BrokerState
    private let router: RequestRouter
    private let stateGauges: StateGauges
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let listening = ListeningAddress()
    private let metricsListening = ListeningAddress()
    private let ready = Atomic<Bool>(false)
    private let connectionCounter = Atomic<UInt64>(0)
    /// The TLS context of an SSL or SASL_SSL listener, loaded once at start (a bad certificate fails the start).
    private let tls: NIOSSLContext?
    /// The users a SASL listener checks credentials against.
    private let users: UserStore?

    /// Opens (and if needed recovers) the data directory. The listeners start in `run()`.
    public init(
        configuration: BrokerConfiguration = BrokerConfiguration(),
        logger: Logger = Logger(label: "petrel.broker")
    )
        throws
    {
        // Segment files and connections share the open-file limit; unset ones are sized from it.
        var configuration = configuration
        let budget = DescriptorBudget(
            openFileLimit: FileCache.openFileLimit,
            segmentFiles: configuration.maxOpenSegmentFiles,
            connections: configuration.maxConnections
        )
        configuration.maxOpenSegmentFiles = budget.segmentFiles
        configuration.maxConnections = budget.connections
        if budget.isOvercommitted {
            logger.warning(
                "max-connections and max-open-segment-files together exceed the open-file limit: raise the limit (ulimit -n) or lower them",
                metadata: [
                    "openFileLimit": "\(budget.openFileLimit)", "maxConnections": "\(budget.connections)",
                    "maxOpenSegmentFiles": "\(budget.segmentFiles)",
                ]
            )
        }
        self.configuration = configuration
        self.logger = logger
        let registry = PrometheusCollectorRegistry()
        self.metricsRegistry = registry
        let factory = Self.metricsFactory(registry)
        self.state = try BrokerState(configuration: configuration, logger: logger, metricsFactory: factory)
        self.router = Self.makeRouter(state, metricsFactory: factory)
        self.tls = try Self.makeTLSContext(configuration.security)
        self.users =
            configuration.security.securityProtocol.usesSASL
            ? UserStore(path: configuration.security.usersFilePath(dataDirectory: configuration.dataDirectory)) : nil
        self.stateGauges = StateGauges(
            logs: state.logs,
            groups: state.groups,
            transactions: state.transactions
        )
        self.eventLoopGroup =
            configuration.eventLoopThreads > 0
            ? MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
            : MultiThreadedEventLoopGroup.singleton
    }

    private static func makeTLSContext(_ security: ListenerSecurity) throws -> NIOSSLContext? {
        guard security.securityProtocol.usesTLS else { return nil }
        guard let certificatePath = security.tlsCertificatePath, let keyPath = security.tlsPrivateKeyPath else {
            throw ListenerSecurityError(
                reason: "\(security.securityProtocol.rawValue) needs a TLS certificate and private key"
            )
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map {
                NIOSSLCertificateSource.certificate($0)
            }
            let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            tls.minimumTLSVersion = .tlsv12
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw ListenerSecurityError(
                reason: "cannot load the TLS certificate \(certificatePath) or key \(keyPath): \(error)"
            )
        }
    }

    /// Histogram buckets sized for what each timer measures: requests and fsyncs take micro- to
    /// milliseconds, long polls up to the fetch's max wait.
    private static func metricsFactory(_ registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        let fast: [Duration] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        factory.defaultDurationHistogramBuckets = fast
        factory.durationHistogramBuckets["petrel_fetch_wait_duration_seconds"] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(30),
        ]
        return factory
    }

    static func makeRouter(_ state: BrokerState, metricsFactory: any MetricsFactory) -> RequestRouter {
        var router = RequestRouter(metricsFactory: metricsFactory)
        router.register(ProduceHandler(broker: state))
        router.register(FetchHandler(broker: state))
        router.register(ListOffsetsHandler(broker: state))
        router.register(MetadataHandler(broker: state))
        router.register(CreateTopicsHandler(broker: state))
        router.register(DeleteTopicsHandler(broker: state))
        router.register(DescribeConfigsHandler(broker: state))
        router.register(AlterConfigsHandler(broker: state))
        router.register(IncrementalAlterConfigsHandler(broker: state))
        router.register(CreatePartitionsHandler(broker: state))
        router.register(DescribeClusterHandler(broker: state))
        router.register(DescribeLogDirsHandler(broker: state))
        router.register(DescribeProducersHandler(broker: state))
        router.register(DeleteRecordsHandler(broker: state))
        router.register(InitProducerIdHandler(broker: state))
        let groups = state.groups
        router.register(FindCoordinatorHandler(broker: state))
        router.register(AddPartitionsToTxnHandler(broker: state))
        router.register(AddOffsetsToTxnHandler(broker: state))
        router.register(EndTxnHandler(broker: state))
        router.register(TxnOffsetCommitHandler(broker: state, groups: groups))
        router.register(ListTransactionsHandler(broker: state))
        router.register(DescribeTransactionsHandler(broker: state))
        router.register(JoinGroupHandler(coordinator: groups))
        router.register(SyncGroupHandler(coordinator: groups))
        router.register(HeartbeatHandler(coordinator: groups))
        router.register(LeaveGroupHandler(coordinator: groups))
        router.register(OffsetCommitHandler(broker: state, coordinator: groups))
        router.register(OffsetFetchHandler(coordinator: groups, transactions: state.transactions))
        router.register(DescribeGroupsHandler(coordinator: groups))
        router.register(ListGroupsHandler(coordinator: groups))
        router.register(DeleteGroupsHandler(coordinator: groups))
        router.register(OffsetDeleteHandler(coordinator: groups))
        router.register(ConsumerGroupHeartbeatHandler(broker: state, coordinator: groups))
        router.register(ConsumerGroupDescribeHandler(broker: state, coordinator: groups))
        router.register(SaslHandshakeHandler())
        router.register(SaslAuthenticateHandler(broker: state))
        let apiVersions = ApiVersionsHandler(advertised: [])
        router.register(
            ApiVersionsHandler(advertised: router.advertised + [(APIKey.apiVersions, apiVersions.versions)])
        )
        return router
    }

    /// The APIs and versions the broker serves (what ApiVersions advertises).
    public var servedAPIs: [(key: APIKey, versions: ClosedRange<Int16>)] { router.advertised }

    /// The address the Kafka listener is bound to, once `run()` has bound it.
    public func listeningAddress() async throws -> SocketAddress {
        try await listening.wait()
    }

    /// The address of the metrics endpoint, once `run()` has bound it; throws if there is none.
    public func metricsAddress() async throws -> SocketAddress {
        try await metricsListening.wait()
    }

    /// Whether the previous run shut down cleanly, so this start skipped the recovery scan.
    public var startedAfterCleanShutdown: Bool { state.logs.startedClean }

    /// Recovery is done (it happens in `init`), the Kafka listener accepts, and no shutdown has begun.
    public var isReady: Bool { ready.load(ordering: .relaxed) }

    /// The metrics in Prometheus text format, with partition and group gauges refreshed first.
    public func renderMetrics() -> String {
        String(decoding: renderMetricsText(), as: UTF8.self)
    }

    /// The registry's metrics followed by the state gauges, read now.
    private func renderMetricsText() -> [UInt8] {
        var text = metricsRegistry.emitToBuffer()
        stateGauges.render(into: &text)
        return text
    }

    public func run() async throws {
        let metricsChannel = try await startMetricsEndpoint()
        let server: NIOAsyncChannel<AcceptedConnection, Never>
        do {
            server = try await bind()
        } catch {
            listening.fail(error)
            metricsChannel?.close(promise: nil)
            throw error
        }
        let address = server.channel.localAddress!
        state.listenerBound(host: configuration.host, port: address.port ?? configuration.port)
        listening.succeed(address)
        ready.store(true, ordering: .relaxed)
        let advertised = state.advertised
        logger.info(
            "broker listening",
            metadata: [
                "address": "\(configuration.host):\(address.port ?? configuration.port)",
                "advertised": "\(advertised.host):\(advertised.port)",
                "data": "\(configuration.dataDirectory)", "cluster": "\(state.identity.clusterID)",
                "maxConnections": "\(configuration.maxConnections)",
                "maxOpenSegmentFiles": "\(configuration.maxOpenSegmentFiles)",
            ]
        )

        let logs = state.logs
        let retentionCheckIntervalMs = configuration.retentionCheckIntervalMs
        var listenerFailure: (any Error)?
        await withDiscardingTaskGroup { background in
            // Interval flushes, retention and recovery-point checkpoints, for as long as the server runs.
            background.addTask { await logs.runMaintenance(retentionCheckIntervalMs: retentionCheckIntervalMs) }
            // Compaction of topics with cleanup.policy=compact.
            let cleaner = state.cleaner
            background.addTask { await cleaner.run() }
            // Transaction timeouts, and ends a crash interrupted.
            let transactions = state.transactions
            let transactionCheckMs = configuration.transactionTimeoutCheckIntervalMs
            background.addTask { await transactions.runTimers(intervalMs: transactionCheckMs) }
            // Session, rebalance and initial-delay timeouts of consumer groups.
            let groups = state.groups
            background.addTask { await groups.runTimers() }
            do {
                try await withGracefulShutdownHandler {
                    try await server.executeThenClose { connections in
                        try await withThrowingDiscardingTaskGroup { group in
                            for try await connection in connections {
                                group.addTask { await self.serve(connection) }
                            }
                            // The listener closed: let in-flight requests finish, then end the rest.
                            await self.drainConnections()
                            group.cancelAll()
                        }
                    }
                } onGracefulShutdown: {
                    self.ready.store(false, ordering: .relaxed)
                    server.channel.close(promise: nil)
                }
            } catch is CancellationError {
                // Cancellation is a request to stop, like graceful shutdown: close the logs cleanly below.
            } catch {
                listenerFailure = error
            }
            background.cancelAll()
        }
        ready.store(false, ordering: .relaxed)
        // The next broker may take the directory once the logs are closed, even if closing failed.
        defer { state.directoryLock.release() }
        try state.transactions.close()
        try state.logs.shutdown()
        try? await metricsChannel?.close()
        if let listenerFailure { throw listenerFailure }
        logger.info("broker stopped")
    }

    /// Closes idle connections, wakes parked long polls and group requests so they answer now, and
    /// waits (up to the shutdown timeout) for busy connections to send their last response.
    private func drainConnections() async {
        let open = state.connections.count
        state.connections.drain()
        state.appendNotifier.wakeAll()
        state.groups.releaseParkedRequests()
        let finished = await state.connections.waitUntilEmpty(timeout: .milliseconds(configuration.shutdownTimeoutMs))
        logger.info(
            "stopped accepting; connections drained",
            metadata: ["connections": "\(open)", "cancelledAfterTimeout": "\(finished ? 0 : state.connections.count)"]
        )
    }

    /// Binds the HTTP endpoint if configured. A busy port fails the start only if the endpoint is
    /// required; otherwise the broker logs a warning and runs without it.
    private func startMetricsEndpoint() async throws -> (any Channel)? {
        guard let endpoint = configuration.metricsEndpoint else {
            metricsListening.fail(MetricsEndpointUnavailable(reason: "no metrics endpoint is configured"))
            return nil
        }
        let pages = MetricsEndpoint { [weak self] path in
            guard let self else {
                return MetricsEndpoint.Page(status: .serviceUnavailable, contentType: "text/plain", body: [])
            }
            return self.page(for: path)
        }
        do {
            let channel = try await pages.bind(host: endpoint.host, port: endpoint.port, group: eventLoopGroup)
            metricsListening.succeed(channel.localAddress!)
            logger.info(
                "metrics endpoint listening",
                metadata: ["address": "\(endpoint.host):\(channel.localAddress?.port ?? endpoint.port)"]
            )
            return channel
        } catch {
            let unavailable = MetricsEndpointUnavailable(
                reason: "cannot listen on \(endpoint.host):\(endpoint.port): \(error)"
            )
            metricsListening.fail(unavailable)
            if endpoint.required {
                listening.fail(unavailable)
                throw unavailable
            }
            logger.warning(
                "metrics endpoint not started; the broker runs without it",
                metadata: ["address": "\(endpoint.host):\(endpoint.port)", "error": "\(error)"]
            )
            return nil
        }
    }

    private func page(for path: String) -> MetricsEndpoint.Page {
        switch path {
        case "/metrics":
            return MetricsEndpoint.Page(
                status: .ok,
                contentType: "text/plain; version=0.0.4; charset=utf-8",
                body: renderMetricsText()
            )
        case "/health":
            return MetricsEndpoint.Page(status: .ok, contentType: "text/plain", body: Array("ok\n".utf8))
        case "/ready":
            return isReady
                ? MetricsEndpoint.Page(status: .ok, contentType: "text/plain", body: Array("ready\n".utf8))
                : MetricsEndpoint.Page(
                    status: .serviceUnavailable,
                    contentType: "text/plain",
                    body: Array("not ready\n".utf8)
                )
        default:
            return MetricsEndpoint.Page(status: .notFound, contentType: "text/plain", body: Array("not found\n".utf8))
        }
    }

    private func bind() async throws -> NIOAsyncChannel<AcceptedConnection, Never> {
        let maxFrameBytes = configuration.maxRequestBytes
        let maxInFlight = configuration.maxInFlightRequestsPerConnection
        let idleTimeout =
            configuration.connectionsMaxIdleMs > 0 ? TimeAmount.milliseconds(configuration.connectionsMaxIdleMs) : nil
        let connections = state.connections
        let metrics = state.metrics
        let tls = self.tls
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let id = self.connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    if let idleTimeout {
                        let window = Duration.nanoseconds(idleTimeout.nanoseconds)
                        try pipeline.addHandler(
                            IdleConnectionCloser(
                                timeout: idleTimeout,
                                isActive: { connections.isActive(id, within: window) },
                                onClose: { metrics.idleConnectionsClosed.increment() }
                            )
                        )
                    }
                    try pipeline.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: maxFrameBytes)))
                    try pipeline.addHandler(ResponseFrameWriter())
                    // The request stream stops reading the socket once maxInFlight requests wait unanswered.
                    let configuration = NIOAsyncChannel<ByteBuffer, ResponseFrame>.Configuration(
                        backPressureStrategy: .init(lowWatermark: max(1, maxInFlight / 2), highWatermark: maxInFlight)
                    )
                    return AcceptedConnection(
                        id: id,
                        channel: try NIOAsyncChannel(
                            wrappingChannelSynchronously: channel,
                            configuration: configuration
                        )
                    )
                }
            }
    }

    /// Serves one connection: one request at a time, so responses leave in request order (Kafka's rule,
    /// which clients check by correlation id). Anything unservable closes this connection only.
    private func serve(_ accepted: AcceptedConnection) async {
        let id = accepted.id
        let connection = accepted.channel
        let channel = connection.channel
        let connections = state.connections
        let metrics = state.metrics
        switch connections.register(id, channel: channel, limit: configuration.maxConnections) {
        case .registered:
            break
        case .draining:
            // Accepted just as the shutdown began. executeThenClose finishes the streams, then closes.
            try? await connection.executeThenClose { _, _ in }
            return
        case .full:
            metrics.rejectedConnections.increment()
            logger.warning(
                "too many connections; closing a new one",
                metadata: [
                    "limit": "\(configuration.maxConnections)",
                    "client": "\(channel.remoteAddress?.description ?? "?")",
                ]
            )
            try? await connection.executeThenClose { _, _ in }
            return
        }
        metrics.connections.increment()
        defer {
            connections.remove(id)
            metrics.connections.decrement()
        }
        var connectionLogger = logger
        connectionLogger[metadataKey: "connection"] = "\(id)"
        connectionLogger[metadataKey: "client"] = "\(channel.remoteAddress?.description ?? "?")"
        let info = ConnectionInfo(
            id: id,
            clientHost: channel.remoteAddress?.ipAddress ?? "unknown",
            eventLoop: channel.eventLoop,
            allocator: channel.allocator,
            logger: connectionLogger,
            sasl: users.map { SaslSession(mechanisms: configuration.security.saslMechanisms, users: $0) },
            sendsFiles: tls == nil
        )
        do {
            try await connection.executeThenClose { requests, responses in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // However the loop ends, close the channel, which also ends the watcher below.
                        defer { channel.close(promise: nil) }
                        for try await frame in requests {
                            guard connections.beginRequest(id) else { break }
                            metrics.receivedBytes.increment(by: frame.readableBytes + 4)
                            let response = try await self.router.route(frame: frame, connection: info)
                            if let response {
                                try await responses.write(response)
                                metrics.sentBytes.increment(by: response.byteCount)
                            }
                            // Shutting down, or a refused login: the last response goes out before the close.
                            let shuttingDown = connections.endRequest(id)
                            if shuttingDown || response?.closesConnection == true {
                                try await Self.waitUntilWritten(responses, channel: channel)
                                break
                            }
                        }
                    }
                    // A request parked at the coordinator or in a long poll must not outlive its
                    // connection: when the client goes away, cancel it.
                    group.addTask { try? await channel.closeFuture.get() }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch is CancellationError {
            return
        } catch {
            // The router has logged a request that failed, with its context; a bad frame is logged here.
            let level: Logger.Level = error is KafkaFrameDecoder.InvalidFrameLength ? .info : .debug
            connectionLogger.log(level: level, "closed connection", metadata: ["reason": "\(error)"])
        }
    }
}

extension Broker {
    /// Waits until every response written so far is on the wire, or the connection has closed: a
    /// frame still queued when the channel closes never reaches the writer, so its promise would
    /// never complete.
    fileprivate static func waitUntilWritten(
        _ responses: NIOAsyncChannelOutboundWriter<ResponseFrame>,
        channel: any Channel
    ) async throws {
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.closeFuture.whenComplete { _ in written.succeed() }
        try await responses.write(ResponseFrame(barrier: written))
        try await written.futureResult.get()
    }
}

/// Why the listener's TLS or SASL settings cannot be used.
public struct ListenerSecurityError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// Why `Broker.metricsAddress()` has no address.
public struct MetricsEndpointUnavailable: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { "the metrics endpoint is not serving: \(reason)" }
}
