import NIOCore

/// The header in front of every request body. v1 (classic) or v2 (v1 + tagged fields, for flexible
/// request versions). The client id keeps its classic int16-length encoding even in v2, so that any
/// broker can read the header of any ApiVersions request.
public struct RequestHeader: Hashable, Sendable {
    public var apiKey: APIKey
    public var apiVersion: Int16
    public var correlationID: Int32
    public var clientID: String?

    public init(apiKey: APIKey, apiVersion: Int16, correlationID: Int32, clientID: String?) {
        self.apiKey = apiKey
        self.apiVersion = apiVersion
        self.correlationID = correlationID
        self.clientID = clientID
    }

    /// Reads the fields every header version shares. The tagged-field section of a v2 header can only
    /// be read once the request's flexibility is known: see `skipTaggedFields(ifFlexible:)`.
    public init(from buffer: inout ByteBuffer) throws {
        self.apiKey = APIKey(rawValue: try buffer.readKafkaInteger())
        self.apiVersion = try buffer.readKafkaInteger()
        self.correlationID = try buffer.readKafkaInteger()
        self.clientID = try buffer.readKafkaNullableString(flexible: false)
    }

    /// Skips the tagged fields of a v2 header.
    public static func skipTaggedFields(from buffer: inout ByteBuffer, headerVersion: Int16) throws {
        if headerVersion >= 2 { try buffer.skipKafkaTaggedFields() }
    }

    public func write(to buffer: inout ByteBuffer, headerVersion: Int16) {
        buffer.writeInteger(apiKey.rawValue)
        buffer.writeInteger(apiVersion)
        buffer.writeInteger(correlationID)
        buffer.writeKafkaNullableString(clientID, flexible: false)
        if headerVersion >= 2 { buffer.writeEmptyKafkaTaggedFields() }
    }
}

/// The header in front of every response body: the correlation id, plus (v1) a tagged-field section.
public struct ResponseHeader: Hashable, Sendable {
    public var correlationID: Int32

    public init(correlationID: Int32) {
        self.correlationID = correlationID
    }

    public init(from buffer: inout ByteBuffer, headerVersion: Int16) throws {
        self.correlationID = try buffer.readKafkaInteger()
        if headerVersion >= 1 { try buffer.skipKafkaTaggedFields() }
    }

    public func write(to buffer: inout ByteBuffer, headerVersion: Int16) {
        buffer.writeInteger(correlationID)
        if headerVersion >= 1 { buffer.writeEmptyKafkaTaggedFields() }
    }
}
