import NIOCore
import PetrelProtocol
import Testing

@Suite("Generated messages")
struct MessageRoundTripTests {
    @Test("every message of every version decodes to what was encoded, consuming every byte")
    func everyVersionRoundTrips() throws {
        var checked = 0
        for type in allSampledMessageTypes {
            for version in type.validVersions {
                try roundTrip(type, version: version)
                checked += 1
            }
        }
        // 78 schemas with 434 versions between them; a silently empty loop must fail.
        #expect(checked == 434)
    }

    private func roundTrip<Message: KafkaVersionedData & VersionedSample>(_ type: Message.Type, version: Int16) throws {
        let sample = Message.sample(version: version)
        var bytes = sample.encoded(version: version)
        let encodedSize = bytes.readableBytes
        let decoded = try Message.decode(from: &bytes, version: version)
        #expect(decoded == sample, "\(Message.self) v\(version)")
        #expect(
            bytes.readableBytes == 0,
            "\(Message.self) v\(version) left \(bytes.readableBytes) of \(encodedSize) bytes"
        )
        // Encoding is deterministic: the decoded value encodes to the same bytes.
        #expect(decoded.encoded(version: version) == sample.encoded(version: version), "\(Message.self) v\(version)")
    }

    @Test("a sample differs from the default value, so the round trip proves something")
    func samplesAreNotDefaults() {
        #expect(ProduceRequest.sample(version: 9) != ProduceRequest())
        #expect(FetchResponse.sample(version: 12).responses.first?.partitions.first?.divergingEpoch != .init())
        #expect(ApiVersionsResponse.sample(version: 3).finalizedFeaturesEpoch != -1)
    }

    @Test("versions the schema does not define are refused")
    func unknownVersionIsRefused() {
        var bytes = ByteBuffer()
        #expect(throws: ProtocolError.self) { try MetadataRequest.decode(from: &bytes, version: 13) }
    }

    @Test("truncated bodies throw instead of trapping")
    func truncationThrows() throws {
        for version in ProduceRequest.validVersions {
            let full = ProduceRequest.sample(version: version).encoded(version: version)
            for cut in stride(from: 0, to: full.readableBytes, by: 3) {
                var truncated = full.getSlice(at: full.readerIndex, length: cut)!
                #expect(throws: (any Error).self) { try ProduceRequest.decode(from: &truncated, version: version) }
            }
        }
    }
}
