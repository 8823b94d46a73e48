import Logging
import NIOCore
import NIOPosix
import PetrelProtocol
import PetrelStorage
import ServiceLifecycle
import Synchronization

/// A Kafka-protocol broker: a TCP listener serving each connection's requests in order, over the
/// partition logs of one data directory. Run it directly or inside a swift-service-lifecycle
/// `ServiceGroup`; graceful shutdown stops accepting, closes connections, then closes the logs cleanly.
public final class Broker: Service, Sendable {
    public let configuration: BrokerConfiguration
    private let state: BrokerState
    private let router: RequestRouter
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup
    private let listening = ListeningAddress()
    private let connectionCounter = Atomic<UInt64>(0)

    /// Opens (and if needed recovers) the data directory. The listener starts in `run()`.
    public init(configuration: BrokerConfiguration = BrokerConfiguration(), logger: Logger = Logger(label: "petrel.broker"))
        throws
    {
        self.configuration = configuration
        self.logger = logger
        self.state = try BrokerState(configuration: configuration, logger: logger)
        self.router = Self.makeRouter(state)
        self.eventLoopGroup =
            configuration.eventLoopThreads > 0
            ? MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
            : MultiThreadedEventLoopGroup.singleton
    }

    static func makeRouter(_ state: BrokerState) -> RequestRouter {
        var router = RequestRouter()
        router.register(ProduceHandler(broker: state))
        router.register(FetchHandler(broker: state))
        router.register(ListOffsetsHandler(broker: state))
        router.register(MetadataHandler(broker: state))
        router.register(CreateTopicsHandler(broker: state))
        router.register(DeleteTopicsHandler(broker: state))
        router.register(InitProducerIdHandler(broker: state))
        let groups = state.groups
        router.register(FindCoordinatorHandler(broker: state))
        router.register(JoinGroupHandler(coordinator: groups))
        router.register(SyncGroupHandler(coordinator: groups))
        router.register(HeartbeatHandler(coordinator: groups))
        router.register(LeaveGroupHandler(coordinator: groups))
        router.register(OffsetCommitHandler(broker: state, coordinator: groups))
        router.register(OffsetFetchHandler(coordinator: groups))
        router.register(DescribeGroupsHandler(coordinator: groups))
        router.register(ListGroupsHandler(coordinator: groups))
        router.register(DeleteGroupsHandler(coordinator: groups))
        let apiVersions = ApiVersionsHandler(advertised: [])
        router.register(ApiVersionsHandler(advertised: router.advertised + [(APIKey.apiVersions, apiVersions.versions)]))
        return router
    }

    /// The APIs and versions the broker serves (what ApiVersions advertises).
    public var servedAPIs: [(key: APIKey, versions: ClosedRange<Int16>)] { router.advertised }

    /// The address the listener is bound to, once `run()` has bound it.
    public func listeningAddress() async throws -> SocketAddress {
        try await listening.wait()
    }

    public func run() async throws {
        let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ResponseFrame>, Never>
        do {
            server = try await bind()
        } catch {
            listening.fail(error)
            throw error
        }
        let address = server.channel.localAddress!
        state.listenerBound(host: configuration.host, port: address.port ?? configuration.port)
        listening.succeed(address)
        let advertised = state.advertised
        logger.info(
            "broker listening",
            metadata: [
                "address": "\(address)", "advertised": "\(advertised.host):\(advertised.port)",
                "data": "\(configuration.dataDirectory)", "cluster": "\(state.identity.clusterID)",
            ])

        let logs = state.logs
        let retentionCheckIntervalMs = configuration.retentionCheckIntervalMs
        var listenerFailure: (any Error)?
        await withDiscardingTaskGroup { background in
            // Interval flushes, retention and recovery-point checkpoints, for as long as the server runs.
            background.addTask { await logs.runMaintenance(retentionCheckIntervalMs: retentionCheckIntervalMs) }
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
                            // The listener closed: end the open connections too.
                            group.cancelAll()
                        }
                    }
                } onGracefulShutdown: {
                    server.channel.close(promise: nil)
                }
            } catch is CancellationError {
                // Cancellation is a request to stop, like graceful shutdown: close the logs cleanly below.
            } catch {
                listenerFailure = error
            }
            background.cancelAll()
        }
        try state.groups.offsets.close()
        try state.logs.shutdown()
        if let listenerFailure { throw listenerFailure }
        logger.info("broker stopped")
    }

    private func bind() async throws -> NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ResponseFrame>, Never> {
        let maxFrameBytes = configuration.maxRequestBytes
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: maxFrameBytes)))
                    try channel.pipeline.syncOperations.addHandler(ResponseFrameWriter())
                    return try NIOAsyncChannel<ByteBuffer, ResponseFrame>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// Serves one connection: one request at a time, so responses leave in request order (Kafka's rule,
    /// which clients check by correlation id). Anything unservable closes this connection only.
    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ResponseFrame>) async {
        let id = connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue
        let channel = connection.channel
        var connectionLogger = logger
        connectionLogger[metadataKey: "connection"] = "\(id)"
        connectionLogger[metadataKey: "client"] = "\(channel.remoteAddress?.description ?? "?")"
        let info = ConnectionInfo(
            id: id, clientHost: channel.remoteAddress?.ipAddress ?? "unknown", eventLoop: channel.eventLoop,
            allocator: channel.allocator, logger: connectionLogger)
        do {
            try await connection.executeThenClose { requests, responses in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // However the loop ends, close the channel, which also ends the watcher below.
                        defer { channel.close(promise: nil) }
                        for try await frame in requests {
                            guard let response = try await self.router.route(frame: frame, connection: info) else { continue }
                            try await responses.write(response)
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
            // A client breaking a rule is worth seeing; a client going away is routine.
            let level: Logger.Level = Self.isProtocolViolation(error) ? .info : .debug
            connectionLogger.log(level: level, "closed connection", metadata: ["reason": "\(error)"])
        }
    }

    private static func isProtocolViolation(_ error: any Error) -> Bool {
        error is UnservableRequest || error is ProtocolError || error is KafkaFrameDecoder.InvalidFrameLength
            || error is ProduceHandler.UnacknowledgedProduceFailed
    }
}

/// The bound address, handed to whoever waits for it.
private final class ListeningAddress: Sendable {
    private enum State {
        case waiting([CheckedContinuation<SocketAddress, any Error>])
        case bound(SocketAddress)
        case failed(any Error)
    }

    private let state = Mutex(State.waiting([]))

    func wait() async throws -> SocketAddress {
        try await withCheckedThrowingContinuation { continuation in
            let result: Result<SocketAddress, any Error>? = state.withLock { state in
                switch state {
                case .waiting(var waiters):
                    waiters.append(continuation)
                    state = .waiting(waiters)
                    return nil
                case .bound(let address): return .success(address)
                case .failed(let error): return .failure(error)
                }
            }
            if let result { continuation.resume(with: result) }
        }
    }

    func succeed(_ address: SocketAddress) { finish(.success(address)) }
    func fail(_ error: any Error) { finish(.failure(error)) }

    private func finish(_ result: Result<SocketAddress, any Error>) {
        let waiters: [CheckedContinuation<SocketAddress, any Error>] = state.withLock { state in
            guard case .waiting(let waiters) = state else { return [] }
            switch result {
            case .success(let address): state = .bound(address)
            case .failure(let error): state = .failed(error)
            }
            return waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }
}
