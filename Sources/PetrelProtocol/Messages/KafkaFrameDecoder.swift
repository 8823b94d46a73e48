import NIOCore

/// Splits a Kafka byte stream into frames: a 4-byte big-endian length, then that many bytes. A negative
/// or oversized length is refused as soon as its 4 bytes arrive, before the frame is buffered.
public struct KafkaFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public struct InvalidFrameLength: Error, CustomStringConvertible {
        public var length: Int32
        public var limit: Int
        public var description: String { "frame length \(length) is outside 0...\(limit)" }
    }

    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        guard length >= 0, Int(length) <= maxFrameBytes else {
            throw InvalidFrameLength(length: length, limit: maxFrameBytes)
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(length))
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try decode(buffer: &buffer)
    }
}
