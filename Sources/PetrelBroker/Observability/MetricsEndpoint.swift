import NIOCore
import NIOHTTP1
import NIOPosix

/// The operations HTTP listener, on a port of its own: `GET /metrics` (Prometheus text format),
/// `GET /health` (the process is up) and `GET /ready` (recovery done and the Kafka listener accepting;
/// 503 otherwise). Anything else is 404; requests are tiny, so bodies are ignored.
struct MetricsEndpoint: Sendable {
    struct Page: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]
    }

    /// Answers one path. Runs on an event loop: must be quick and must not block.
    let respond: @Sendable (_ path: String) -> Page

    func bind(host: String, port: Int, group: any EventLoopGroup) async throws -> any Channel {
        let respond = self.respond
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPPageHandler(respond: respond))
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}

/// Answers each request on a connection with the page for its path.
private final class HTTPPageHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let respond: @Sendable (String) -> MetricsEndpoint.Page
    private var request: HTTPRequestHead?

    init(respond: @escaping @Sendable (String) -> MetricsEndpoint.Page) {
        self.respond = respond
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
            var page =
                head.method == .GET || head.method == .HEAD
                ? respond(path)
                : MetricsEndpoint.Page(
                    status: .methodNotAllowed,
                    contentType: "text/plain",
                    body: Array("GET only\n".utf8)
                )
            if head.method == .HEAD { page.body = [] }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: page.contentType)
            headers.add(name: "Content-Length", value: "\(page.body.count)")
            let keepAlive = head.isKeepAlive
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: page.status, headers: headers))),
                promise: nil
            )
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: page.body)))),
                promise: nil
            )
            let sent = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: sent)
            if !keepAlive {
                let channel = context.channel
                sent.futureResult.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }
}
