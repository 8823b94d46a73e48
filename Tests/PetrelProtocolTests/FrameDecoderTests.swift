import NIOCore
import NIOTestUtils
import PetrelProtocol
import Testing

@Suite("Frame decoder")
struct FrameDecoderTests {
    private func frame(_ payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(payload.count))
        buffer.writeBytes(payload)
        return buffer
    }

    @Test("frames come out whole however the bytes are split")
    func anySplit() throws {
        let frames: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 9, count: 300)]
        let input = frames.map { frame($0) }
        let expected = frames.map { ByteBuffer(bytes: $0) }
        // Feeds the bytes one at a time and in other splits.
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(input.reduce(into: ByteBuffer()) { $0.writeImmutableBuffer($1) }, expected)],
            decoderFactory: { KafkaFrameDecoder(maxFrameBytes: 1024) }
        )
    }

    @Test(
        "a negative or oversized length is refused before the frame arrives",
        arguments: [Int32(-1), Int32.min, 1025, Int32.max]
    )
    func refusesBadLengths(length: Int32) {
        var decoder = KafkaFrameDecoder(maxFrameBytes: 1024)
        var buffer = ByteBuffer()
        buffer.writeInteger(length)
        #expect(throws: KafkaFrameDecoder.InvalidFrameLength.self) { try decoder.decode(buffer: &buffer) }
    }
}
