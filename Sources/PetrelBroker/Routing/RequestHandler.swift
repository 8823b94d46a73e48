import NIOCore
import PetrelProtocol

/// Serves one API: decoded request in, response out. Returning nil sends nothing (acks=0 produce).
protocol RequestHandler: Sendable {
    associatedtype Request: KafkaRequest
    /// The versions served, and so advertised in ApiVersions.
    var versions: ClosedRange<Int16> { get }
    func handle(_ request: Request, context: RequestContext) async throws -> Request.Response?
}

/// Serves one API and writes its own response frame (Fetch, to send records from files).
protocol FrameRequestHandler: Sendable {
    associatedtype Request: KafkaRequest
    var versions: ClosedRange<Int16> { get }
    func respond(to request: Request, context: RequestContext) async throws -> ResponseFrame
}
