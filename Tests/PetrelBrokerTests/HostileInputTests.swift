import NIOCore
import PetrelBroker
import PetrelBrokerTestSupport
import PetrelClient
import PetrelProtocol
import PetrelTestSupport
import Testing

/// Bytes no honest client sends: each closes that one connection; the broker and its other connections
/// carry on.
@Suite("Hostile input")
struct HostileInputTests {
    static let cases: [(String, [UInt8])] = [
        ("garbage", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
        ("negative length", [0xFF, 0xFF, 0xFF, 0xFE, 1, 2, 3]),
        ("huge length", [0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]),
        ("unknown API key", frame(apiKey: 999, version: 0, body: [])),
        ("unadvertised version", frame(apiKey: 1, version: 3, body: [])),
        ("truncated body", frame(apiKey: 3, version: 12, body: [0x05, 0x01])),
        ("short header", [0, 0, 0, 3, 0, 3, 0]),
    ]

    static func frame(apiKey: Int16, version: Int16, body: [UInt8]) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(0))
        RequestHeader(apiKey: APIKey(rawValue: apiKey), apiVersion: version, correlationID: 1, clientID: "evil")
            .write(to: &buffer, headerVersion: version >= 9 ? 2 : 1)
        buffer.writeBytes(body)
        buffer.setInteger(Int32(buffer.readableBytes - 4), at: 0)
        return Array(buffer.readableBytesView)
    }

    @Test("each bad input closes its own connection only", arguments: cases.map(\.0))
    func closesOneConnection(name: String) async throws {
        let bytes = Self.cases.first { $0.0 == name }!.1
        try await withBroker { _, port in
            try await withConnection(port) { bystander in
                try await createTopic(bystander, "steady")
                let socket = try await RawSocket(port: port)
                try await socket.send(bytes)
                #expect(await socket.isClosedByPeer(), "\(name)")
                await socket.close()
                // The other connection, and new ones, still work.
                #expect(try await produce(bystander, "steady", ["still here"]).errorCode == ErrorCode.none)
                let newcomer = try await connect(port)
                #expect(
                    try await newcomer.send(MetadataRequest(topics: nil)).topics.map(\.name) == [
                        "__consumer_offsets", "steady",
                    ]
                )
                await newcomer.close()
            }
        }
    }

    @Test("random bytes never bring the broker down")
    func fuzz() async throws {
        try await withBroker { _, port in
            var generator = SystemRandomNumberGenerator()
            for round in 0..<50 {
                let socket = try await RawSocket(port: port)
                var bytes = (0..<Int.random(in: 1...200, using: &generator)).map { _ in
                    UInt8.random(in: 0...255, using: &generator)
                }
                if round % 2 == 0 {
                    // A plausible frame length, so the garbage reaches the request parser.
                    let length = UInt32(bytes.count)
                    bytes =
                        [
                            UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF),
                            UInt8(length & 0xFF),
                        ] + bytes
                }
                try? await socket.send(bytes)
                await socket.close()
            }
            let connection = try await connect(port)
            #expect(try await connection.send(ApiVersionsRequest()).errorCode == ErrorCode.none)
            await connection.close()
        }
    }
}
