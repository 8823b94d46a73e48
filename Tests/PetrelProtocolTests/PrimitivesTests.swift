import NIOCore
import PetrelProtocol
import Testing

@Suite("Wire primitives")
struct PrimitivesTests {
    static let unsignedVectors: [(UInt32, [UInt8])] = [
        (0, [0x00]),
        (1, [0x01]),
        (127, [0x7F]),
        (128, [0x80, 0x01]),
        (300, [0xAC, 0x02]),
        (UInt32.max, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    ]

    static let zigzagVectors: [(Int32, [UInt8])] = [
        (0, [0x00]),
        (-1, [0x01]),
        (1, [0x02]),
        (-2, [0x03]),
        (63, [0x7E]),
        (-64, [0x7F]),
        (64, [0x80, 0x01]),
        (Int32.max, [0xFE, 0xFF, 0xFF, 0xFF, 0x0F]),
        (Int32.min, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    ]

    @Test("unsigned varints use 7 bits per byte, low bits first", arguments: unsignedVectors)
    func unsignedVarint(value: UInt32, bytes: [UInt8]) throws {
        var buffer = ByteBuffer()
        buffer.writeUnsignedVarint(value)
        #expect(Array(buffer.readableBytesView) == bytes)
        #expect(try buffer.readUnsignedVarint() == value)
    }

    @Test("signed varints are zigzag encoded", arguments: zigzagVectors)
    func zigzagVarint(value: Int32, bytes: [UInt8]) throws {
        var buffer = ByteBuffer()
        let written = buffer.writeVarint(value)
        #expect(written == bytes.count)
        #expect(Varint.size(of: value) == bytes.count)
        #expect(Array(buffer.readableBytesView) == bytes)
        #expect(try buffer.readVarint() == value)
    }

    @Test(
        "varlongs round-trip across the range",
        arguments: [Int64.min, -1_000_000_000_000, -1, 0, 1, 1_700_000_000_000, Int64.max]
    )
    func zigzagVarlong(value: Int64) throws {
        var buffer = ByteBuffer()
        let written = buffer.writeVarlong(value)
        #expect(written == Varint.size(of: value))
        #expect(try buffer.readVarlong() == value)
        #expect(buffer.readableBytes == 0)
    }

    @Test("an over-long varint is refused")
    func overlongVarint() {
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: ProtocolError.self) { try buffer.readUnsignedVarint() }
        var endless = ByteBuffer(bytes: [0x80, 0x80])
        #expect(throws: ProtocolError.self) { try endless.readUnsignedVarint() }
    }

    @Test("classic strings carry an int16 length, compact ones uvarint(n+1); null is -1 or 0")
    func strings() throws {
        var buffer = ByteBuffer()
        buffer.writeKafkaString("kafka", flexible: false)
        buffer.writeKafkaString("kafka", flexible: true)
        buffer.writeKafkaNullableString(nil, flexible: false)
        buffer.writeKafkaNullableString(nil, flexible: true)
        buffer.writeKafkaString("", flexible: true)
        #expect(
            Array(buffer.readableBytesView) == [0, 5] + Array("kafka".utf8) + [6] + Array("kafka".utf8) + [
                0xFF, 0xFF, 0, 1,
            ]
        )
        #expect(try buffer.readKafkaString(flexible: false) == "kafka")
        #expect(try buffer.readKafkaString(flexible: true) == "kafka")
        #expect(try buffer.readKafkaNullableString(flexible: false) == nil)
        #expect(try buffer.readKafkaNullableString(flexible: true) == nil)
        #expect(try buffer.readKafkaString(flexible: true) == "")
    }

    @Test("a string length past the end of the buffer is an error, not a crash")
    func stringPastEnd() {
        var buffer = ByteBuffer(bytes: [0x7F, 0xFF, 0x61])
        #expect(throws: ProtocolError.self) { try buffer.readKafkaString(flexible: false) }
    }

