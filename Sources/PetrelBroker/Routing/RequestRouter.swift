import Logging
import Metrics
import NIOCore
import PetrelProtocol

/// Why a request was not answered: the connection is closed, as Kafka does, because there is no
/// response shape to carry an error in.
struct UnservableRequest: Error, CustomStringConvertible {
    var description: String
}

/// Maps each API key to its handler. ApiVersions is answered from the same table, so the broker
/// advertises exactly what it serves.
struct RequestRouter: Sendable {
    struct Route: Sendable {
        let versions: ClosedRange<Int16>
        let headerVersion: @Sendable (Int16) -> Int16
        let respond: @Sendable (ByteBuffer, RequestContext) async throws -> ResponseFrame?
        let metrics: APIMetrics
    }

    private(set) var routes: [APIKey: Route] = [:]
    private let metricsFactory: any MetricsFactory

    init(metricsFactory: any MetricsFactory) {
        self.metricsFactory = metricsFactory
    }

    mutating func register<Handler: RequestHandler>(_ handler: Handler) {
        routes[Handler.Request.apiKey] = Route(
            versions: handler.versions,
            headerVersion: { Handler.Request.headerVersion(for: $0) },
            respond: { body, context in
                var body = body
                let request = try Handler.Request(from: &body, version: context.apiVersion)
                guard let response = try await handler.handle(request, context: context) else { return nil }
                return ResponseFrame(
                    response,
                    version: context.apiVersion,
                    correlationID: context.header.correlationID,
                    allocator: context.connection.allocator
                )
            },
            metrics: APIMetrics(api: Handler.Request.apiKey, factory: metricsFactory)
        )
    }

    mutating func register<Handler: FrameRequestHandler>(_ handler: Handler) {
        routes[Handler.Request.apiKey] = Route(
            versions: handler.versions,
            headerVersion: { Handler.Request.headerVersion(for: $0) },
            respond: { body, context in
                var body = body
                let request = try Handler.Request(from: &body, version: context.apiVersion)
                return try await handler.respond(to: request, context: context)
            },
            metrics: APIMetrics(api: Handler.Request.apiKey, factory: metricsFactory)
        )
    }

    /// Every served API with its version range, by key.
    var advertised: [(key: APIKey, versions: ClosedRange<Int16>)] {
        routes.map { ($0.key, $0.value.versions) }.sorted { $0.key < $1.key }
    }

    /// Reads the request header and hands the body to the API's handler, measuring the request (count,
    /// duration, failure) on the way. A request that cannot be served is logged with its context and
    /// rethrown: the caller closes the connection.
    func route(frame: ByteBuffer, connection: ConnectionInfo) async throws -> ResponseFrame? {
        var frame = frame
        let header = try RequestHeader(from: &frame)
        guard let route = routes[header.apiKey] else {
            let error = UnservableRequest(description: "unknown API key \(header.apiKey.rawValue)")
            RequestContext(header: header, connection: connection).logger.info(
                "request failed; closing the connection",
                metadata: ["error": "\(error)"]
            )
            throw error
        }
        if let sasl = connection.sasl, !Self.allowedBeforeAuthentication.contains(header.apiKey), !sasl.isAuthenticated
        {
            let error = UnservableRequest(
                description: "\(header.apiKey.name ?? "\(header.apiKey.rawValue)") before authenticating"
            )
            RequestContext(header: header, connection: connection).logger.notice(
                "unauthenticated request; closing the connection",
                metadata: ["error": "\(error)"]
            )
            route.metrics.recordError(nil)
            throw error
        }
        let started = ContinuousClock.now
        route.metrics.requests.increment()
        defer { route.metrics.duration.record(duration: ContinuousClock.now - started) }
        guard route.versions.contains(header.apiVersion) else {
            if header.apiKey == .apiVersions {
                // A client newer than us: tell it our range in a v0 body so it can retry. Never close.
                return unsupportedApiVersionsFrame(header: header, allocator: connection.allocator)
            }
            route.metrics.recordError(nil)
            throw UnservableRequest(description: "\(header.apiKey) v\(header.apiVersion) is not served")
        }
        let context = RequestContext(header: header, connection: connection)
        do {
            try RequestHeader.skipTaggedFields(from: &frame, headerVersion: route.headerVersion(header.apiVersion))
            let response = try await route.respond(frame, context)
            if let response, response.errorCode != ErrorCode.none { route.metrics.recordError(response.errorCode) }
            if connection.logger.logLevel <= .trace {
                context.logger.trace(
                    "served request",
                    metadata: [
                        "error": "\((response?.errorCode ?? ErrorCode.none).name)",
                        "duration": "\(ContinuousClock.now - started)",
                    ]
                )
            }
            return response
        } catch {
            route.metrics.recordError(nil)
            // A client breaking a rule is worth seeing; a request cut short by its connection closing is not.
            let level: Logger.Level = Self.isProtocolViolation(error) ? .info : .debug
            context.logger.log(level: level, "request failed; closing the connection", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// What a client may send on a SASL listener before it has authenticated.
    private static let allowedBeforeAuthentication: Set<APIKey> = [.apiVersions, .saslHandshake, .saslAuthenticate]

    private static func isProtocolViolation(_ error: any Error) -> Bool {
        error is UnservableRequest || error is ProtocolError || error is ProduceHandler.UnacknowledgedProduceFailed
    }

    private func unsupportedApiVersionsFrame(header: RequestHeader, allocator: ByteBufferAllocator) -> ResponseFrame {
        let range = routes[.apiVersions]!.versions
        let response = ApiVersionsResponse(
            errorCode: ErrorCode.unsupportedVersion,
            apiKeys: [
                .init(apiKey: APIKey.apiVersions.rawValue, minVersion: range.lowerBound, maxVersion: range.upperBound)
            ]
        )
        return ResponseFrame(response, version: 0, correlationID: header.correlationID, allocator: allocator)
    }
}
