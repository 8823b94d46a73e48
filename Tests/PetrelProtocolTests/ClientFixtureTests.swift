import Foundation
import NIOCore
import PetrelProtocol
import Testing

/// Requests captured from real clients (scripts/capture-fixtures.py): each must decode, carry what the
/// client sent, and encode back to the very same bytes.
@Suite("Real client requests")
struct ClientFixtureTests {
    struct Fixture: CustomStringConvertible {
        var client: String
        var name: String
        var frame: ByteBuffer
        var description: String { "\(client)/\(name)" }
    }

    static func fixtures() throws -> [Fixture] {
        let root = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        var fixtures: [Fixture] = []
        for client in try FileManager.default.contentsOfDirectory(atPath: root.path).sorted() {
            let folder = root.appendingPathComponent(client)
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            where name.hasSuffix(".bin") {
                let bytes = try Data(contentsOf: folder.appendingPathComponent(name))
                fixtures.append(Fixture(client: client, name: name, frame: ByteBuffer(bytes: bytes)))
            }
        }
        return fixtures
    }

    @Test("every captured request decodes and re-encodes byte for byte")
    func reencode() throws {
        let fixtures = try Self.fixtures()
        #expect(Set(fixtures.map(\.client)) == ["kcat", "librdkafka", "kafka-python", "aiokafka"])
        #expect(fixtures.count >= 25)
        for fixture in fixtures {
            var frame = fixture.frame
            let length = try frame.readKafkaInteger(as: Int32.self)
            #expect(Int(length) == frame.readableBytes, "\(fixture)")
            let request = try AnyRequest(from: &frame)
            #expect(
                fixture.name.hasPrefix("\(request.header.apiKey.name!)-v\(request.header.apiVersion)"),
                "\(fixture)"
            )
            #expect(frame.readableBytes == 0, "\(fixture) left \(frame.readableBytes) bytes")
            #expect(request.encoded() == fixture.frame, "\(fixture)")
        }
    }

    private func decode<Request: KafkaRequest>(
        _ type: Request.Type,
        client: String,
        _ name: String
    ) throws -> (RequestHeader, Request) {
        let fixture = try #require(try Self.fixtures().first { $0.client == client && $0.name == name })
        var frame = fixture.frame
        _ = try frame.readKafkaInteger(as: Int32.self)
        let header = try RequestHeader(from: &frame)
        try RequestHeader.skipTaggedFields(from: &frame, headerVersion: Request.headerVersion(for: header.apiVersion))
        return (header, try Request.decode(from: &frame, version: header.apiVersion))
    }

    @Test("kcat's Produce v7 carries one batch with the keys, values and header it was given")
    func kcatProduce() throws {
        let (header, request) = try decode(ProduceRequest.self, client: "kcat", "Produce-v7.bin")
        #expect(header.clientID == "rdkafka")
        #expect(request.acks == -1)
        #expect(request.transactionalId == nil)
        let partition = try #require(request.topicData.first { $0.name == "fixture-orders" }?.partitionData.first)
        let records = try #require(partition.records)
        _ = try RecordBatchValidator.validateProduced(records)
        let decoded = try RecordBatchDecoder.decodeBatches(records).flatMap(\.records)
        #expect(decoded.map { String(buffer: $0.key!) } == ["order-0", "order-1", "order-2"])
        #expect(decoded.map { String(buffer: $0.value!) } == ["created-0", "created-1", "created-2"])
        #expect(decoded.allSatisfy { $0.headers == [RecordHeader(key: "source", value: ByteBuffer(string: "kcat"))] })
    }

    @Test("librdkafka's idempotent Produce v9 batch carries a producer id and sequence 0")
    func librdkafkaIdempotentProduce() throws {
        let (_, request) = try decode(ProduceRequest.self, client: "librdkafka", "Produce-v9.bin")
        let records = try #require(request.topicData.first?.partitionData.first?.records)
        let header = try RecordBatchValidator.validateProduced(records)
        #expect(header.producerID >= 0)
        #expect(header.producerEpoch == 0)
        #expect(header.baseSequence == 0)
    }

    @Test("kcat's ApiVersions v3 names the client software in compact strings")
    func kcatApiVersions() throws {
        let (header, request) = try decode(ApiVersionsRequest.self, client: "kcat", "ApiVersions-v3.bin")
        #expect(header.apiVersion == 3)
        #expect(request.clientSoftwareName == "librdkafka")
        #expect(request.clientSoftwareVersion.hasPrefix("2."))
    }

    @Test("kafka-python's CreateTopics v7 asks for 2 partitions with replication factor 1")
    func kafkaPythonCreateTopics() throws {
        let (_, request) = try decode(CreateTopicsRequest.self, client: "kafka-python", "CreateTopics-v7.bin")
        let topic = try #require(request.topics.first)
        #expect(topic.name == "fixture-kafka-python")
        #expect(topic.numPartitions == 2)
        #expect(topic.replicationFactor == 1)
    }

    @Test("kafka-python's Fetch v12 opens a fetch session (id 0, epoch 0) for the assigned partition")
    func kafkaPythonFetch() throws {
        let (_, request) = try decode(FetchRequest.self, client: "kafka-python", "Fetch-v12.bin")
        #expect(request.sessionId == 0)
        #expect(request.topics.first?.topic == "fixture-orders")
        #expect(request.topics.first?.partitions.first?.partition == 0)
        #expect(request.replicaId == -1)
    }

    @Test("aiokafka's Metadata v5 asks for topics with auto-creation allowed")
    func aiokafkaMetadata() throws {
        let (_, request) = try decode(MetadataRequest.self, client: "aiokafka", "Metadata-v5.bin")
        #expect(request.allowAutoTopicCreation)
    }
}