    @Test("arrays: int32 or uvarint(n+1) counts, null arrays, and hostile counts")
    func arrays() throws {
        var buffer = ByteBuffer()
        buffer.writeKafkaArray([Int32(7), 8], flexible: false) { $0.writeInteger($1) }
        buffer.writeKafkaArray([Int32(9)], flexible: true) { $0.writeInteger($1) }
        buffer.writeKafkaNullableArray([Int32]?.none, flexible: true) { $0.writeInteger($1) }
        #expect(try buffer.readKafkaArray(flexible: false) { try $0.readKafkaInteger(as: Int32.self) } == [7, 8])
        #expect(try buffer.readKafkaArray(flexible: true) { try $0.readKafkaInteger(as: Int32.self) } == [9])
        #expect(try buffer.readKafkaNullableArray(flexible: true) { try $0.readKafkaInteger(as: Int32.self) } == nil)

        // A count of two billion in a 4-byte body must be refused before any allocation or loop.
        var hostile = ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF])
        #expect(throws: ProtocolError.self) {
            try hostile.readKafkaArray(flexible: false) { try $0.readKafkaInteger(as: Int8.self) }
        }
    }

    @Test("tagged fields: unknown tags are skipped, out-of-order tags are refused")
    func taggedFields() throws {
        var buffer = ByteBuffer()
        buffer.writeUnsignedVarint(2)
        buffer.writeKafkaTaggedField(tag: 1) { $0.writeInteger(Int32(42)) }
        buffer.writeKafkaTaggedField(tag: 7) { $0.writeString("future") }
        buffer.writeInteger(UInt8(0xAB))  // what follows the section
        var seen: [UInt32: Int] = [:]  // tag → size
        try buffer.readKafkaTaggedFields { tag, field in seen[tag] = field.readableBytes }
        #expect(seen == [1: 4, 7: 6])
        #expect(buffer.readInteger(as: UInt8.self) == 0xAB)

        var disordered = ByteBuffer()
        disordered.writeUnsignedVarint(2)
        disordered.writeKafkaTaggedField(tag: 3) { _ in }
        disordered.writeKafkaTaggedField(tag: 2) { _ in }
        #expect(throws: ProtocolError.self) { try disordered.skipKafkaTaggedFields() }
    }

    @Test("uuids are 16 raw bytes and print as unpadded URL-safe base64")
    func uuids() throws {
        let id = KafkaUUID(high: 0x0011_2233_4455_6677, low: 0x8899_AABB_CCDD_EEFF)
        var buffer = ByteBuffer()
        buffer.writeKafkaUUID(id)
        #expect(buffer.readableBytes == 16)
        #expect(try buffer.readKafkaUUID() == id)
        #expect(id.description == "ABEiM0RVZneImaq7zN3u_w")
        #expect(KafkaUUID(id.description) == id)
        let random = KafkaUUID.random()
        #expect(random != .zero && KafkaUUID(random.description) == random)
    }

    @Test("request headers: v1 classic, v2 adds tagged fields but keeps the int16 client id")
    func requestHeaders() throws {
        let header = RequestHeader(apiKey: .metadata, apiVersion: 12, correlationID: 99, clientID: "rdkafka")
        for headerVersion: Int16 in [1, 2] {
            var buffer = ByteBuffer()
            header.write(to: &buffer, headerVersion: headerVersion)
            #expect(buffer.readableBytes == 8 + 2 + 7 + (headerVersion == 2 ? 1 : 0))
            #expect(try RequestHeader(from: &buffer) == header)
            try RequestHeader.skipTaggedFields(from: &buffer, headerVersion: headerVersion)
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test("ApiVersions answers with a v0 response header even in flexible versions")
    func apiVersionsResponseHeader() {
        #expect(ApiVersionsResponse.headerVersion(for: 3) == 0)
        #expect(MetadataResponse.headerVersion(for: 9) == 1)
        #expect(MetadataResponse.headerVersion(for: 8) == 0)
        #expect(ProduceRequest.headerVersion(for: 9) == 2)
        #expect(ProduceRequest.headerVersion(for: 8) == 1)
    }

    @Test("topic name rules")
    func topicNames() {
        #expect(TopicName.invalidityReason("orders.created_v1-2") == nil)
        #expect(TopicName.invalidityReason("") != nil)
        #expect(TopicName.invalidityReason("..") != nil)
        #expect(TopicName.invalidityReason("bad name") != nil)
        #expect(TopicName.invalidityReason(String(repeating: "a", count: 249)) == nil)
        #expect(TopicName.invalidityReason(String(repeating: "a", count: 250)) != nil)
    }
}
