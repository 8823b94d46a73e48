import NIOCore
import NIOPosix
import NIOSSL
import PetrelProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One TCP connection to a Kafka-protocol broker: typed requests in, typed responses out, pipelined
/// (many requests may be in flight; the broker answers in order). Thread-safe.
public final class KafkaConnection: Sendable {
    public let host: String
    public let port: Int
    public let clientID: String
    /// How long a request may wait for its response before it fails with a retriable timeout.
    public let requestTimeout: TimeAmount
    private let channel: any Channel
    private let correlationIDs = Atomic<Int32>(0)
    private let brokerVersions: Mutex<[APIKey: ClosedRange<Int16>]> = Mutex([:])

    /// Responses larger than this close the connection (a corrupt length would otherwise allocate).
    public static let maxResponseBytes = 256 * 1024 * 1024

    private init(host: String, port: Int, clientID: String, requestTimeout: TimeAmount, channel: any Channel) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.requestTimeout = requestTimeout
        self.channel = channel
    }

    /// Connects, over TLS if `security` says so, asks the broker which API versions it serves (unless
    /// told not to and no login is needed), and logs in with SASL if `security` has credentials.
    public static func connect(
        host: String,
        port: Int,
        clientID: String = "petrel",
        negotiateVersions: Bool = true,
        security: KafkaClientSecurity = .plaintext,
        connectTimeout: TimeAmount = .seconds(10),
        requestTimeout: TimeAmount = .seconds(30),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> KafkaConnection {
        let channel: any Channel
        let tls = security.tlsContext
        // Certificates name hosts; an address literal is checked against the certificate's IP entries.
        let serverHostname = tls != nil && !Self.isAddressLiteral(host) ? host : nil
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                try NIOSSLClientHandler(context: tls, serverHostname: serverHostname)
                            )
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(KafkaFrameDecoder(maxFrameBytes: maxResponseBytes))
                        )
                        try channel.pipeline.syncOperations.addHandler(ResponseDispatcher())
                    }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            throw KafkaClientError.connectionFailed("\(host):\(port): \(Self.reason(error))")
        }
        let connection = KafkaConnection(
            host: host,
            port: port,
            clientID: clientID,
            requestTimeout: requestTimeout,
            channel: channel
        )
        if negotiateVersions || security.credentials != nil {
            do {
                try await connection.negotiateVersions()
                if let credentials = security.credentials { try await connection.authenticate(credentials) }
            } catch {
                await connection.close()
                throw error
            }
        }
        return connection
    }

    private static func isAddressLiteral(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    /// Asks for the broker's API versions (ApiVersions v3, or v0 if the broker is older).
    @discardableResult
    public func negotiateVersions() async throws -> [APIKey: ClosedRange<Int16>] {
        let request = ApiVersionsRequest(clientSoftwareName: "petrel-swift", clientSoftwareVersion: "0.1.0")
        var response = try await send(request, version: 3)
        if response.errorCode == .unsupportedVersion {
            response = try await send(request, version: 0)
        }
        guard response.errorCode == ErrorCode.none else {
            throw KafkaClientError.broker(response.errorCode, message: "ApiVersions failed")
        }
        var versions: [APIKey: ClosedRange<Int16>] = [:]
        for api in response.apiKeys where api.minVersion <= api.maxVersion {
            versions[APIKey(rawValue: api.apiKey)] = api.minVersion...api.maxVersion
        }
        brokerVersions.withLock { $0 = versions }
        return versions
    }

    /// The broker's version range for an API, as last negotiated.
    public func brokerVersions(for api: APIKey) -> ClosedRange<Int16>? {
        brokerVersions.withLock { $0[api] }
    }

    /// The highest version both sides speak, capped at `maximum`.
    public func version<Request: KafkaRequest>(for type: Request.Type, maximum: Int16 = .max) throws -> Int16 {
        let ours = Request.validVersions.clamped(
            to: Request.validVersions.lowerBound...max(Request.validVersions.lowerBound, maximum)
        )
        guard let theirs = brokerVersions(for: Request.apiKey), ours.overlaps(theirs) else {
            throw KafkaClientError.unsupportedVersion(Request.apiKey)
        }
        return min(ours.upperBound, theirs.upperBound)
    }

    /// Sends at the highest common version (capped at `maximumVersion`) and waits for the response.
    public func send<Request: KafkaRequest>(
        _ request: Request,
        maximumVersion: Int16 = .max,
        timeout: TimeAmount? = nil
    )
        async throws -> Request.Response
    {
        try await send(request, version: try version(for: Request.self, maximum: maximumVersion), timeout: timeout)
    }

    /// Sends at `version` and waits for the response, at most `timeout` (the connection's request
    /// timeout by default; a long-polling fetch adds its wait to it).
    public func send<Request: KafkaRequest>(
        _ request: Request,
        version: Int16,
        timeout: TimeAmount? = nil
    ) async throws
        -> Request.Response
    {
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let limit = timeout ?? requestTimeout
        let timer = channel.eventLoop.scheduleTask(in: limit) {
            // A broker that does not answer in time is treated as gone: the connection is closed, which
            // fails this and every other pending request on it (their order can no longer be trusted).
            promise.fail(KafkaClientError.timedOut("\(Request.apiKey) after \(limit.nanoseconds / 1_000_000) ms"))
            self.channel.close(promise: nil)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        try await write(request, version: version, promise: promise)
        var body = try await promise.futureResult.get()
        do {
            if Request.Response.headerVersion(for: version) >= 1 { try body.skipKafkaTaggedFields() }
            return try Request.Response(from: &body, version: version)
        } catch {
            throw KafkaClientError.unexpectedResponse("\(Request.Response.self) v\(version): \(error)")
        }
    }

    /// Sends a request that gets no response (Produce with acks=0).
    public func sendWithoutResponse<Request: KafkaRequest>(_ request: Request, version: Int16) async throws {
        try await write(request, version: version, promise: nil)
    }

    private func write<Request: KafkaRequest>(
        _ request: Request,
        version: Int16,
        promise: EventLoopPromise<ByteBuffer>?
    ) async throws {
        let correlationID = correlationIDs.wrappingAdd(1, ordering: .relaxed).newValue
        var frame = channel.allocator.buffer(capacity: 256)
        frame.writeInteger(Int32(0))
        RequestHeader(apiKey: Request.apiKey, apiVersion: version, correlationID: correlationID, clientID: clientID)
            .write(to: &frame, headerVersion: Request.headerVersion(for: version))
        request.write(to: &frame, version: version)
        frame.setInteger(Int32(frame.readableBytes - 4), at: frame.readerIndex)
        let outgoing = OutgoingRequest(frame: frame, correlationID: correlationID, promise: promise)
        do {
            try await channel.writeAndFlush(outgoing)
        } catch {
            promise?.fail(error)
            throw KafkaClientError.connectionClosed
        }
    }

    public var isActive: Bool { channel.isActive }

    /// The root cause of a connect failure in a few words ("connection refused").
    static func reason(_ error: any Error) -> String {
        if let connection = error as? NIOConnectionError, let first = connection.connectionErrors.first {
            return reason(first.error)
        }
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ETIMEDOUT: return "timed out"
            case EHOSTUNREACH, ENETUNREACH: return "unreachable"
            default: return io.description
            }
        }
        if error is ChannelError { return "\(error)" }
        return "\(error)"
    }

    public func close() async {
        try? await channel.close()
    }
}
