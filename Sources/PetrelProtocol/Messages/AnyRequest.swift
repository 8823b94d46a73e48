import NIOCore

/// A request decoded by the API key its header names, for code that takes whatever a client sends
/// (captured fixtures, fuzzers) rather than one API at a time as the broker's handlers do.
public struct AnyRequest: Sendable {
    public var header: RequestHeader
    public var body: any KafkaRequest

    public init(header: RequestHeader, body: any KafkaRequest) {
        self.header = header
        self.body = body
    }

    /// Reads the header and body of one request frame (length prefix already removed). Throws for an
    /// API key without a generated type, a version its schema does not define, or a malformed body;
    /// bytes after the body are left in `frame`.
    public init(from frame: inout ByteBuffer) throws {
        header = try RequestHeader(from: &frame)
        guard let type = header.apiKey.requestType else {
            throw ProtocolError(.unsupportedVersion, "no request type for API key \(header.apiKey.rawValue)")
        }
        body = try Self.decodeBody(type, version: header.apiVersion, from: &frame)
    }

    private static func decodeBody<Request: KafkaRequest>(
        _ type: Request.Type,
        version: Int16,
        from frame: inout ByteBuffer
    ) throws -> any KafkaRequest {
        try RequestHeader.skipTaggedFields(from: &frame, headerVersion: Request.headerVersion(for: version))
        return try Request.decode(from: &frame, version: version)
    }

    /// The frame again, length prefix included: header, then body at the header's version.
    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(0))
        header.write(to: &buffer, headerVersion: type(of: body).headerVersion(for: header.apiVersion))
        body.write(to: &buffer, version: header.apiVersion)
        buffer.setInteger(Int32(buffer.readableBytes - 4), at: 0)
        return buffer
    }
}
