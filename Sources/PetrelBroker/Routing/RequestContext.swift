import Logging
import NIOCore
import PetrelProtocol

/// What a handler knows about the connection a request came on.
struct ConnectionInfo: Sendable {
    let id: UInt64
    /// The client's address as the broker sees it (DescribeGroups reports it).
    let clientHost: String
    let eventLoop: any EventLoop
    let allocator: ByteBufferAllocator
    let logger: Logger
}

/// One request being served.
struct RequestContext: Sendable {
    let header: RequestHeader
    let connection: ConnectionInfo

    var apiVersion: Int16 { header.apiVersion }
    var logger: Logger { connection.logger }
}
