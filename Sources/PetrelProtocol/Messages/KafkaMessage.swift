import NIOCore

/// A message with a versioned wire form, decoded from and encoded to a ByteBuffer.
public protocol KafkaVersionedData: Sendable, Hashable {
    /// The versions the message schema defines.
    static var validVersions: ClosedRange<Int16> { get }
    init(from buffer: inout ByteBuffer, version: Int16) throws
    func write(to buffer: inout ByteBuffer, version: Int16)
}

/// A request or response body of one API.
public protocol KafkaMessage: KafkaVersionedData {
    static var apiKey: APIKey { get }
    /// The first version that uses the flexible encoding, or nil if none does.
    static var firstFlexibleVersion: Int16? { get }
}

extension KafkaMessage {
    public static func isFlexible(version: Int16) -> Bool {
        firstFlexibleVersion.map { version >= $0 } ?? false
    }
}

public protocol KafkaRequest: KafkaMessage {
    associatedtype Response: KafkaResponse
}

extension KafkaRequest {
    /// Request header v2 for flexible versions, v1 otherwise.
    public static func headerVersion(for version: Int16) -> Int16 {
        isFlexible(version: version) ? 2 : 1
    }
}

public protocol KafkaResponse: KafkaMessage {
    /// Calls `body` with every error code the response carries, top-level and per topic or partition.
    func forEachErrorCode(_ body: (ErrorCode) -> Void)
}

extension KafkaResponse {
    /// Response header v1 for flexible versions, v0 otherwise, except ApiVersions, whose response header
    /// is always v0 so that a client can read it before it knows which versions the broker speaks.
    public static func headerVersion(for version: Int16) -> Int16 {
        if apiKey == .apiVersions { return 0 }
        return isFlexible(version: version) ? 1 : 0
    }
}

extension KafkaVersionedData {
    /// Decodes a message after checking that its schema defines `version`. Bytes after the message are
    /// left in the buffer: like Kafka, readers ignore what a newer writer may have appended.
    public static func decode(from buffer: inout ByteBuffer, version: Int16) throws -> Self {
        guard validVersions.contains(version) else {
            throw ProtocolError(.unsupportedVersion, "\(Self.self) has no version \(version)")
        }
        return try Self(from: &buffer, version: version)
    }

    /// The message encoded into a new buffer.
    public func encoded(version: Int16, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        write(to: &buffer, version: version)
        return buffer
    }
}
