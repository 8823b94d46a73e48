import CCompression
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Compression of record batch payloads with Kafka's codecs: gzip (zlib), snappy (xerial framing, as
/// Kafka's Java client writes it; raw blocks are read too), lz4 (the frame format) and zstd.
/// Uncompressed payloads pass through without a copy.
public enum Compression {
    public struct Failure: Error, Hashable, Sendable, CustomStringConvertible {
        public enum Reason: Hashable, Sendable {
            case corrupt
            case tooLarge(limit: Int)
            case outOfMemory
        }

        public var codec: CompressionCodec
        public var reason: Reason

        public init(codec: CompressionCodec, reason: Reason) {
            self.codec = codec
            self.reason = reason
        }

        public var description: String {
            switch reason {
            case .corrupt: "the \(codec) payload is corrupt or truncated"
            case .tooLarge(let limit): "the \(codec) payload expands past \(limit) bytes"
            case .outOfMemory: "out of memory for \(codec)"
            }
        }
    }

    /// The most a payload may expand to (a decompression bomb stops here).
    public static let defaultDecompressionLimit = 256 * 1024 * 1024

    public static func compress(_ plain: ByteBuffer, codec: CompressionCodec) throws -> ByteBuffer {
        if codec == .none { return plain }
        return try call(codec) { input, length, output, outputLength in
            petrel_compress(Int32(codec.rawValue), input, length, output, outputLength)
        }(plain)
    }

    public static func decompress(
        _ compressed: ByteBuffer,
        codec: CompressionCodec,
        limit: Int = defaultDecompressionLimit
    ) throws -> ByteBuffer {
        if codec == .none { return compressed }
        return try call(codec, limit: limit) { input, length, output, outputLength in
            petrel_decompress(Int32(codec.rawValue), input, length, limit, output, outputLength)
        }(compressed)
    }

    private static func call(
        _ codec: CompressionCodec,
        limit: Int = .max,
        _ body:
            @escaping (
                UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>,
                UnsafeMutablePointer<Int>
            ) -> Int32
    ) -> (ByteBuffer) throws -> ByteBuffer {
        { input in
            var output: UnsafeMutablePointer<UInt8>?
            var outputLength = 0
            let status = input.withUnsafeReadableBytes { bytes in
                body(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count, &output, &outputLength)
            }
            switch Int(status) {
            case Int(PETREL_COMPRESSION_OK.rawValue):
                defer { free(output) }
                var buffer = ByteBufferAllocator().buffer(capacity: outputLength)
                buffer.writeBytes(UnsafeRawBufferPointer(start: output, count: outputLength))
                return buffer
            case Int(PETREL_COMPRESSION_TOO_LARGE.rawValue):
                throw Failure(codec: codec, reason: .tooLarge(limit: limit))
            case Int(PETREL_COMPRESSION_NO_MEMORY.rawValue): throw Failure(codec: codec, reason: .outOfMemory)
            default: throw Failure(codec: codec, reason: .corrupt)
            }
        }
    }
}
