import NIOCore

/// Splits the byte stream into request frames: a 4-byte big-endian length, then that many bytes.
/// A negative or oversized length is refused as soon as its 4 bytes arrive, before the frame is buffered.
struct KafkaFrameDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    struct InvalidFrameLength: Error, CustomStringConvertible {
        var length: Int32
        var limit: Int
        var description: String { "request frame length \(length) is outside 0...\(limit)" }
    }

    let maxFrameBytes: Int

    mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        guard length >= 0, Int(length) <= maxFrameBytes else { throw InvalidFrameLength(length: length, limit: maxFrameBytes) }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(length))
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try decode(buffer: &buffer)
    }
}
