import NIOCore
import PetrelProtocol
import Testing

@Suite("Compression codecs")
struct CompressionTests {
    static let codecs: [CompressionCodec] = [.gzip, .snappy, .lz4, .zstd]

    static func sampleText(_ size: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        var index = 0
        while buffer.readableBytes < size {
            buffer.writeString("{\"order\":\(index),\"customer\":\"c\(index % 17)\",\"total\":\(index * 3)}\n")
            index += 1
        }
        return buffer.getSlice(at: 0, length: size)!
    }

    @Test("every codec round-trips small, empty and large payloads", arguments: codecs)
    func roundTrip(codec: CompressionCodec) throws {
        for size in [0, 1, 100, 40_000, 300_000] {
            let plain = Self.sampleText(size)
            let packed = try Compression.compress(plain, codec: codec)
            if size > 1000 { #expect(packed.readableBytes < plain.readableBytes / 2, "\(codec) should compress text") }
            #expect(try Compression.decompress(packed, codec: codec) == plain, "\(codec) with \(size) bytes")
        }
    }

    @Test("gzip output is a standard gzip stream; snappy uses the xerial framing Kafka's Java client writes")
    func formats() throws {
        let gzip = try Compression.compress(ByteBuffer(string: "hello"), codec: .gzip)
        #expect(Array(gzip.readableBytesView.prefix(2)) == [0x1F, 0x8B])
        let snappy = try Compression.compress(ByteBuffer(string: "hello"), codec: .snappy)
        #expect(Array(snappy.readableBytesView.prefix(8)) == [0x82] + Array("SNAPPY".utf8) + [0])
        let lz4 = try Compression.compress(ByteBuffer(string: "hello"), codec: .lz4)
        #expect(Array(lz4.readableBytesView.prefix(4)) == [0x04, 0x22, 0x4D, 0x18])
        let zstd = try Compression.compress(ByteBuffer(string: "hello"), codec: .zstd)
        #expect(Array(zstd.readableBytesView.prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD])
    }

    @Test("truncated or garbled payloads are refused, never half-decoded", arguments: codecs)
    func corrupt(codec: CompressionCodec) throws {
        let packed = try Compression.compress(Self.sampleText(20_000), codec: codec)
        let truncated = packed.getSlice(at: 0, length: packed.readableBytes / 2)!
        #expect(throws: Compression.Failure.self) { try Compression.decompress(truncated, codec: codec) }
        #expect(throws: Compression.Failure.self) {
            try Compression.decompress(ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8, 9]), codec: codec)
        }
    }

    @Test("a payload that expands past the limit is refused", arguments: codecs)
    func bomb(codec: CompressionCodec) throws {
        let packed = try Compression.compress(ByteBuffer(repeating: 0, count: 1_000_000), codec: codec)
        #expect(throws: Compression.Failure(codec: codec, reason: .tooLarge(limit: 100_000))) {
            try Compression.decompress(packed, codec: codec, limit: 100_000)
        }
    }

    @Test("compressed batches validate, decode, and are checked record by record", arguments: codecs)
    func compressedBatches(codec: CompressionCodec) throws {
        var builder = RecordBatchBuilder(compression: codec)
        for index in 0..<50 {
            builder.append(
                key: ByteBuffer(string: "k\(index)"),
                value: ByteBuffer(string: "value \(index)"),
                timestamp: 1_000 + Int64(index)
            )
        }
        let batch = try builder.build()
        let header = try RecordBatchValidator.validateProduced(batch)
        #expect(header.attributes.compression == codec)
        #expect(header.recordCount == 50)
        let records = try RecordBatchDecoder.decodeBatches(batch)[0].records
        #expect(records.map { String(buffer: $0.value!) } == (0..<50).map { "value \($0)" })

        // A batch whose header claims more records than its payload holds is refused.
        var lying = batch
        lying.setInteger(Int32(50), at: 23)  // lastOffsetDelta
        lying.setInteger(Int32(51), at: 57)  // recordCount
        let crc = CRC32C.checksum(
            lying,
            at: RecordBatchHeader.crcCoveredOffset,
            length: lying.readableBytes - RecordBatchHeader.crcCoveredOffset
        )
        lying.setInteger(crc, at: RecordBatchHeader.crcOffset)
        #expect(throws: RecordBatchError.self) { try RecordBatchValidator.validateProduced(lying) }

        // A truncated payload with a freshly computed CRC: the CRC passes, the codec does not.
        var truncated = batch.getSlice(at: 0, length: batch.readableBytes - 8)!
        truncated.setInteger(Int32(truncated.readableBytes - 12), at: 8)
        let truncatedCRC = CRC32C.checksum(
            truncated,
            at: RecordBatchHeader.crcCoveredOffset,
            length: truncated.readableBytes - RecordBatchHeader.crcCoveredOffset
        )
        truncated.setInteger(truncatedCRC, at: RecordBatchHeader.crcOffset)
        let cut = truncated
        do {
            _ = try RecordBatchValidator.validateProduced(cut)
            Issue.record("a truncated \(codec) batch was accepted")
        } catch {
            #expect(error.code == .corruptMessage)
        }
    }

    @Test("zstd needs Produce v7")
    func zstdVersion() throws {
        var builder = RecordBatchBuilder(compression: .zstd)
        builder.append(key: nil, value: ByteBuffer(string: "z"), timestamp: 1)
        let batch = try builder.build()
        do {
            _ = try RecordBatchValidator.validateProduced(batch, allowZstd: false)
            Issue.record("zstd was accepted below Produce v7")
        } catch {
            #expect(error.code == .unsupportedCompressionType)
        }
    }
}
