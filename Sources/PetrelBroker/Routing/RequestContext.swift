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
    /// The connection's SASL progress on a secured listener; nil where SASL is off.
    var sasl: SaslSession? = nil
    /// False under TLS: responses cannot carry file parts for sendfile (see `ResponseFrame.readingFiles`).
    var sendsFiles = true
}

/// One request being served.
struct RequestContext: Sendable {
    let header: RequestHeader
    let connection: ConnectionInfo

    var apiVersion: Int16 { header.apiVersion }

    /// The connection's logger with the request's client id, API and correlation id. Built on use:
    /// handlers log rarely (errors, unusual cases), so the request path pays nothing for it.
    var logger: Logger {
        var logger = connection.logger
        logger[metadataKey: "clientID"] = "\(header.clientID ?? "")"
        logger[metadataKey: "api"] = "\(header.apiKey.name ?? "\(header.apiKey.rawValue)")"
        logger[metadataKey: "apiVersion"] = "\(header.apiVersion)"
        logger[metadataKey: "correlationID"] = "\(header.correlationID)"
        return logger
    }
}
