import NIOCore

/// Compression of record batch payloads. Uncompressed batches pass through without a copy.
public enum Compression {
    public struct UnsupportedCodec: Error, CustomStringConvertible {
        public var codec: CompressionCodec
        public var description: String { "compression codec \(codec) is not available in this build" }
    }

    public static func compress(_ plain: ByteBuffer, codec: CompressionCodec) throws -> ByteBuffer {
        switch codec {
        case .none: return plain
        default: throw UnsupportedCodec(codec: codec)
        }
    }

    public static func decompress(_ compressed: ByteBuffer, codec: CompressionCodec) throws -> ByteBuffer {
        switch codec {
        case .none: return compressed
        default: throw UnsupportedCodec(codec: codec)
        }
    }
}
